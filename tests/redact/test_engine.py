"""The redact engine on a generated PII call (real espeak-ng audio, a Whisper-like transcript): its
artifacts, the masked audio in every channel, the originals deleted or kept, retries, bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from cofi.devtools.pii_calls import PiiCall, make_pii_call, whisper_like
from cofi.errors import PermanentError
from cofi.pipeline.results import RedactResult
from cofi.settings import Settings
from services.redact.detect import Detector
from services.redact.engines import PresidioRedactor, build_engine, known_values
from services.redact.masking import TONE_LEVEL
from tests.support.audio import assert_encodes, make_ctx, make_event

SPEECH = dict.fromkeys(("durationSec", "talkTimeAgentSec", "talkTimeCustomerSec", "talkRatio", "silenceRatio",
                        "longestSilenceSec", "overtalkSec", "speechRateWpm"), 0.0)


@pytest.fixture(scope="module")
def call(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, PiiCall]:
    path = tmp_path_factory.mktemp("pii") / "pii_call.wav"
    return path, make_pii_call(path, seed=5)


def _stage(tmp_path: Path, call: tuple[Path, PiiCall], detector: Detector, policy: dict | None = None,
           **settings: object) -> tuple[PresidioRedactor, dict, object, Path]:
    """An engine, an event after stt (its artifact is the Whisper-like transcript, its audio an ivr artifact
    in the file's folder, as after a real ivr stage) and the context."""
    s = Settings(artifact_root=tmp_path / "artifacts", **settings)
    ctx = make_ctx(s, "redact", "f" * 20)
    audio = ctx.artifact_dir / "ivr.wav"
    shutil.copy(call[0], audio)
    stt_json = ctx.artifact_dir / "stt.json"
    stt_json.write_text(json.dumps({**whisper_like(call[1], seed=5).doc, "source": str(audio)}))
    event = make_event(call[0], {"stt": {"worker": "w", "engine": "whisper", "durationMs": 1, "language": "en",
                                         "transcriptPath": str(stt_json), "text": "", "words": 0, "speech": SPEECH}})
    event["currentAudio"], event["trades"] = str(audio), [call[1].trade]
    event["redactPolicy"] = policy or {"entities": [], "audio": "tone"}
    return PresidioRedactor(s, detector), event, ctx, audio


def _tone_share(x: np.ndarray, sr: int, hz: float = 1000.0) -> float:
    spec = np.abs(np.fft.rfft(x))
    band = np.abs(np.fft.rfftfreq(len(x), 1 / sr) - hz) < 20
    return float(spec[band].sum() / max(spec.sum(), 1e-9))


def test_redacts_transcript_and_audio_in_every_channel(tmp_path: Path, call, detector: Detector) -> None:
    engine, event, ctx, audio = _stage(tmp_path, call, detector)
    original, sr = sf.read(audio, dtype="float32", always_2d=True)
    out = engine.process(event, ctx)
    r = RedactResult.model_validate({"worker": "w", "engine": "presidio", "durationMs": 1, **out.result})
    assert out.audio_path == r.outputPath == str(ctx.artifact("wav")) and r.transcriptPath == str(ctx.artifact("json"))
    items = call[1].items
    assert {e.type for e in r.entities} >= {i.type for i in items}
    assert not any(i.value.split()[0] in r.text for i in items if i.type == "PERSON"), r.text
    assert not any(ch.isdigit() for line in r.text.splitlines() if "[" in line
                   for ch in line.replace("_1]", "").replace("_2]", "")), r.text
    assert call[1].trade["symbol"] in r.text and call[1].trade["side"] in r.text
    doc = json.loads(Path(r.transcriptPath).read_text())
    assert doc["segments"] and doc["redaction"]["text"] == r.text
    masked = [(w["start"], w["end"]) for s in doc["segments"] for w in s["words"] if w.get("redacted")]
    assert masked and r.maskedSec >= sum(b - a for a, b in masked)
    red, sr2 = sf.read(r.outputPath, dtype="float32", always_2d=True)
    assert red.shape == original.shape and sr2 == sr
    for a, b in masked:  # the tone, in both channels, where each mention was said
        seg = red[int(a * sr):int(b * sr)]
        assert all(_tone_share(seg[:, c], sr) > 0.5 for c in range(seg.shape[1]))
        assert np.abs(seg).max() <= TONE_LEVEL + 1e-3
    first = min(a for a, _ in masked) - engine.settings.redact_audio_pad_sec - 0.01
    assert np.allclose(red[:int(first * sr)], original[:int(first * sr)], atol=1e-4)  # untouched before it
    assert_encodes("redact", event, out.result, "presidio")
    # the originals are gone (REDACT_KEEP_ORIGINAL=false): transcript and trimmed audio; the source file stays
    assert not audio.exists() and not Path(event["results"]["stt"]["transcriptPath"]).exists()
    assert call[0].exists() and r.originalKept is False
    # a retry after that (the commit was lost) finds its finished output and returns it again
    assert engine.process(event, ctx).result == out.result


def test_keeps_the_originals_when_the_setting_says_so_and_silences(tmp_path: Path, call, detector: Detector) -> None:
    engine, event, ctx, audio = _stage(tmp_path, call, detector, {"entities": ["ACCOUNT_NUMBER"], "audio": "silence"},
                                       redact_keep_original=True)
    r = engine.process(event, ctx).result
    assert audio.exists() and Path(event["results"]["stt"]["transcriptPath"]).exists() and r["originalKept"]
    assert [e["type"] for e in r["entities"]] == ["ACCOUNT_NUMBER"] and r["policy"] == ["ACCOUNT_NUMBER"]
    doc = json.loads(Path(r["transcriptPath"]).read_text())
    (a, b), = [(w["start"], w["end"]) for s in doc["segments"] for w in s["words"] if w.get("redacted")]
    red, sr = sf.read(r["outputPath"], dtype="float32", always_2d=True)
    assert np.abs(red[int(a * sr):int(b * sr)]).max() == 0.0


def test_bad_input_is_a_permanent_error(tmp_path: Path, call, detector: Detector) -> None:
    engine, event, ctx, _ = _stage(tmp_path, call, detector)
    with pytest.raises(PermanentError, match="needs the stt result"):
        engine.process({**event, "results": {**event["results"], "stt": None}}, ctx)
    with pytest.raises(PermanentError, match="redaction policy: unknown entity type"):
        engine.process({**event, "redactPolicy": {"entities": ["SHOE_SIZE"], "audio": "tone"}}, ctx)
    Path(event["results"]["stt"]["transcriptPath"]).unlink()
    with pytest.raises(PermanentError, match="stt transcript .* not found"):
        engine.process(event, ctx)


def test_known_values_and_engine_names() -> None:
    event = {"metadata": {"clientCode": "c-042 17", "phone": "+91 98000 00001"},
             "trades": [{"clientCode": "AB1234", "phone": None}]}
    assert known_values(event) == {"C04217": "CLIENT_CODE", "919800000001": "PHONE_NUMBER", "AB1234": "CLIENT_CODE"}
    with pytest.raises(ValueError, match="unknown REDACT_ENGINE"):
        build_engine("regex", Settings())


def test_the_ivr_prelude_line_is_redacted_as_text_and_masks_no_audio(tmp_path: Path, call, detector: Detector) -> None:
    """stt's prelude segment (what the switch played, untimed: its times are of audio this stage does not
    write) goes through the same detection: a name in it is replaced; no span of the call's audio is
    masked for it, and it stays the first line, the switch's."""
    engine, event, ctx, audio = _stage(tmp_path, call, detector)
    stt_json = Path(event["results"]["stt"]["transcriptPath"])
    doc = json.loads(stt_json.read_text())
    name = next(i.value for i in call[1].items if i.type == "PERSON")
    prelude = {"speaker": "ivr", "start": None, "end": None, "words": [],
               "text": f"Welcome back, {name}. This call may be recorded."}
    stt_json.write_text(json.dumps({**doc, "segments": [prelude, *doc["segments"]]}))
    out = engine.process(event, ctx).result
    first = out["text"].splitlines()[0]
    assert first.startswith("ivr: Welcome back, [PERSON_") and first.endswith("This call may be recorded."), first
    red = json.loads(Path(out["transcriptPath"]).read_text())
    assert red["segments"][0]["speaker"] == "ivr" and red["segments"][0]["start"] is None
    timed = [(w["start"], w["end"]) for s in red["segments"][1:] for w in s["words"] if w.get("redacted")]
    assert out["maskedSec"] <= sum(b - a for a, b in timed) + 2 * engine.settings.redact_audio_pad_sec * len(timed)
