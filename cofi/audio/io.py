"""Audio I/O for the audio stages: decode any call once into 16 kHz float32, write WAVs.

libsndfile (soundfile) reads WAV/FLAC/OGG and, in recent builds, MP3; anything it cannot
read goes through PyAV (FFmpeg), which faster-whisper already depends on. Every failure
is a `PermanentError` naming the path and the reason, because bad audio never heals.
"""

from __future__ import annotations

import io
import itertools
import logging
import os
import tempfile
from dataclasses import dataclass
from math import gcd
from pathlib import Path

import numpy as np
import soundfile as sf

from cofi.errors import PermanentError

TARGET_SR = 16000
BLOCK_SECONDS = 30.0  # decoded and resampled at a time
SAME_SIGNAL_CORR = 0.98  # two channels this correlated over the whole call are one mix, not two legs

log = logging.getLogger(__name__)


@dataclass
class Audio:
    """Decoded call: `samples` is (frames, channels) float32 at `sample_rate`."""

    path: str
    samples: np.ndarray
    sample_rate: int
    roles: list[str]  # one per channel, e.g. ["agent", "customer"]; ["mixed"] for mono
    merged: bool = False  # stereo on disk, but the same signal on both channels: read as mono

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


class UndecodableAudio(PermanentError):
    """The decoder could not read the body (not a size limit or bad samples: another decoder may)."""


class StreamResampler:
    """`resample` on a stream of blocks, equal to it on the whole signal (to float32 rounding) while holding
    only one block at the source rate: each block is filtered with enough of its neighbours around it
    (a multiple of `down` input samples, so the polyphase phases line up) and the overlap is cut off."""

    def __init__(self, sr_in: int, sr_out: int = TARGET_SR) -> None:
        g = gcd(sr_in, sr_out)
        self.up, self.down, self.same = sr_out // g, sr_in // g, sr_in == sr_out
        half_len = 10 * max(self.up, self.down)  # resample_poly's default filter half length (upsampled)
        self.pad = self.down * (-(-(half_len // self.up + 2) // self.down))
        self.buf: np.ndarray | None = None
        self.buf_at = 0  # input index of buf[0]
        self.done = 0  # input samples already turned into output (a multiple of `down`)
        self.out: list[np.ndarray] = []

    def feed(self, block: np.ndarray) -> None:
        if self.same:
            self.out.append(block.astype(np.float32, copy=False))
            return
        self.buf = block if self.buf is None else np.concatenate([self.buf, block])
        stop = ((self.buf_at + len(self.buf) - self.pad) // self.down) * self.down
        if stop - self.done >= 4 * self.pad:
            self._emit(stop)

    def _emit(self, stop: int | None) -> None:
        from scipy.signal import resample_poly

        assert self.buf is not None
        ctx = max(self.done - self.pad, 0)
        seg = self.buf[ctx - self.buf_at:] if stop is None else self.buf[ctx - self.buf_at:stop + self.pad - self.buf_at]
        y = resample_poly(seg, self.up, self.down, axis=0)
        first = (self.done - ctx) * self.up // self.down
        last = None if stop is None else (stop - ctx) * self.up // self.down
        self.out.append(y[first:last].astype(np.float32))
        if stop is not None:
            self.done = stop
            drop = max(0, stop - self.pad - self.buf_at)
            self.buf, self.buf_at = self.buf[drop:], self.buf_at + drop

    def result(self, channels: int) -> np.ndarray:
        if not self.same and self.buf is not None and len(self.buf):
            self._emit(None)
        return np.concatenate(self.out) if self.out else np.zeros((0, channels), dtype=np.float32)


def _header(path: Path) -> sf._SoundFileInfo | None:
    """libsndfile's view of the header (frames, channels, rate), without decoding; None if it cannot read it."""
    try:
        return sf.info(str(path))
    except Exception:
        return None


def _check_stream(path: Path, seconds: float | None, channels: int, rate: int, limits: AudioLimits) -> None:
    """Sizes from the header, before a sample is decoded: a 192 kHz or 8-channel file fails here, not in OOM."""
    if rate > limits.max_sample_rate:
        raise PermanentError(f"{path}: sample rate {rate} Hz, over MAX_SAMPLE_RATE={limits.max_sample_rate}")
    if channels > 2:
        raise PermanentError(f"{path}: {channels} channels; only mono or stereo (one speaker per channel) is supported")
    if seconds is not None and seconds > limits.max_seconds:
        raise PermanentError(f"{path}: audio is {seconds:.0f} s long, over MAX_AUDIO_SECONDS={limits.max_seconds:.0f}")


def _check_block(path: Path, block: np.ndarray, frames_before: int, rate: int, limits: AudioLimits) -> None:
    if not np.isfinite(block).all():
        raise PermanentError(f"{path}: audio contains NaN or infinite samples")
    if (frames_before + len(block)) / rate > limits.max_seconds:  # a header that lied about the length
        raise PermanentError(f"{path}: audio runs past MAX_AUDIO_SECONDS={limits.max_seconds:.0f}")


def _decode_soundfile(path: Path, info: sf._SoundFileInfo, limits: AudioLimits,
                      head_sec: float | None = None) -> np.ndarray:
    """16 kHz float32, read and resampled BLOCK_SECONDS at a time (the first `head_sec` only, when given)."""
    stream = StreamResampler(info.samplerate)
    frames = 0
    blocksize = max(1, int(info.samplerate * BLOCK_SECONDS))
    stop = int(head_sec * info.samplerate) if head_sec is not None else None
    try:
        with sf.SoundFile(str(path)) as f:
            # read() until empty, not blocks(): libsndfile calls some codecs (GSM 6.10 WAV) not seekable,
            # and blocks() refuses those.
            while (stop is None or frames < stop) and len(block := f.read(blocksize, dtype="float32", always_2d=True)):
                _check_block(path, block, frames, info.samplerate, limits)
                frames += len(block)
                stream.feed(block)
    except PermanentError:
        raise
    except Exception as exc:
        raise UndecodableAudio(f"{path}: cannot decode audio ({exc})") from exc
    return stream.result(info.channels)


def _decode_av(path: Path, limits: AudioLimits, head_sec: float | None = None) -> np.ndarray:
    """16 kHz float32 through FFmpeg (MP3 and what libsndfile cannot read), resampled as frames arrive (the
    first `head_sec` only, when given)."""
    import av  # PyAV, installed with faster-whisper

    chunks: list[np.ndarray] = []
    frames = 0
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise PermanentError(f"{path}: no audio stream")
            stream = container.streams.audio[0]
            channels = stream.codec_context.channels or 1
            _check_stream(path, container.duration / 1e6 if container.duration else None, channels,
                          stream.codec_context.sample_rate or 0, limits)
            resampler = av.AudioResampler(format="fltp", layout="stereo" if channels == 2 else "mono", rate=TARGET_SR)
            for frame in itertools.chain(container.decode(stream), [None]):  # None flushes the resampler
                if head_sec is not None and frames >= head_sec * TARGET_SR:
                    break
                for out in resampler.resample(frame):
                    block = out.to_ndarray().T
                    _check_block(path, block, frames, TARGET_SR, limits)
                    frames += len(block)
                    chunks.append(block)
    except PermanentError:
        raise
    except Exception as exc:  # av raises many error types for garbage input
        raise PermanentError(f"{path}: cannot decode audio ({type(exc).__name__}: {exc})") from exc
    if not chunks:
        return np.zeros((0, 1), dtype=np.float32)
    return np.ascontiguousarray(np.concatenate(chunks).astype(np.float32, copy=False))


@dataclass(frozen=True)
class AudioLimits:
    """What a call may be, checked before and while decoding (settings MAX_AUDIO_*, MAX_SAMPLE_RATE)."""

    max_seconds: float = 4 * 3600
    max_bytes: int = 2 * 1024**3
    max_sample_rate: int = 96_000


def load_audio(path: str | Path, *, max_seconds: float = 4 * 3600, channel_roles: str = "agent,customer",
               max_bytes: int = 2 * 1024**3, max_sample_rate: int = 96_000, head_sec: float | None = None) -> Audio:
    """Decode, check and resample a call to 16 kHz; mono stays one channel, stereo keeps its two roles;
    `head_sec`: its first seconds only (stt reads the IVR prelude so, not a 4-hour call a second time).

    Sizes are checked before decoding (bytes on disk; rate, channels and length from the header) and
    decoding goes a block at a time, so no file can make the stage hold more than its 16 kHz samples."""
    limits = AudioLimits(max_seconds, max_bytes, max_sample_rate)
    p = Path(path)
    if not p.exists():
        raise PermanentError(f"{p}: audio file not found")
    if not p.is_file():
        raise PermanentError(f"{p}: not a regular file")
    size = p.stat().st_size
    if size == 0:
        raise PermanentError(f"{p}: audio file is empty (0 bytes)")
    if size > limits.max_bytes:
        raise PermanentError(f"{p}: audio file is {size:,} bytes, over MAX_AUDIO_BYTES={limits.max_bytes:,}")
    info = _header(p)
    if info is not None:
        _check_stream(p, info.frames / info.samplerate if info.samplerate else 0.0, info.channels,
                      info.samplerate, limits)
        try:
            data = _decode_soundfile(p, info, limits, head_sec)
        except UndecodableAudio as sf_error:
            # libsndfile read the header but not the body: FFmpeg may know the codec; if not, both reasons.
            try:
                data = _decode_av(p, limits, head_sec)
            except PermanentError as av_error:
                raise PermanentError(f"{sf_error}; FFmpeg: {str(av_error).removeprefix(f'{p}: ')}") from av_error
    else:
        data = _decode_av(p, limits, head_sec)
    if head_sec is not None:
        data = data[: int(round(head_sec * TARGET_SR))]
    if data.shape[0] == 0:
        raise PermanentError(f"{p}: audio has zero length (no samples)")
    merged = False
    if data.shape[1] == 2 and (corr := channel_correlation(data)) >= SAME_SIGNAL_CORR:
        log.info("%s: the same signal on both channels (correlation %.3f): read as mono, not as two legs", p, corr)
        data, merged = data.mean(axis=1, keepdims=True), True
    roles = parse_roles(channel_roles) if data.shape[1] == 2 else ["mixed"]
    return Audio(path=str(p), samples=np.ascontiguousarray(data), sample_rate=TARGET_SR, roles=roles, merged=merged)


def channel_correlation(data: np.ndarray, block: int = 1 << 20) -> float:
    """Correlation of the two channels over the whole call (0.0 when either is silent).

    A recorder that writes one mix to both channels ("dual mono") makes a stereo file whose channels are
    not the agent and the customer: read as two legs, every word would be said by both, and the IVR
    rule (the prompt is the signal heard on both legs) would take the whole call for a prelude. Two real
    legs correlate only where the switch plays the same prompt to both, far below SAME_SIGNAL_CORR."""
    lr = ll = rr = 0.0
    for i in range(0, len(data), block):
        left, right = data[i:i + block, 0].astype(np.float64), data[i:i + block, 1].astype(np.float64)
        lr, ll, rr = lr + float(left @ right), ll + float(left @ left), rr + float(right @ right)
    return lr / np.sqrt(ll * rr) if ll > 1e-9 and rr > 1e-9 else 0.0


def load_settings_audio(path: str | Path, settings: object, head_sec: float | None = None) -> Audio:
    """`load_audio` with MAX_AUDIO_SECONDS, MAX_AUDIO_BYTES, MAX_SAMPLE_RATE and CHANNEL_ROLES from settings."""
    return load_audio(path, max_seconds=float(settings.max_audio_seconds),  # type: ignore[attr-defined]
                      channel_roles=str(settings.channel_roles),  # type: ignore[attr-defined]
                      max_bytes=int(settings.max_audio_bytes),  # type: ignore[attr-defined]
                      max_sample_rate=int(settings.max_sample_rate), head_sec=head_sec)  # type: ignore[attr-defined]


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
