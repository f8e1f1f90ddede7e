"""`passthrough` engines: valid, empty results for plumbing tests and benchmarks only.

They do no audio or language work and say so in their name, results and logs.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from cofi.pipeline.engine import Engine, StageContext, StageOutput

log = logging.getLogger(__name__)

_RESULTS: dict[str, dict[str, Any]] = {
    "denoise": {"sampleRate": 16000, "noiseReductionDb": None},
    "ivr": {"ivrDetected": False, "ivrEndSec": 0.0, "dtmfDigits": "", "reason": "passthrough"},
    "lid": {"language": "und", "probability": 0.0, "top": []},
    "stt": {"language": "und", "transcriptPath": "", "text": "", "words": 0,
            "speech": {"durationSec": 0.0, "talkTimeAgentSec": 0.0, "talkTimeCustomerSec": 0.0,
                       "talkRatio": 0.0, "silenceRatio": 0.0, "longestSilenceSec": 0.0,
                       "overtalkSec": 0.0, "speechRateWpm": 0.0}},
    "llm1": {"model": "passthrough", "answers": [], "tradeChecks": [], "promptTokens": 0, "completionTokens": 0},
    "llm2": {"answers": [], "rules": [], "score": 0.0, "verdict": "pass", "reasons": ["passthrough: not audited"]},
}


class PassthroughEngine(Engine):
    name = "passthrough"
    slow = False

    def __init__(self, stage: str, delay_ms: int = 0) -> None:
        self.stage = stage  # type: ignore[misc]
        self.delay_s = delay_ms / 1000  # PASSTHROUGH_DELAY_MS: pretend work, for kill and chaos tests
        log.warning("stage %s uses the PASSTHROUGH engine: no real work is done", stage)

    def process(self, event: dict[str, Any], ctx: StageContext) -> StageOutput:
        if self.delay_s:
            time.sleep(self.delay_s)
        result = dict(_RESULTS[self.stage])
        if self.stage in ("denoise", "ivr"):
            result["outputPath"] = event["currentAudio"]
        return StageOutput(result=result, audio_path=event["currentAudio"] if self.stage in ("denoise", "ivr") else None)
