"""cofi.devtools.synth makes real, deterministic calls whose truth matches the audio."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import soundfile as sf

from cofi.devtools.synth import AGENT, CUSTOMER, load_truth, make_batch, make_call


def test_same_seed_same_bytes_other_seed_other_call(tmp_path: Path) -> None:
    a = make_call(tmp_path / "a.wav", seed=7, snr_db=10)
    b = make_call(tmp_path / "b.wav", seed=7, snr_db=10)
    c = make_call(tmp_path / "c.wav", seed=8, snr_db=10)
    assert (tmp_path / "a.wav").read_bytes() == (tmp_path / "b.wav").read_bytes()
    assert a.turns == b.turns
    assert c.reference_text != a.reference_text or c.turns != a.turns


def test_stereo_puts_agent_left_customer_right_and_prelude_on_both(tmp_path: Path) -> None:
    t = make_call(tmp_path / "s.wav", seed=3, ivr=True, dtmf="1")
    x, sr = sf.read(tmp_path / "s.wav")
    assert sr == 16000 and x.shape[1] == 2
    for turn in t.turns:
        seg = x[int(turn.start * sr): int(turn.end * sr)]
        left, right = np.sqrt((seg**2).mean(axis=0))
        if turn.speaker == AGENT:
            assert left > 10 * right
        else:
            assert right > 10 * left
    pre = x[: int(t.ivr_end_sec * sr)]
    assert np.allclose(pre[:, 0], pre[:, 1]) and np.abs(pre).max() > 0.05


def test_batch_writes_manifest_truth_and_short_calls(tmp_path: Path) -> None:
    truths = make_batch(tmp_path, 4, seed=1)
    rows = list(csv.DictReader(open(tmp_path / "manifest.csv")))
    assert [r["file"] for r in rows] == [f"call_{i:04d}.wav" for i in range(4)]
    assert set(rows[0]) == {"file", "clientCode", "phone", "callStart"}
    assert rows[0]["callStart"].startswith("2026-01-15T09:")
    assert json.loads((tmp_path / "truth.json").read_text())[0]["reference_text"]
    assert [t.turns for t in load_truth(tmp_path)] == [t.turns for t in truths]
    for t in truths:
        assert 8 <= t.duration <= 30
        assert {AGENT, CUSTOMER} <= {turn.speaker for turn in t.turns}
        assert sf.info(tmp_path / t.file).duration == t.duration or abs(sf.info(tmp_path / t.file).duration - t.duration) < 0.01
