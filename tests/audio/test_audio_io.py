"""cofi.audio.io decodes every supported format to 16 kHz and rejects bad audio precisely."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from cofi.audio.io import load_audio, write_wav
from cofi.errors import PermanentError


def _tone(sr: int, sec: float = 1.0, channels: int = 2) -> np.ndarray:
    t = np.arange(int(sr * sec)) / sr
    left = 0.3 * np.sin(2 * np.pi * 440 * t)
    return np.stack([left, 0.1 * np.sin(2 * np.pi * 880 * t)], axis=1)[:, :channels]


@pytest.mark.parametrize("fmt,sr", [("wav", 8000), ("wav", 44100), ("flac", 16000), ("ogg", 48000)])
def test_decodes_and_resamples_once_to_16k(tmp_path: Path, fmt: str, sr: int) -> None:
    p = tmp_path / f"x.{fmt}"
    sf.write(p, _tone(sr), sr)
    a = load_audio(p)
    assert a.sample_rate == 16000 and a.stereo and a.roles == ["agent", "customer"]
    assert abs(a.duration - 1.0) < 0.01
    # the left channel keeps its 440 Hz tone at its level after resampling
    spec = np.abs(np.fft.rfft(a.channel("agent")))
    assert abs(np.argmax(spec) * 16000 / len(a.channel("agent")) - 440) < 3
    assert abs(np.sqrt(np.mean(a.channel("agent") ** 2)) - 0.3 / np.sqrt(2)) < 0.02


def test_mp3_and_mono(tmp_path: Path) -> None:
    wav = tmp_path / "m.wav"
    sf.write(wav, _tone(22050, 2.0, channels=1), 22050)
    mp3 = tmp_path / "m.mp3"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(wav), str(mp3)], check=True)
    a = load_audio(mp3)
    assert not a.stereo and a.roles == ["mixed"] and a.sample_rate == 16000
    assert abs(a.duration - 2.0) < 0.1


def test_channel_roles_setting(tmp_path: Path) -> None:
    p = tmp_path / "r.wav"
    sf.write(p, _tone(16000), 16000)
    assert load_audio(p, channel_roles="customer,agent").roles == ["customer", "agent"]


def test_silence_is_valid_audio(tmp_path: Path) -> None:
    p = write_wav(tmp_path / "s.wav", np.zeros((16000, 2), dtype=np.float32))
    assert load_audio(p).duration == 1.0


@pytest.mark.parametrize("case,message", [
    ("missing", "audio file not found"),
    ("empty", "audio file is empty (0 bytes)"),
    ("corrupt", "cannot decode audio"),
    ("zero_length", "zero length"),
    ("too_long", "over MAX_AUDIO_SECONDS=60"),
    ("directory", "not a regular file"),
])
def test_bad_audio_is_permanent_with_path_and_reason(tmp_path: Path, case: str, message: str) -> None:
    p = tmp_path / f"{case}.wav"
    if case == "empty":
        p.write_bytes(b"")
    elif case == "corrupt":
        p.write_bytes(b"RIFF\x00\x00\x00\x00WAVEthis is not audio at all" * 10)
    elif case == "zero_length":
        sf.write(p, np.zeros((0, 2)), 16000)
    elif case == "too_long":
        sf.write(p, np.zeros((16000 * 61, 1), dtype=np.int16), 16000, subtype="PCM_16")
    elif case == "directory":
        p.mkdir()
    with pytest.raises(PermanentError) as err:
        load_audio(p, max_seconds=60)
    assert str(p) in str(err.value) and message in str(err.value)


def test_random_bytes_with_mp3_name_is_permanent(tmp_path: Path) -> None:
    p = tmp_path / "junk.mp3"
    p.write_bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    with pytest.raises(PermanentError, match="junk.mp3"):
        load_audio(p)
