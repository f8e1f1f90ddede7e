"""Builders for the audio-stage tests: generated calls with known truth, stage contexts, FileEvents.

Calls come from cofi.devtools.synth (espeak-ng + sox + numpy), so every measure has a ground truth.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cofi.devtools.synth import CallTruth, make_call
from cofi.pipeline.codec import get_codec
from cofi.pipeline.engine import StageContext
from cofi.pipeline.stages import empty_results
from cofi.pipeline.topics import stage_plan
from cofi.settings import Settings


class CallFactory:
    """Makes (and memoises) synthetic calls in the session's call directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.made: dict[str, CallTruth] = {}

    def __call__(self, name: str, **kw: Any) -> tuple[Path, CallTruth]:
        path = self.root / f"{name}.wav"
        if name not in self.made:
            clean = self.root / f"{name}.clean.wav"
            self.made[name] = make_call(path, clean_path=clean, **kw)
        return path, self.made[name]


def make_ctx(settings: Settings, stage: str, file_id: str | None = None) -> StageContext:
    return StageContext(stage=stage, worker="test-worker", settings=settings, batch_id=42,
                        file_id=file_id or uuid.uuid4().hex[:20])


def make_event(audio: Path, results: dict[str, Any] | None = None) -> dict[str, Any]:
    """A minimal valid FileEvent for one audio file."""
    res = empty_results()
    res.update(results or {})
    return {"eventId": uuid.uuid4().hex, "batchId": 42, "fileId": "f" * 20, "file": audio.name,
            "audioPath": str(audio), "currentAudio": str(audio), "stages": stage_plan(), "generation": 0,
            "metadata": {"clientCode": "C12345", "phone": "+15550000000", "callStart": "2026-01-15T09:00:00+00:00"},
            "emittedAt": datetime.now(UTC), "results": res, "trades": [], "questionnaire": None, "rules": None}


def assert_encodes(stage: str, event: dict[str, Any], result: dict[str, Any], engine: str) -> dict[str, Any]:
    """The engine's result, completed as the worker completes it, encodes and round-trips in a FileEvent."""
    codec = get_codec()
    ev = dict(event)
    ev["results"] = dict(event["results"])
    ev["results"][stage] = {"worker": "test-worker", "engine": engine, "durationMs": 1, **result}
    return codec.decode_as("FileEvent", codec.encode("FileEvent", ev))
