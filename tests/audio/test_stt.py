"""Whisper STT on generated calls: WER, speaker-labelled merge, speech parameters vs truth."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from cofi.audit.transcript import PRELUDE_SPEAKER
from cofi.devtools.synth import AGENT, CUSTOMER, CallTruth, make_batch, wer
from cofi.settings import Settings
from services.denoise.engines import build_engine as build_denoise
from services.ivr.engines import build_engine as build_ivr
from services.stt.engines import build_engine
from services.stt.speech import union
from tests.support.audio import CallFactory, assert_encodes, make_ctx, make_event

# Bounds set from measurements (bench/audio.py, see report) with margin. WER is computed after
# Whisper's English normalizer (cofi.devtools.wer), so number formatting is never an error.
MAX_WER = 0.15          # clean/20 dB English espeak calls, one speaker per channel; measured ~0.05 mean
MAX_WER_MONO = 0.22     # both voices mixed on one channel, a 38-word call: measured 0.16 (6 real word errors)
MAX_WER_OVERTALK = 0.22  # a customer interrupting the agent garbles words on both channels: measured 0.17
MAX_WER_10DB = 0.55     # at 10 dB SNR (near-white noise) Whisper base degrades a lot; measured ~0.38
TALK_TOL_SEC = 0.6      # per-speaker talk time vs the synthesized turn lengths
OVERTALK_TOL_SEC = 0.4
SILENCE_RATIO_TOL = 0.05
LONGEST_SILENCE_TOL_SEC = 0.4
WPM_REL_TOL = 0.15
DENOISE_MAX_WER_INCREASE = 0.05


def _lid(language: str) -> dict:
    return {"lid": {"worker": "w", "engine": "whisper", "durationMs": 1, "language": language,
                    "probability": 0.99, "top": []}}


@pytest.fixture(scope="module")
def stt(settings: Settings):
    engine = build_engine("whisper", settings)
    yield engine
    engine.close()


def _truth_params(t: CallTruth, offset: float = 0.0) -> dict[str, float]:
    turns = [(x.start - offset, x.end - offset) for x in t.turns]
    merged = union(turns)
    talk = sum(e - s for s, e in merged)
    duration = t.duration - offset
    words = len(t.reference_text.split())
    return {"agent": t.talk_time(AGENT), "customer": t.talk_time(CUSTOMER), "overtalk": t.overtalk_sec,
            "silenceRatio": (duration - talk) / duration,
            "longest": max(b[0] - a[1] for a, b in zip(merged, merged[1:], strict=False)),
            "wpm": words / (talk / 60)}


def test_stereo_call_transcript_and_speech_params(stt, settings: Settings, call: CallFactory) -> None:
    path, truth = call("stt_stereo", ivr=False, turns=5, seed=31, overtalk=True, snr_db=20.0)
    event = make_event(path, _lid("en"))
    out = stt.process(event, make_ctx(settings, "stt"))
    r = out.result
    assert out.audio_path is None and r["language"] == "en"
    assert wer(truth.reference_text, r["text"]) <= MAX_WER_OVERTALK, r["text"]
    lines = r["text"].splitlines()
    # one line per change of speaker, in the script's order
    order = [t.speaker for t in sorted(truth.turns, key=lambda t: t.start)]
    assert [ln.split(":")[0] for ln in lines] == [s for i, s in enumerate(order) if i == 0 or order[i - 1] != s]
    doc = json.loads(Path(r["transcriptPath"]).read_text())
    assert Path(r["transcriptPath"]).name == "stt.json"
    assert {s["speaker"] for s in doc["segments"]} == {AGENT, CUSTOMER}
    assert all(w["start"] <= w["end"] for s in doc["segments"] for w in s["words"])
    assert r["words"] == sum(len(s["words"]) for s in doc["segments"]) > 40
    sp, tp = r["speech"], _truth_params(truth)
    assert abs(sp["durationSec"] - truth.duration) < 0.01
    assert abs(sp["talkTimeAgentSec"] - tp["agent"]) <= TALK_TOL_SEC, (sp, tp)
    assert abs(sp["talkTimeCustomerSec"] - tp["customer"]) <= TALK_TOL_SEC, (sp, tp)
    assert abs(sp["talkRatio"] - tp["agent"] / (tp["agent"] + tp["customer"])) <= 0.05
    assert tp["overtalk"] > 0.3 and abs(sp["overtalkSec"] - tp["overtalk"]) <= OVERTALK_TOL_SEC, (sp, tp)
    assert abs(sp["silenceRatio"] - tp["silenceRatio"]) <= SILENCE_RATIO_TOL, (sp, tp)
    assert abs(sp["longestSilenceSec"] - tp["longest"]) <= LONGEST_SILENCE_TOL_SEC, (sp, tp)
    assert abs(sp["speechRateWpm"] - tp["wpm"]) <= WPM_REL_TOL * tp["wpm"], (sp, tp)
    assert_encodes("stt", event, r, "whisper")


def test_mono_call_is_one_speaker_track(stt, settings: Settings, call: CallFactory) -> None:
    path, truth = call("stt_mono", ivr=False, turns=3, seed=32, stereo=False)
    event = make_event(path)  # no lid result: the language is detected
    r = stt.process(event, make_ctx(settings, "stt")).result
    assert r["language"] == "en"
    assert wer(truth.reference_text, r["text"]) <= MAX_WER_MONO, r["text"]
    assert all(ln.startswith("speaker: ") for ln in r["text"].splitlines())
    assert r["speech"]["talkRatio"] == 0.0 and r["speech"]["talkTimeAgentSec"] == 0.0  # unknown in mono
    assert 0.0 < r["speech"]["silenceRatio"] < 0.5
    assert_encodes("stt", event, r, "whisper")


def test_silent_call_gives_empty_transcript(stt, settings: Settings, tmp_path: Path) -> None:
    p = tmp_path / "silent.wav"
    sf.write(p, np.zeros((16000 * 4, 2)), 16000)
    event = make_event(p, _lid("en"))
    r = stt.process(event, make_ctx(settings, "stt")).result
    assert r["text"] == "" and r["words"] == 0 and r["speech"]["silenceRatio"] == 1.0
    assert_encodes("stt", event, r, "whisper")


def _conversation(text: str) -> str:
    return "\n".join(ln for ln in text.splitlines() if not ln.startswith(f"{PRELUDE_SPEAKER}: "))


def test_the_ivr_prelude_is_transcribed_apart_from_the_conversation(stt, settings: Settings, call: CallFactory) -> None:
    """Many switches disclose the recording in their prompt, which the ivr stage cuts off before LID and the
    conversation's transcription: stt reads it back from the ivr stage's input and puts it first, as one
    untimed `ivr` line; the conversation's lines, times and speech parameters are those of the trimmed audio."""
    prompt = "This call may be recorded for quality and training purposes. For trading, press one."
    path, _ = call("stt_prelude", ivr=True, dtmf="1", turns=2, seed=34, ivr_prompt=prompt)
    event = make_event(path)
    ivr = build_ivr("vad", settings).process(event, make_ctx(settings, "ivr"))
    assert ivr.result["ivrDetected"] and ivr.result["inputPath"] == str(path)
    done = {"worker": "w", "engine": "vad", "durationMs": 1, **ivr.result}
    event = dict(event, currentAudio=ivr.audio_path, results=dict(event["results"], **_lid("en"), ivr=done))
    out = stt.process(event, make_ctx(settings, "stt"))
    r = out.result
    first, *rest = r["text"].splitlines()
    assert first.startswith("ivr: ") and wer(prompt, first.removeprefix("ivr: ")) <= MAX_WER, first
    assert rest and not any(ln.startswith("ivr: ") or "record" in ln.lower() for ln in rest), rest
    assert rest[0].startswith("agent: Good morning"), rest  # the agent's greeting stays the agent's
    assert r["words"] == len(" ".join(ln.split(": ", 1)[1] for ln in rest).split())  # the prelude is not talk
    data = json.loads(Path(r["transcriptPath"]).read_text())
    assert data["segments"][0]["speaker"] == "ivr" and data["segments"][0]["start"] is None
    assert data["prelude"] == {"source": str(path), "endSec": ivr.result["ivrEndSec"]}
    assert all(seg["start"] >= 0 for seg in data["segments"][1:])
    assert_encodes("stt", event, r, "whisper")
    off = stt.__class__(settings.model_copy(update={"stt_prelude": False}))
    assert not any(ln.startswith("ivr: ") for ln in off.process(event, make_ctx(settings, "stt")).result["text"].splitlines())
    gone = dict(event, results=dict(event["results"], ivr=dict(done, inputPath=str(path) + ".gone")))
    r = stt.process(gone, make_ctx(settings, "stt")).result  # an unreadable prelude: the call is still transcribed
    assert r["text"] == "\n".join(rest)


@pytest.mark.slow
def test_ivr_then_stt_times_are_relative_to_the_trimmed_audio(stt, settings: Settings, call: CallFactory) -> None:
    path, truth = call("stt_ivr", ivr=True, dtmf="1", hold_music=True, turns=4, seed=33)
    event = make_event(path)
    ivr = build_ivr("vad", settings).process(event, make_ctx(settings, "ivr"))
    event = dict(event, currentAudio=ivr.audio_path, results=dict(event["results"], **_lid("en")))
    r = stt.process(event, make_ctx(settings, "stt")).result
    said = _conversation(r["text"])
    assert "welcome" not in said.lower() and "press" not in said.lower()
    assert wer(truth.reference_text, said) <= MAX_WER
    tp = _truth_params(truth, offset=ivr.result["ivrEndSec"])
    assert abs(r["speech"]["silenceRatio"] - tp["silenceRatio"]) <= SILENCE_RATIO_TOL


@pytest.mark.slow
def test_wer_over_a_batch_and_denoise_does_not_hurt(stt, settings: Settings, tmp_path: Path) -> None:
    truths = make_batch(tmp_path, 4, seed=9, ivr=False, snr_db=10.0)
    den = build_denoise("spectral", settings)
    raw, cleaned = [], []
    for t in truths:
        ev = make_event(tmp_path / t.file, _lid("en"))
        raw.append(wer(t.reference_text, stt.process(ev, make_ctx(settings, "stt")).result["text"]))
        d = den.process(ev, make_ctx(settings, "denoise"))
        ev2 = dict(ev, currentAudio=d.audio_path)
        cleaned.append(wer(t.reference_text, stt.process(ev2, make_ctx(settings, "stt")).result["text"]))
    assert np.mean(raw) <= MAX_WER_10DB, raw
    assert np.mean(cleaned) <= np.mean(raw) + DENOISE_MAX_WER_INCREASE, (raw, cleaned)


def test_unknown_engine() -> None:
    with pytest.raises(ValueError, match="known: whisper"):
        build_engine("vosk", Settings())
