"""IVR engine `vad`: detect the prelude end (see detector.py for the rules) and trim it off.

The result names the audio it cut (`inputPath`), so stt can still transcribe what the switch played
(a recording disclosure is often in the prompt) without it reaching LID or the conversation's lines."""

from __future__ import annotations

from typing import Any

from cofi.audio.io import load_settings_audio, write_wav
from cofi.pipeline.engine import Engine, StageContext, StageOutput
from cofi.settings import Settings
from services.ivr.detector import detect

ENGINES = ("vad",)


class VadIvr(Engine):
    """Stateless apart from the shared Silero session (thread-safe): safe from a thread pool."""

    stage = "ivr"
    name = "vad"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def process(self, event: dict[str, Any], ctx: StageContext) -> StageOutput:
        audio = load_settings_audio(event["currentAudio"], self.settings)
        d = detect(audio, self.settings.ivr_max_sec)
        result = {"ivrDetected": d.detected, "ivrEndSec": round(d.end_sec, 3), "dtmfDigits": d.digits,
                  "reason": d.reason, "outputPath": event["currentAudio"], "inputPath": event["currentAudio"]}
        if not d.detected:
            return StageOutput(result=result, audio_path=None)
        out = write_wav(ctx.artifact("wav"), audio.samples[int(d.end_sec * audio.sample_rate):], audio.sample_rate)
        result["outputPath"] = str(out)
        return StageOutput(result=result, audio_path=str(out))


def build_engine(name: str, settings: Settings) -> Engine:
    if name == "vad":
        return VadIvr(settings)
    raise ValueError(f"unknown IVR_ENGINE {name!r}; known: {', '.join(ENGINES)} (and passthrough)")
