"""`passthrough` engines: valid, empty results for plumbing tests and benchmarks only.

They do no audio or language work and say so in their name, results and logs. Any stage of
the registry has one (`<STAGE>_ENGINE=passthrough`); its result is the stage model's placeholder.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from cofi.pipeline.engine import Engine, StageContext, StageOutput
from cofi.pipeline.stages import stage as stage_of

log = logging.getLogger(__name__)


class PassthroughEngine(Engine):
    name = "passthrough"
    slow = False

    def __init__(self, stage: str, delay_ms: int = 0) -> None:
        self.stage = stage  # type: ignore[misc]
        self.spec = stage_of(stage)
        self.delay_s = delay_ms / 1000  # PASSTHROUGH_DELAY_MS: pretend work, for kill and chaos tests
        log.warning("stage %s uses the PASSTHROUGH engine: no real work is done", stage)

    def process(self, event: dict[str, Any], ctx: StageContext) -> StageOutput:
        if self.delay_s:
            time.sleep(self.delay_s)
        audio = event["currentAudio"]
        return StageOutput(result=self.spec.result.passthrough(audio), audio_path=audio if self.spec.audio else None)
