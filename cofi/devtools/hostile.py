"""A passthrough engine that misbehaves on purpose, for the failure-isolation tests and benchmark only.

What it does to a file is read from the file's name, so a hostile batch and a good one can share the
stage: `hang` (never returns), `slow` (2 s, then passes), `bug` (raises), `badresult` (a result that
does not fit the stage's model), `noencode` (one that fits but cannot be encoded), `huge` (one larger
than MAX_EVENT_BYTES), `die` (the process exits at once, as when the kernel's OOM killer strikes).
Any other name passes through. Like `passthrough` it does no real work and says so.

    LID_ENGINE=hostile python -m cofi.devtools.hostile lid
"""

from __future__ import annotations

import logging
import os
import random
import sys
import threading
from pathlib import PurePath
from typing import Any

from cofi.pipeline import events
from cofi.pipeline.codec import MAGIC, Codec
from cofi.pipeline.engine import StageContext, StageOutput
from cofi.pipeline.passthrough import PassthroughEngine
from cofi.settings import Settings

log = logging.getLogger(__name__)

MARKS = ("hang", "slow", "bug", "badresult", "noencode", "huge", "die")


def marks(file: str) -> set[str]:
    """The misbehaviours a file name asks for (its base name, split on non-letters)."""
    name = PurePath(file).name.lower()
    return {m for m in MARKS if m in name}


class HostileEngine(PassthroughEngine):
    name = "hostile"  # type: ignore[misc]

    def __init__(self, stage: str, settings: Settings, *, slow: bool = True) -> None:
        super().__init__(stage)
        self.settings = settings
        self.slow = slow  # type: ignore[misc]
        self.never = threading.Event()  # a hung call waits on it for ever
        log.warning("stage %s uses the HOSTILE engine: files misbehave on purpose (tests and benchmarks only)", stage)

    def process(self, event: dict[str, Any], ctx: StageContext) -> StageOutput:
        todo = marks(event["file"])
        if "die" in todo:
            log.error("hostile: %s: exiting the process now", event["file"])
            os._exit(137)
        if "hang" in todo:
            self.never.wait()
        if "slow" in todo:
            self.never.wait(2.0)
        if "bug" in todo:
            raise RuntimeError(f"hostile engine bug on {event['file']}")
        out = super().process(event, ctx)
        result = dict(out.result)
        first = next(k for k, v in result.items() if isinstance(v, str)) if "huge" in todo or "noencode" in todo \
            else None
        if "badresult" in todo:
            result = {**result, "unexpectedField": 1}
        if "noencode" in todo and first:
            result[first] = "\udc80 lone surrogate"
        if "huge" in todo and first:
            result[first] = "x" * (self.settings.max_event_bytes + 1)
        return StageOutput(result=result, audio_path=out.audio_path)


# ---- hostile messages (what a broken or newer producer might send) ---------------------------------

def garbage(seed: int, size: int = 200) -> bytes:
    """Bytes that are no Avro message at all."""
    return random.Random(seed).randbytes(size)


def from_the_future(seed: int) -> bytes:
    """A single-object message whose schema fingerprint no version of this cofi knows (a newer writer)."""
    return MAGIC + random.Random(seed).randbytes(8) + b"\x02\x00body of a newer schema"


def refused_failure(codec: Codec, batch_id: int, file: str, stage: str) -> bytes:
    """A FileFailed the database refuses to store (a worker name longer than its column)."""
    return codec.encode("FileFailed", events.file_failed(
        stage=stage, error_type="PermanentError", message="sent by a hostile producer", attempts=1,
        worker="w" * 300, topic="elsewhere", partition=0, offset=0, raw=b"", event=None, file_id=None)
        | {"batchId": batch_id, "fileId": events.file_id(batch_id, file), "file": file})


def build_engine(name: str, settings: Settings, stage: str) -> HostileEngine:
    return HostileEngine(stage, settings, slow=os.environ.get("HOSTILE_SLOW", "1") == "1")


if __name__ == "__main__":  # pragma: no cover - run as a process by the tests and bench/isolation.py
    from cofi.pipeline.worker import run_service

    stage_name = sys.argv[1]
    run_service(stage_name, lambda name, settings: build_engine(name, settings, stage_name))
