"""Redact engine `presidio`: PII out of the transcript and the audio, trade facts kept.

Reads stt's JSON artifact (segments of words with times), finds the batch policy's entity
types (`detect.py`), writes `redact.json` (stt's structure, each mention's words replaced by
its placeholder) and `redact.wav` (each mention's time span toned out or silenced in every
channel of the audio stt transcribed); the redacted audio is what later stages and the console
get. Unless REDACT_KEEP_ORIGINAL, the unredacted artifacts of the earlier stages (stt.json, the
cleaned and trimmed audio) are deleted once the redacted ones are written; a retry after that
finds its own finished output and returns it again.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cofi.audio.io import load_settings_audio, write_wav
from cofi.pipeline.engine import Engine, PermanentError, StageContext, StageOutput, write_json
from cofi.pipeline.stages import STAGES, results_of, stage
from cofi.pipeline.transcript_source import labelled_text
from cofi.redaction import PolicyError, checked_policy, make_policy
from cofi.settings import Settings
from services.redact.detect import Detector
from services.redact.document import Document, Mention, build, redacted_segments
from services.redact.masking import mask, merge

log = logging.getLogger(__name__)
ENGINES = ("presidio",)


def known_values(event: Mapping[str, Any]) -> dict[str, str]:
    """This call's identifiers known at intake (manifest columns, mapped trades), normalised as
    `spoken.Run.value` reads them: letters then digits, upper case."""
    out: dict[str, str] = {}
    meta = event.get("metadata") or {}
    for source in (meta, *(event.get("trades") or [])):
        code = re.sub(r"[^A-Za-z0-9]", "", str(source.get("clientCode") or "")).upper()
        if code:
            out[re.sub(r"\d", "", code) + re.sub(r"\D", "", code)] = "CLIENT_CODE"
        phone = re.sub(r"\D", "", str(source.get("phone") or ""))
        if len(phone) >= 7:
            out[phone] = "PHONE_NUMBER"
    return out


def _entities(doc: Document, mentions: list[Mention]) -> list[dict[str, Any]]:
    """One record per placeholder: its type, how often it was said and the seconds said."""
    out: dict[str, dict[str, Any]] = {}
    for m in mentions:
        rec = out.setdefault(m.placeholder, {"placeholder": m.placeholder, "type": m.entity, "mentions": 0,
                                             "seconds": 0.0})
        rec["mentions"] += 1
        rec["seconds"] = round(rec["seconds"] + sum(b - a for a, b in m.seconds(doc)), 3)
    return list(out.values())


class PresidioRedactor(Engine):
    stage = "redact"
    name = "presidio"

    def __init__(self, settings: Settings, detector: Detector | None = None) -> None:
        self.settings = settings
        self.detector = detector or Detector(settings.spacy_model, settings.redact_min_digits)

    def process(self, event: dict[str, Any], ctx: StageContext) -> StageOutput:
        where = f"file {event.get('file')}"
        try:
            policy = checked_policy(event.get("redactPolicy")) or make_policy()
        except PolicyError as exc:
            raise PermanentError(f"{where}: redaction policy: {exc}") from exc
        stt = results_of(event).stt
        if stt is None:
            raise PermanentError(f"{where}: redact needs the stt result, the event has none")
        out_json, out_wav = ctx.artifact("json"), ctx.artifact("wav")
        source = Path(stt.transcriptPath)
        if not source.is_file():
            if out_json.is_file() and out_wav.is_file():
                return self._again(out_json, out_wav)  # done before, originals already deleted
            raise PermanentError(f"{where}: stt transcript {source} not found")
        try:
            original = json.loads(source.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise PermanentError(f"{where}: stt transcript {source} unreadable: {exc}") from exc
        doc = build(original)
        mentions = self.detector.find(doc, policy["entities"], known=known_values(event),
                                      trades=event.get("trades") or [])
        segments = redacted_segments(doc, mentions)
        audio = load_settings_audio(original.get("source") or event["currentAudio"], self.settings)
        spans = merge([s for m in mentions for s in m.seconds(doc)], self.settings.redact_audio_pad_sec,
                      audio.duration)
        write_wav(out_wav, mask(audio.samples, audio.sample_rate, spans, mode=policy["audio"],
                                tone_hz=self.settings.redact_tone_hz), audio.sample_rate)
        result = {"transcriptPath": str(out_json), "text": labelled_text(segments), "outputPath": str(out_wav),
                  "entities": _entities(doc, mentions), "policy": policy["entities"],
                  "originalKept": self.settings.redact_keep_original,
                  "maskedSec": round(sum(b - a for a, b in spans), 3)}
        write_json(out_json, {**{k: original.get(k) for k in ("language", "durationSec", "speakers", "speech", "vad")},
                              "source": str(out_wav), "segments": segments, "redaction": result})
        if not self.settings.redact_keep_original:
            self._delete_originals(ctx)
        return StageOutput(result=result, audio_path=str(out_wav))

    @staticmethod
    def _again(out_json: Path, out_wav: Path) -> StageOutput:
        try:
            result = json.loads(out_json.read_text(encoding="utf-8"))["redaction"]
        except (OSError, ValueError, KeyError) as exc:
            raise PermanentError(f"{out_json}: earlier redaction unreadable and the originals are gone: {exc}") from exc
        return StageOutput(result=result, audio_path=str(out_wav))

    def _delete_originals(self, ctx: StageContext) -> None:
        """The artifacts of the stages before this one (transcript, cleaned and trimmed audio): unredacted."""
        earlier = STAGES[:stage(self.stage).order]
        for path in ctx.artifact_dir.iterdir():
            if path.is_file() and path.name.split(".")[0] in earlier:
                path.unlink(missing_ok=True)
                log.debug("redact: deleted unredacted artifact %s", path)


def build_engine(name: str, settings: Settings) -> Engine:
    if name == "presidio":
        return PresidioRedactor(settings)
    raise ValueError(f"unknown REDACT_ENGINE {name!r}; known: {', '.join(ENGINES)} (and passthrough)")
