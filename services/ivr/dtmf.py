"""DTMF digit detection with the Goertzel algorithm (8 tone powers per frame, no FFT)."""

from __future__ import annotations

import numpy as np

LOW = (697, 770, 852, 941)
HIGH = (1209, 1336, 1477, 1633)
KEYS = ("123A", "456B", "789C", "*0#D")


def goertzel(frames: np.ndarray, freqs: tuple[int, ...], sr: int) -> np.ndarray:
    """|X(f)|^2 of each frame (rows) at each frequency, by the Goertzel recurrence vectorised over frames."""
    coeff = 2 * np.cos(2 * np.pi * np.asarray(freqs, dtype=np.float64) / sr)
    s1 = np.zeros((frames.shape[0], len(freqs)))
    s2 = np.zeros_like(s1)
    for n in range(frames.shape[1]):
        s = frames[:, n, None] + coeff * s1 - s2
        s2, s1 = s1, s
    return s1**2 + s2**2 - coeff * s1 * s2


def frame_digits(x: np.ndarray, sr: int, frame: int) -> list[str]:
    """The DTMF digit in each non-overlapping frame, or '' where there is none.

    A frame holds a digit when one low-group and one high-group tone carry most of its
    energy (a pure tone pair scores 1.0, speech and noise far less), each dominates its
    group, and the pair is loud enough to be a signal.
    """
    n = len(x) // frame
    if n == 0:
        return []
    frames = x[: n * frame].reshape(n, frame).astype(np.float64)
    energy = (frames**2).sum(axis=1) + 1e-12
    norm = 2.0 / (frame * energy[:, None])
    lo = goertzel(frames, LOW, sr) * norm
    hi = goertzel(frames, HIGH, sr) * norm
    out: list[str] = []
    for i in range(n):
        li, hi_i = int(lo[i].argmax()), int(hi[i].argmax())
        pl, ph = lo[i, li], hi[i, hi_i]
        second_lo = np.partition(lo[i], -2)[-2]
        second_hi = np.partition(hi[i], -2)[-2]
        ok = (pl + ph > 0.6 and pl > 0.15 and ph > 0.15 and second_lo < pl / 4 and second_hi < ph / 4
              and energy[i] / frame > 1e-6)
        out.append(KEYS[li][hi_i] if ok else "")
    return out

