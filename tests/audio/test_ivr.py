"""IVR engine finds where the automated prelude ends on generated calls, and trims it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from cofi.settings import Settings
from services.ivr.engines import build_engine
from tests.support.audio import CallFactory, assert_encodes, make_ctx, make_event

TOLERANCE_SEC = 0.5

CASES = {  # name: make_call options
    "stereo_dtmf": dict(seed=21, ivr=True, dtmf="1"),
    "stereo_two_digits_music_noisy": dict(seed=22, ivr=True, dtmf="12", hold_music=True, snr_db=10.0),
    "stereo_music_no_dtmf": dict(seed=23, ivr=True, dtmf="", hold_music=True),
    "stereo_prompt_only": dict(seed=24, ivr=True, dtmf=""),
    "mono_dtmf": dict(seed=25, ivr=True, dtmf="9", stereo=False),
    "mono_dtmf_music_noisy": dict(seed=26, ivr=True, dtmf="1", hold_music=True, stereo=False, snr_db=10.0),
}


@pytest.mark.parametrize("name", CASES)
def test_prelude_end_within_tolerance(settings: Settings, call: CallFactory, name: str) -> None:
    path, truth = call(name, turns=3, **CASES[name])
    event = make_event(path)
    out = build_engine("vad", settings).process(event, make_ctx(settings, "ivr"))
    r = out.result
    assert r["ivrDetected"], r["reason"]
    assert abs(r["ivrEndSec"] - truth.ivr_end_sec) <= TOLERANCE_SEC, (r, truth.ivr_end_sec)
    assert r["ivrEndSec"] < truth.first_turn_sec  # never cuts into the agent's greeting
    assert r["dtmfDigits"] == truth.dtmf
    trimmed = Path(r["outputPath"])
    assert out.audio_path == str(trimmed) and trimmed.name == "ivr.wav"
    assert abs(sf.info(trimmed).duration - (truth.duration - r["ivrEndSec"])) < 0.05
    assert_encodes("ivr", event, r, "vad")


@pytest.mark.parametrize("stereo", [True, False])
def test_call_without_ivr_is_left_alone(settings: Settings, call: CallFactory, stereo: bool) -> None:
    path, _ = call(f"no_ivr_{stereo}", seed=27, turns=3, ivr=False, stereo=stereo, snr_db=15.0)
    event = make_event(path)
    out = build_engine("vad", settings).process(event, make_ctx(settings, "ivr"))
    assert not out.result["ivrDetected"], out.result["reason"]
    assert out.result["ivrEndSec"] == 0.0 and out.audio_path is None
    assert out.result["outputPath"] == str(path)
    assert_encodes("ivr", event, out.result, "vad")


@pytest.mark.parametrize("ivr", [True, False])
def test_one_mix_on_both_channels_is_read_as_mono(settings: Settings, call: CallFactory, tmp_path: Path,
                                                  ivr: bool) -> None:
    """A recorder that writes the same mix to both channels: the prompt rule (the signal heard on both legs)
    used to take the whole call for a prelude and cut it all; it is read as the mono call it is."""
    mono, truth = call(f"mix_{ivr}", seed=28, turns=4, ivr=ivr, dtmf="3", stereo=False, snr_db=20.0)
    x, sr = sf.read(mono)
    dual = tmp_path / "dual.wav"
    sf.write(dual, np.stack([x, 0.6 * x], axis=1), sr, subtype="PCM_16")
    out = build_engine("vad", settings).process(make_event(dual), make_ctx(settings, "ivr"))
    assert out.result["ivrDetected"] == ivr, out.result["reason"]
    if ivr:
        assert abs(out.result["ivrEndSec"] - truth.ivr_end_sec) <= TOLERANCE_SEC, (out.result, truth.ivr_end_sec)
        assert out.result["ivrEndSec"] < truth.first_turn_sec
        assert sf.info(out.audio_path).channels == 1
    else:
        assert out.audio_path is None


def test_silent_call_has_no_ivr(settings: Settings, tmp_path: Path) -> None:
    p = tmp_path / "silent.wav"
    sf.write(p, np.zeros((16000 * 3, 2)), 16000)
    out = build_engine("vad", settings).process(make_event(p), make_ctx(settings, "ivr"))
    assert not out.result["ivrDetected"]


def test_unknown_engine() -> None:
    with pytest.raises(ValueError, match="known: vad"):
        build_engine("whisper", Settings())
