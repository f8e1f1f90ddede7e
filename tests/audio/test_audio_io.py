"""cofi.audio.io decodes every supported format to 16 kHz and rejects bad audio precisely."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from cofi.audio.io import StreamResampler, load_audio, resample, write_wav
from cofi.errors import PermanentError
from cofi.pipeline.manifest import AUDIO_EXTENSIONS


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


@pytest.mark.parametrize("subtype,channels", [("ULAW", 2), ("ALAW", 2), ("IMA_ADPCM", 2), ("MS_ADPCM", 2),
                                               ("GSM610", 1)])
def test_telephony_codecs_in_wav(tmp_path: Path, subtype: str, channels: int) -> None:
    """What call recorders write: G.711 mu-law/A-law, ADPCM and GSM 6.10 (which libsndfile reads but calls
    not seekable, and read block by block failed: 'frames must be specified for non-seekable files')."""
    p = tmp_path / f"{subtype}.wav"
    sf.write(p, _tone(8000, 2.0, channels), 8000, format="WAV", subtype=subtype)
    a = load_audio(p)
    assert a.sample_rate == 16000 and a.stereo == (channels == 2) and abs(a.duration - 2.0) < 0.05
    first = a.samples[:, 0]
    assert abs(np.argmax(np.abs(np.fft.rfft(first))) * 16000 / len(first) - 440) < 3


def test_ffmpeg_decodes_what_libsndfile_reads_the_header_of_but_not_the_body(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = tmp_path / "odd.wav"
    sf.write(p, _tone(8000, 1.0), 8000)

    def refuse(self: sf.SoundFile, *args: object, **kwargs: object) -> np.ndarray:
        raise RuntimeError("unsupported codec")

    monkeypatch.setattr(sf.SoundFile, "read", refuse)
    a = load_audio(p)
    assert a.stereo and abs(a.duration - 1.0) < 0.02
    import av

    def no_decoder(*args: object, **kwargs: object) -> None:
        raise ValueError("no decoder for it either")

    monkeypatch.setattr(av, "open", no_decoder)  # and when FFmpeg cannot either: both reasons, one error
    with pytest.raises(PermanentError) as err:
        load_audio(p)
    assert str(err.value).startswith(f"{p}: cannot decode audio (unsupported codec); FFmpeg: cannot decode")
    assert "no decoder for it either" in str(err.value)


def test_the_same_signal_on_both_channels_is_mono(tmp_path: Path) -> None:
    """Dual mono (one mix on both channels, at any gain, through a lossy codec too) is read as one mixed
    channel; two legs that share only their prelude stay two speakers."""
    t = np.arange(8000 * 3) / 8000
    mix = 0.3 * np.sin(2 * np.pi * 300 * t) * np.sin(2 * np.pi * 1.3 * t)
    wav = tmp_path / "dual.wav"
    sf.write(wav, np.stack([mix, 0.5 * mix], axis=1), 8000)
    mp3 = tmp_path / "dual.mp3"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(wav), str(mp3)], check=True)
    for p in (wav, mp3):
        a = load_audio(p)
        assert not a.stereo and a.roles == ["mixed"] and a.merged and abs(a.duration - 3.0) < 0.1
    legs = np.stack([mix, 0.2 * np.sin(2 * np.pi * 500 * t)], axis=1)
    legs[: 8000, 1] = 0.5 * mix[: 8000]  # a shared first second (the switch's prompt), then each leg its own
    sf.write(tmp_path / "legs.wav", legs, 8000)
    a = load_audio(tmp_path / "legs.wav")
    assert a.stereo and a.roles == ["agent", "customer"] and not a.merged
    sf.write(tmp_path / "one_leg.wav", np.stack([mix, np.zeros_like(mix)], axis=1), 8000)
    assert load_audio(tmp_path / "one_leg.wav").stereo  # a silent leg is a leg


# How ffmpeg writes a 2 s stereo 8 kHz tone in each container cofi's manifests accept.
FFMPEG_ARGS = {".mp3": [], ".ogg": ["-c:a", "libvorbis"], ".oga": ["-c:a", "libvorbis"], ".opus": ["-c:a", "libopus"],
               ".webm": ["-c:a", "libopus"], ".m4a": ["-c:a", "aac"], ".aac": ["-c:a", "aac"],
               ".3gp": ["-ac", "1", "-c:a", "aac"], ".wma": ["-c:a", "wmav2"], ".aif": [], ".aiff": [], ".au": [],
               ".caf": ["-c:a", "pcm_s16le"], ".gsm": ["-ac", "1", "-c:a", "libgsm", "-f", "gsm"], ".flac": [],
               ".wav": []}


@pytest.mark.parametrize("suffix", sorted(AUDIO_EXTENSIONS))
def test_every_extension_a_manifest_takes_decodes(tmp_path: Path, suffix: str) -> None:
    src = tmp_path / "src.wav"
    sf.write(src, _tone(8000, 2.0), 8000)
    out = tmp_path / f"call{suffix}"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(src), *FFMPEG_ARGS[suffix], str(out)], check=True)
    a = load_audio(out)
    assert a.sample_rate == 16000 and abs(a.duration - 2.0) < 0.2
    first = a.samples[:, 0]
    assert abs(np.argmax(np.abs(np.fft.rfft(first))) * 16000 / len(first) - 440) < 5


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


@pytest.mark.parametrize("case,message", [
    ("rate_192k", "sample rate 192000 Hz, over MAX_SAMPLE_RATE=96000"),
    ("bytes", "bytes, over MAX_AUDIO_BYTES=10,000"),
    ("six_channels_wav", "6 channels; only mono or stereo"),
    ("six_channels_ogg", "6 channels; only mono or stereo"),
    ("nan", "NaN or infinite samples"),
])
def test_sizes_are_checked_before_decoding(tmp_path: Path, case: str, message: str) -> None:
    """A 192 kHz, multi-channel or oversized file fails from its header or size, with the reason, before the
    stage decodes it (a multi-GB decode used to OOM-kill the stage on every retry)."""
    p = tmp_path / f"{case}.{'ogg' if case.endswith('ogg') else 'wav'}"
    if case == "rate_192k":
        sf.write(p, np.zeros((1920, 1), dtype=np.int16), 192_000, subtype="PCM_16")
    elif case == "bytes":
        sf.write(p, _tone(16000, 1.0), 16000)
    elif case.startswith("six_channels"):
        sf.write(p, np.zeros((16000, 6), dtype=np.float32), 16000)
    elif case == "nan":
        data = _tone(16000, 40.0).astype(np.float32)
        data[16000 * 35, 0] = np.nan  # in the second block
        sf.write(p, data, 16000, subtype="FLOAT")
    with pytest.raises(PermanentError) as err:
        load_audio(p, max_bytes=10_000 if case == "bytes" else 2 * 1024**3)
    assert str(p) in str(err.value) and message in str(err.value)


@pytest.mark.parametrize("sr,block", [(8000, 333), (44100, 44100 * 3 + 7), (48000, 100_000), (22050, 1)])
def test_block_resampling_equals_whole_file_resampling(sr: int, block: int) -> None:
    """Decoding a block at a time (no whole-file float64 copy) gives the samples one pass would."""
    x = np.random.default_rng(sr).standard_normal((sr * 3 + 11 if block > 1 else 4000, 2)).astype(np.float32)
    stream = StreamResampler(sr)
    for i in range(0, len(x), block):
        stream.feed(x[i:i + block])
    assert np.array_equal(stream.result(2), resample(x, sr))


def test_long_file_decodes_block_by_block_to_the_same_samples(tmp_path: Path) -> None:
    p = tmp_path / "long.wav"
    data = _tone(44100, 75.0)  # three 30 s blocks
    sf.write(p, data, 44100, subtype="FLOAT")
    a = load_audio(p)
    assert np.array_equal(a.samples, resample(data.astype(np.float32), 44100))


@pytest.mark.parametrize("suffix", [".wav", ".mp3"])
def test_the_head_of_a_call_is_read_without_decoding_the_rest(tmp_path: Path, suffix: str) -> None:
    """stt reads the IVR prelude from the ivr stage's input: its first seconds, not a 4-hour call again. The
    head is the full decode's first samples (libsndfile and FFmpeg alike), and a head past the end is the call."""
    wav = tmp_path / "long.wav"
    sf.write(wav, _tone(8000, 6.0), 8000)
    path = wav
    if suffix == ".mp3":
        path = tmp_path / "long.mp3"
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(wav), str(path)], check=True)
    whole, head = load_audio(path), load_audio(path, head_sec=2.5)
    assert head.samples.shape == (40000, 2)
    # the resampler's filter sees a few samples less context at the cut: equal up to its last 10 ms
    assert np.allclose(head.samples[:-160], whole.samples[:40000 - 160], atol=1e-3)
    assert load_audio(path, head_sec=60.0).samples.shape == whole.samples.shape
