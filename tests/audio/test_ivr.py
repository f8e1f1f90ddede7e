"""IVR engine finds where the automated prelude ends on generated calls, and trims it."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from cofi.devtools.synth import hold_music, render_call
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


@pytest.mark.parametrize("seed,dtmf,music", [(31, "1", False), (32, "", True), (33, "12", True)])
def test_a_prelude_on_one_leg_only_ends_at_its_dtmf_or_music(settings: Settings, tmp_path: Path, seed: int,
                                                            dtmf: str, music: bool) -> None:
    """Recorded on the trunk, the switch's prompt, keys and hold music reach one leg only (they were played to
    the caller); "the prompt is on both legs" found no IVR there and left it in the agent's transcript."""
    noisy, clean, truth = render_call(turns=3, ivr=True, dtmf=dtmf, stereo=True, snr_db=25.0, seed=seed,
                                      hold_music_sec=1.5 if music else 0.0)
    n = int(truth.ivr_end_sec * 16000)
    noisy[:n, 1] -= clean[:n, 1]  # the prelude off the customer's leg (its noise stays)
    path = tmp_path / "one_leg.wav"
    sf.write(path, noisy, 16000, subtype="PCM_16")
    r = build_engine("vad", settings).process(make_event(path), make_ctx(settings, "ivr")).result
    assert r["ivrDetected"], r["reason"]
    assert abs(r["ivrEndSec"] - truth.ivr_end_sec) <= TOLERANCE_SEC and r["ivrEndSec"] < truth.first_turn_sec, r
    assert r["dtmfDigits"] == dtmf


def test_hold_music_after_both_have_spoken_is_no_prelude(settings: Settings, tmp_path: Path) -> None:
    """"Please hold" after the customer has spoken: the music is part of the call, nothing before it is cut."""
    noisy, _, truth = render_call(turns=4, ivr=False, stereo=True, snr_db=25.0, seed=34)
    cut = int((truth.turns[1].end + 0.3) * 16000)  # after the customer's first turn
    music = hold_music(3.0, random.Random(34))
    call = np.concatenate([noisy[:cut], np.stack([music, np.zeros_like(music)], axis=1), noisy[cut:]])
    path = tmp_path / "hold.wav"
    sf.write(path, call, 16000, subtype="PCM_16")
    r = build_engine("vad", settings).process(make_event(path), make_ctx(settings, "ivr")).result
    assert not r["ivrDetected"] and r["ivrEndSec"] == 0.0, r


def test_silent_call_has_no_ivr(settings: Settings, tmp_path: Path) -> None:
    p = tmp_path / "silent.wav"
    sf.write(p, np.zeros((16000 * 3, 2)), 16000)
    out = build_engine("vad", settings).process(make_event(p), make_ctx(settings, "ivr"))
    assert not out.result["ivrDetected"]


def test_unknown_engine() -> None:
    with pytest.raises(ValueError, match="known: vad"):
        build_engine("whisper", Settings())
