"""STT engine `whisper`: faster-whisper per channel, merged by time with speaker labels.

Stereo: each channel is one speaker (CHANNEL_ROLES, default agent,customer) and is
transcribed on its own, so overtalk never garbles words; mono is one "speaker" track.
The language comes from the lid stage's result (auto-detect when absent or "und").
Writes ctx.artifact("json") with segments and word timings; timing measures use the
Silero VAD intervals of each channel, which are tighter than Whisper's word ends.
The IVR prelude the ivr stage cut off (STT_PRELUDE) comes first, as untimed `ivr` lines: the switch's
prompt often discloses the recording, and its times belong to audio the conversation's do not.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from faster_whisper.vad import VadOptions

from cofi.audio.io import Audio, load_settings_audio
from cofi.audit.transcript import PRELUDE_SPEAKER
from cofi.errors import PermanentError
from cofi.models.whisper import get_whisper, speech_segments
from cofi.pipeline.engine import Engine, StageContext, StageOutput, write_json
from cofi.pipeline.results import IvrResult
from cofi.pipeline.stages import StageResults, results_of
from cofi.pipeline.transcript_source import labelled_text
from cofi.settings import Settings
from services.stt.speech import speech_params

log = logging.getLogger(__name__)
ENGINES = ("whisper",)
MONO_SPEAKER = "speaker"
SPLIT_PAUSE_SEC = 1.0


def _language(results: StageResults) -> str | None:
    lid = results.lid
    lang = lid.language if lid is not None else None
    return lang if lang and lang != "und" else None


class WhisperStt(Engine):
    """Uses the process-wide Whisper model (thread-safe CTranslate2); holds no per-file state."""

    stage = "stt"
    name = "whisper"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.model = get_whisper(settings)

    def _transcribe(self, x: np.ndarray, speaker: str, language: str | None,
                    hotwords: str | None = None) -> tuple[list[dict[str, Any]], str]:
        segments, info = self.model.transcribe(
            x, language=language, beam_size=self.settings.whisper_beam_size, word_timestamps=True,
            vad_filter=True, vad_parameters=VadOptions(min_silence_duration_ms=500, speech_pad_ms=200),
            condition_on_previous_text=False, hotwords=hotwords)
        out: list[dict[str, Any]] = []
        for seg in segments:
            words = [{"word": w.word.strip(), "start": round(w.start, 3), "end": round(w.end, 3),
                      "probability": round(w.probability, 3)} for w in (seg.words or []) if w.word.strip()]
            if words:
                out.extend(_split_on_pauses(speaker, words))
            elif seg.text.strip():
                out.append({"speaker": speaker, "start": round(seg.start, 3), "end": round(seg.end, 3),
                            "text": seg.text.strip(), "words": []})
        return out, info.language

    def process(self, event: dict[str, Any], ctx: StageContext) -> StageOutput:
        audio = load_settings_audio(event["currentAudio"], self.settings)
        tracks = self._tracks(audio)
        results = results_of(event)  # validated once: the lid and ivr results both come from it
        language = _language(results)
        segments: list[dict[str, Any]] = []
        detected = language
        intervals: dict[str, list[tuple[float, float]]] = {}
        for speaker, x in tracks:
            intervals[speaker] = speech_segments(x)
            if not intervals[speaker]:
                continue  # a silent channel: nothing to transcribe (and Whisper would hallucinate)
            segs, lang = self._transcribe(x, speaker, language, _hotwords(event))
            segments.extend(segs)
            detected = detected or lang
        segments.sort(key=lambda s: (s["start"], s["speaker"]))
        n_words = sum(len(s["words"]) or len(s["text"].split()) for s in segments)
        speech = speech_params(audio.duration, intervals, n_words,
                               agent=audio.roles[0] if audio.stereo else "agent",
                               customer=audio.roles[1] if audio.stereo else "customer")
        prelude, prelude_info = self._prelude(results.ivr, str(event.get("file")), detected)
        segments = prelude + segments
        text = labelled_text(segments)
        lang_out = detected or "und"
        path = ctx.artifact("json")
        write_json(path, {"language": lang_out, "durationSec": audio.duration, "source": event["currentAudio"],
                           "speakers": [s for s, _ in tracks], "segments": segments, "speech": speech,
                           "vad": {k: [[round(a, 3), round(b, 3)] for a, b in v] for k, v in intervals.items()},
                           **({"prelude": prelude_info} if prelude_info else {})})
        return StageOutput(result={"language": lang_out, "transcriptPath": str(path), "text": text,
                                   "words": n_words, "speech": speech})

    def _prelude(self, ivr: IvrResult | None, file: str,
                 language: str | None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """(segments, info) of what the switch played before the call: the [0, ivrEndSec) the ivr stage cut
        from its input, both legs mixed, as one untimed `ivr` segment (its times are of that input, not of
        the audio the conversation's times refer to). An unreadable prelude is logged and left out: the
        conversation is what the call is audited on."""
        if not self.settings.stt_prelude or ivr is None or not ivr.ivrDetected or not ivr.inputPath:
            return [], {}
        info: dict[str, Any] = {"source": ivr.inputPath, "endSec": ivr.ivrEndSec}
        try:
            audio = load_settings_audio(ivr.inputPath, self.settings, head_sec=ivr.ivrEndSec)
        except (PermanentError, OSError) as exc:
            log.warning("file %s: the IVR prelude is not transcribed: %s", file, exc)
            return [], {**info, "error": str(exc)}
        x = np.ascontiguousarray(audio.mono()[: int(ivr.ivrEndSec * audio.sample_rate)], dtype=np.float32)
        if not speech_segments(x):
            return [], info  # tones or music only
        # text only (no word times, greedy): what was said is all the audit reads of it, and Whisper pads
        # a short prompt to a 30 s window, which word alignment and a beam of 5 made cost 1.2 s per call
        segs, _ = self.model.transcribe(x, language=language, beam_size=1, word_timestamps=False,
                                        without_timestamps=True, vad_filter=True, condition_on_previous_text=False)
        said = " ".join(t for seg in segs if (t := seg.text.strip()))
        return ([{"speaker": PRELUDE_SPEAKER, "start": None, "end": None, "text": said, "words": []}] if said
                else []), info

    @staticmethod
    def _tracks(audio: Audio) -> list[tuple[str, np.ndarray]]:
        if audio.stereo:
            return [(role, np.ascontiguousarray(audio.samples[:, i])) for i, role in enumerate(audio.roles)]
        return [(MONO_SPEAKER, audio.samples[:, 0])]


def _hotwords(event: dict[str, Any], max_chars: int = 400) -> str | None:
    """The batch's instrument names as recognition vocabulary ("State Bank of India, Tata Motors").

    They are the names of every instrument traded in the batch, never this call's booked values
    (no quantities, no prices, not only its own instrument): a customer who says another stock or
    another number is still heard saying it."""
    names = ", ".join(str(v) for v in event.get("vocabulary") or [])
    return names[:max_chars].rsplit(",", 1)[0] if len(names) > max_chars else (names or None)


def _split_on_pauses(speaker: str, words: list[dict[str, Any]], pause: float = SPLIT_PAUSE_SEC) -> list[dict[str, Any]]:
    """Whisper sees a channel's speech with the silences cut out, so one segment can span two
    turns; split it where the words pause, so the time merge interleaves the speakers right."""
    groups: list[list[dict[str, Any]]] = [[words[0]]]
    for w in words[1:]:
        if w["start"] - groups[-1][-1]["end"] > pause:
            groups.append([w])
        else:
            groups[-1].append(w)
    return [{"speaker": speaker, "start": g[0]["start"], "end": g[-1]["end"],
             "text": " ".join(w["word"] for w in g), "words": g} for g in groups]


def build_engine(name: str, settings: Settings) -> Engine:
    if name == "whisper":
        return WhisperStt(settings)
    raise ValueError(f"unknown STT_ENGINE {name!r}; known: {', '.join(ENGINES)} (and passthrough)")
