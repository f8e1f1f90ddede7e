"""Engines that script what a stage does to each file, to drive the worker's and tracker's failure paths."""

from __future__ import annotations

import threading
import time
from typing import Any

from cofi.errors import PermanentError, TransientError
from cofi.pipeline.engine import StageContext, StageOutput
from cofi.pipeline.passthrough import PassthroughEngine


class ScriptedEngine(PassthroughEngine):
    """Passthrough plus scripted faults per file; counts its calls per file."""

    def __init__(self, stage: str, *, permanent: set[str] = frozenset(), flaky: dict[str, int] | None = None,
                 sleep_s: float = 0.0, slow: bool = False) -> None:
        super().__init__(stage)
        self.permanent = permanent
        self.flaky = dict(flaky or {})
        self.calls: dict[str, int] = {}
        self.sleep_s = sleep_s
        self.slow = slow  # type: ignore[misc]
        self.lock = threading.Lock()

    def process(self, event: dict[str, Any], ctx: StageContext) -> StageOutput:
        fid = event["fileId"]
        with self.lock:
            self.calls[fid] = self.calls.get(fid, 0) + 1
            n = self.calls[fid]
        if self.sleep_s:
            time.sleep(self.sleep_s)
        if fid in self.permanent:
            raise PermanentError(f"{event['file']}: not a RIFF/WAVE file")
        if n < self.flaky.get(fid, 0):
            raise TransientError(f"server busy (attempt {n})")
        return super().process(event, ctx)
