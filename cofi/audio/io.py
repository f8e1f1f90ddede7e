"""Audio I/O for the audio stages: decode any call once into 16 kHz float32, write WAVs.

libsndfile (soundfile) reads WAV/FLAC/OGG and, in recent builds, MP3; anything it cannot
read goes through PyAV (FFmpeg), which faster-whisper already depends on. Every failure
is a `PermanentError` naming the path and the reason, because bad audio never heals.
"""

from __future__ import annotations

import io
import os
import tempfile
from dataclasses import dataclass
from math import gcd
from pathlib import Path

import numpy as np
import soundfile as sf

from cofi.errors import PermanentError

TARGET_SR = 16000


@dataclass
class Audio:
    """Decoded call: `samples` is (frames, channels) float32 at `sample_rate`."""

    path: str
    samples: np.ndarray
    sample_rate: int
    roles: list[str]  # one per channel, e.g. ["agent", "customer"]; ["mixed"] for mono

    @property
    def duration(self) -> float:
        return self.samples.shape[0] / self.sample_rate

    @property
    def stereo(self) -> bool:
        return self.samples.shape[1] == 2

    def mono(self) -> np.ndarray:
        return self.samples.mean(axis=1) if self.stereo else self.samples[:, 0]

    def channel(self, role: str) -> np.ndarray:
        return self.samples[:, self.roles.index(role)]


def parse_roles(channel_roles: str) -> list[str]:
    roles = [r.strip() for r in channel_roles.split(",") if r.strip()]
    if len(roles) != 2 or len(set(roles)) != 2:
        raise ValueError(f"CHANNEL_ROLES must name two distinct roles (left,right), got {channel_roles!r}")
    return roles


def resample(x: np.ndarray, sr_in: int, sr_out: int = TARGET_SR) -> np.ndarray:
    """Polyphase resampling along axis 0 (one pass, anti-aliased)."""
    if sr_in == sr_out:
        return x.astype(np.float32, copy=False)
    from scipy.signal import resample_poly

    g = gcd(sr_in, sr_out)
    return resample_poly(x, sr_out // g, sr_in // g, axis=0).astype(np.float32)


def _duration_hint(path: Path) -> tuple[float, int, int] | None:
    """(seconds, channels, rate) from the header, without decoding; None if libsndfile cannot read it."""
    try:
        info = sf.info(str(path))
    except Exception:
        return None
    return info.frames / info.samplerate if info.samplerate else 0.0, info.channels, info.samplerate


def _decode_soundfile(path: Path) -> tuple[np.ndarray, int]:
    data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    return data, sr


def _decode_av(path: Path, max_seconds: float) -> tuple[np.ndarray, int]:
    import av  # PyAV, installed with faster-whisper

    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise PermanentError(f"{path}: no audio stream")
            stream = container.streams.audio[0]
            channels = stream.codec_context.channels or 1
            if container.duration and container.duration / 1e6 > max_seconds:
                raise PermanentError(f"{path}: audio is {container.duration / 1e6:.0f} s long, "
                                     f"over MAX_AUDIO_SECONDS={max_seconds:.0f}")
            layout = "stereo" if channels >= 2 else "mono"
            resampler = av.AudioResampler(format="fltp", layout=layout, rate=TARGET_SR)
            chunks: list[np.ndarray] = []
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray())
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray())
    except PermanentError:
        raise
    except Exception as exc:  # av raises many error types for garbage input
        raise PermanentError(f"{path}: cannot decode audio ({type(exc).__name__}: {exc})") from exc
    if not chunks:
        return np.zeros((0, 1 if layout == "mono" else 2), dtype=np.float32), TARGET_SR
    return np.concatenate(chunks, axis=1).T.astype(np.float32), TARGET_SR


def load_audio(path: str | Path, *, max_seconds: float = 4 * 3600, channel_roles: str = "agent,customer") -> Audio:
    """Decode, check and resample a call to 16 kHz; mono stays one channel, stereo keeps its two roles."""
    p = Path(path)
    if not p.exists():
        raise PermanentError(f"{p}: audio file not found")
    if not p.is_file():
        raise PermanentError(f"{p}: not a regular file")
    if p.stat().st_size == 0:
        raise PermanentError(f"{p}: audio file is empty (0 bytes)")
    hint = _duration_hint(p)
    if hint is not None:
        seconds, channels, _ = hint
        if seconds > max_seconds:
            raise PermanentError(f"{p}: audio is {seconds:.0f} s long, over MAX_AUDIO_SECONDS={max_seconds:.0f}")
        if channels > 2:
            raise PermanentError(f"{p}: {channels} channels; only mono or stereo (one speaker per channel) is supported")
        try:
            data, sr = _decode_soundfile(p)
        except Exception as exc:
            raise PermanentError(f"{p}: cannot decode audio ({exc})") from exc
    else:
        data, sr = _decode_av(p, max_seconds)
    if data.shape[0] == 0:
        raise PermanentError(f"{p}: audio has zero length (no samples)")
    if data.shape[1] > 2:
        raise PermanentError(f"{p}: {data.shape[1]} channels; only mono or stereo is supported")
    if not np.isfinite(data).all():
        raise PermanentError(f"{p}: audio contains NaN or infinite samples")
    if data.shape[0] / sr > max_seconds:
        raise PermanentError(f"{p}: audio is {data.shape[0] / sr:.0f} s long, over MAX_AUDIO_SECONDS={max_seconds:.0f}")
    data = resample(data, sr, TARGET_SR)
    roles = parse_roles(channel_roles) if data.shape[1] == 2 else ["mixed"]
    return Audio(path=str(p), samples=np.ascontiguousarray(data), sample_rate=TARGET_SR, roles=roles)


def load_settings_audio(path: str | Path, settings: object) -> Audio:
    """`load_audio` with MAX_AUDIO_SECONDS and CHANNEL_ROLES from settings."""
    return load_audio(path, max_seconds=float(settings.max_audio_seconds),  # type: ignore[attr-defined]
                      channel_roles=str(settings.channel_roles))  # type: ignore[attr-defined]


def write_wav(path: str | Path, samples: np.ndarray, sample_rate: int = TARGET_SR) -> Path:
    """16-bit PCM WAV written atomically (tmp + rename), so a crashed retry never leaves half a file."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".tmp")
    os.close(fd)
    try:
        sf.write(tmp, np.clip(samples, -1.0, 1.0), sample_rate, subtype="PCM_16", format="WAV")
        os.replace(tmp, p)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return p


def wav_bytes(samples: np.ndarray, sample_rate: int = TARGET_SR) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, np.clip(samples, -1.0, 1.0), sample_rate, subtype="PCM_16", format="WAV")
    return buf.getvalue()


def read_wav_bytes(data: bytes, what: str = "audio") -> tuple[np.ndarray, int]:
    """(frames, channels) float32 and rate from WAV/FLAC bytes; PermanentError if not audio."""
    if not data:
        raise PermanentError(f"{what}: empty body")
    try:
        arr, sr = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except Exception as exc:
        raise PermanentError(f"{what}: not decodable audio ({exc})") from exc
    if arr.shape[0] == 0:
        raise PermanentError(f"{what}: audio has zero length (no samples)")
    return arr, sr
