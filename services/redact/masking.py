"""Redacted audio: each redacted mention's time span replaced by a tone or by silence, in every channel.

Every channel, not only the speaker's: on a stereo call the other leg often carries the voice as
echo or crosstalk, and on a mono call there is one channel anyway. Spans are widened by
REDACT_AUDIO_PAD_SEC on both sides (Whisper's word times are off by a tenth of a second or two)
and faded in and out over 5 ms, so the tone does not click.
"""

from __future__ import annotations

import numpy as np

TONE_LEVEL = 0.1  # -20 dBFS: a clear bleep, below the speech peaks
FADE_SEC = 0.005


def merge(spans: list[tuple[float, float]], pad: float, duration: float) -> list[tuple[float, float]]:
    """Padded, clipped to the call, overlapping or touching spans joined; sorted."""
    out: list[tuple[float, float]] = []
    for a, b in sorted((max(0.0, a - pad), min(duration, b + pad)) for a, b in spans):
        if b <= a:
            continue
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def mask(samples: np.ndarray, sample_rate: int, spans: list[tuple[float, float]], *, mode: str = "tone",
         tone_hz: float = 1000.0) -> np.ndarray:
    """A copy of (frames, channels) `samples` with each span toned out or silenced in every channel."""
    out = samples.copy()
    fade = max(1, int(FADE_SEC * sample_rate))
    for a, b in spans:
        i, j = int(round(a * sample_rate)), min(len(out), int(round(b * sample_rate)))
        if j <= i:
            continue
        n = j - i
        env = np.ones(n, dtype=np.float32)
        k = min(fade, n // 2)
        if k:
            ramp = np.linspace(0.0, 1.0, k, dtype=np.float32)
            env[:k], env[n - k:] = ramp, ramp[::-1]
        fill = (TONE_LEVEL * np.sin(2 * np.pi * tone_hz * np.arange(n) / sample_rate)).astype(np.float32) * env \
            if mode == "tone" else np.zeros(n, dtype=np.float32)
        out[i:j, :] = fill[:, None]
    return out
