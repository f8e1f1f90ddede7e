"""LID engine `whisper`: faster-whisper's language detection over the call's speech.

Stereo calls are mixed to mono (both speakers count); the VAD drops silence and tones,
and up to LID_SEGMENTS x 30 s of speech are scored. A call with no speech at all gets
language "und" (undetermined) with probability 0 instead of a guess.
"""

from __future__ import annotations

from typing import Any

from faster_whisper.vad import VadOptions

from cofi.audio.io import load_settings_audio
from cofi.models.whisper import get_whisper, speech_segments
from cofi.pipeline.engine import Engine, StageContext, StageOutput
from cofi.settings import Settings

ENGINES = ("whisper",)
LID_SEGMENTS = 2


class WhisperLid(Engine):
    """Uses the process-wide Whisper model (thread-safe CTranslate2); holds no per-file state."""

    stage = "lid"
    name = "whisper"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.model = get_whisper(settings)  # load at start-up, not on the first file

    def process(self, event: dict[str, Any], ctx: StageContext) -> StageOutput:
        audio = load_settings_audio(event["currentAudio"], self.settings)
        mono = audio.mono()
        if not speech_segments(mono):
            return StageOutput(result={"language": "und", "probability": 0.0, "top": []})
        language, prob, all_probs = self.model.detect_language(
            mono, vad_filter=True, vad_parameters=VadOptions(min_silence_duration_ms=500),
            language_detection_segments=LID_SEGMENTS)
        top = [{"language": lang, "probability": round(float(p), 4)}
               for lang, p in sorted(all_probs, key=lambda lp: -lp[1])[:3]]
        return StageOutput(result={"language": language, "probability": round(float(prob), 4), "top": top})


def build_engine(name: str, settings: Settings) -> Engine:
    if name == "whisper":
        return WhisperLid(settings)
    raise ValueError(f"unknown LID_ENGINE {name!r}; known: {', '.join(ENGINES)} (and passthrough)")
