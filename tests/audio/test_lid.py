"""Whisper language ID on generated calls in the languages espeak-ng speaks clearly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from cofi.settings import Settings
from services.lid.engines import build_engine
from tests.support.audio import CallFactory, assert_encodes, make_ctx, make_event


@pytest.fixture(scope="module")
def lid(settings: Settings):
    engine = build_engine("whisper", settings)
    yield engine
    engine.close()


@pytest.mark.parametrize("language", ["en", "es", "de", "fr"])
def test_detects_language(lid, settings: Settings, call: CallFactory, language: str) -> None:
    path, _ = call(f"lid_{language}", language=language, ivr=False, turns=3, seed=5, snr_db=20.0)
    event = make_event(path)
    r = lid.process(event, make_ctx(settings, "lid")).result
    assert r["language"] == language, r
    assert r["probability"] >= 0.5
    assert r["top"][0] == {"language": language, "probability": r["probability"]} and len(r["top"]) == 3
    assert_encodes("lid", event, r, "whisper")


def test_silence_is_undetermined_not_a_guess(lid, settings: Settings, tmp_path: Path) -> None:
    p = tmp_path / "silent.wav"
    sf.write(p, np.zeros((16000 * 5, 2)), 16000)
    r = lid.process(make_event(p), make_ctx(settings, "lid")).result
    assert r == {"language": "und", "probability": 0.0, "top": []}


def test_unknown_engine() -> None:
    with pytest.raises(ValueError, match="known: whisper"):
        build_engine("fasttext", Settings())
