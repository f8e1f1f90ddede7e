"""scripts/supervise.sh: a service that crashes is restarted and counted; SIGTERM stops it for good."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHILD = "import os, sys, time; open(sys.argv[1], 'a').write(f'{os.getpid()}\\n'); time.sleep(600)"


def _pids(path: Path) -> list[int]:
    return [int(x) for x in path.read_text().split()] if path.exists() else []


def _wait(cond, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_a_killed_service_is_restarted_and_counted_then_sigterm_stops_it(tmp_path: Path) -> None:
    state, started = tmp_path / "svc.restarts", tmp_path / "pids"
    sup = subprocess.Popen(["bash", str(REPO / "scripts/supervise.sh"), str(state), "python3", "-c", CHILD,
                            str(started)], stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        _wait(lambda: len(_pids(started)) == 1)
        assert state.read_text().split()[0] == "0"
        os.kill(_pids(started)[0], signal.SIGKILL)  # a crash
        _wait(lambda: len(_pids(started)) == 2)
        restarts, code, _ = state.read_text().split()
        assert (restarts, code) == ("1", "137") and sup.poll() is None
        second = _pids(started)[1]
        os.kill(sup.pid, signal.SIGTERM)  # services.sh stop
        assert sup.wait(timeout=30) == 0
        _wait(lambda: not os.path.exists(f"/proc/{second}") or "Z" in open(f"/proc/{second}/stat").read().split()[2])
        time.sleep(1.5)
        assert len(_pids(started)) == 2  # no restart after the stop
        assert "exited with code 137" in sup.stderr.read()
    finally:
        if sup.poll() is None:
            os.killpg(sup.pid, signal.SIGKILL)
