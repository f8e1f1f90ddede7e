// The call page: clicking a transcript line (or an evidence time) seeks the player; hovering an
// answer lights its evidence; the line being played is marked. No framework, no build.
(function () {
  "use strict";
  const player = document.getElementById("player");

  function seek(seconds) {
    if (!player || !isFinite(seconds)) return;
    player.currentTime = seconds;
    const started = player.play();
    if (started && started.catch) started.catch(function () { /* autoplay refused: the time still moved */ });
  }

  document.addEventListener("click", function (ev) {
    const button = ev.target.closest("[data-seek]");
    if (button) {
      const turn = document.getElementById("turn-" + button.dataset.turn);
      if (turn) turn.scrollIntoView({ block: "center", behavior: "smooth" });
      if (button.dataset.seek !== "") seek(parseFloat(button.dataset.seek));
      return;
    }
    const line = ev.target.closest(".transcript.timed .turn[data-start]");
    if (line) seek(parseFloat(line.dataset.start));
  });

  function light(id, on) {
    document.querySelectorAll('mark.ev[data-ev~="' + CSS.escape(id) + '"]').forEach(function (m) {
      m.classList.toggle("active", on);
    });
  }
  document.querySelectorAll("[data-ev-target]").forEach(function (row) {
    row.addEventListener("mouseenter", function () { light(row.dataset.evTarget, true); });
    row.addEventListener("mouseleave", function () { light(row.dataset.evTarget, false); });
  });

  if (player) {
    const turns = Array.from(document.querySelectorAll(".turn[data-start]"));
    player.addEventListener("timeupdate", function () {
      const t = player.currentTime;
      let current = null;
      turns.forEach(function (turn) { if (parseFloat(turn.dataset.start) <= t + 0.05) current = turn; });
      turns.forEach(function (turn) { turn.classList.toggle("playing", turn === current); });
    });
  }
})();
