"""Where the automated prelude of a call ends, from DTMF, hold music, shared-channel prompts and VAD.

How it decides (frame grid: 32 ms, the Silero VAD window; only the first IVR_MAX_SEC seconds):
- DTMF key presses (Goertzel) and hold music (0.5 s stretches of sustained notes: a
  prominent spectral peak that holds its frequency for >= 128 ms) are always prelude.
- Stereo: the switch plays the IVR prompt to both legs, so prelude speech is the same
  signal on both channels (energy on both, and correlation > 0.6 or levels within 3 dB);
  a human speaks on one leg only (VAD speech there, that leg >= 6 dB louder). The first human turn is the first >= 0.25 s of speech that is single-
  channel; the prelude ends at the last prelude frame before it. Recorded on the trunk, the prompt
  reaches one leg only: then the prelude ends at the last DTMF/music run before which at most 20 s of
  speech was heard, all of it on one leg (a customer on hold mid-call has spoken on theirs).
- Mono: prompt and agent cannot be told apart by channel, so the prelude ends at the last
  DTMF/music run that follows at most 20 s of speech (a prompt, not a conversation). A mono
  call whose IVR has neither DTMF nor music is reported as having no IVR.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cofi.audio.io import Audio
from cofi.models.whisper import VAD_FRAME, vad_probs
from services.ivr.dtmf import frame_digits

SHARED_CORR = 0.6
BALANCE_DB = 3.0
MUSIC_WINDOW = 16  # frames (0.5 s)
HUMAN_RUN = 8  # frames (256 ms) of single-channel speech that make a human turn
MAX_PROMPT_SPEECH_SEC = 20.0
ONE_LEG_QUIET_SEC = 0.5  # speech on the other leg before a tone run, below which only a prompt had spoken


@dataclass
class Decision:
    detected: bool
    end_sec: float
    digits: str
    reason: str


def _frames(x: np.ndarray) -> np.ndarray:
    n = len(x) // VAD_FRAME
    return x[: n * VAD_FRAME].reshape(n, VAD_FRAME).astype(np.float64)


def _energetic(frames: np.ndarray) -> np.ndarray:
    """Frames 6 dB above the channel's noise floor (10th percentile) and above -70 dBFS."""
    power = (frames**2).mean(axis=1)
    floor = np.percentile(power, 10) if len(power) else 0.0
    return (power > floor * 4) & (power > 1e-7)


def _steady_tones(frames: np.ndarray, min_run: int = 4) -> np.ndarray:
    """Frames inside runs of >= min_run frames whose dominant spectral peak holds its frequency
    (+-1 bin) with a prominent peak: sustained musical notes. Speech pitch and formants move."""
    spec = np.abs(np.fft.rfft(frames * np.hanning(frames.shape[1]), axis=1)) ** 2
    spec[:, :3] = 0.0  # ignore DC and rumble below ~90 Hz
    k = spec.argmax(axis=1)
    prominent = spec.max(axis=1) / (np.median(spec, axis=1) + 1e-12) > 50
    out = np.zeros(len(k), dtype=bool)
    i = 0
    while i < len(k):
        j = i + 1
        while j < len(k) and abs(int(k[j]) - int(k[i])) <= 1 and prominent[j]:
            j += 1
        if prominent[i] and j - i >= min_run:
            out[i:j] = True
        i = j
    return out


def _music(frames: np.ndarray, exclude: np.ndarray) -> np.ndarray:
    """Hold music: 0.5 s windows where >= 60% of frames are sustained notes (speech has a few
    steady vowels, never that many), gaps < 0.15 s bridged, kept as runs >= 0.75 s."""
    steady = _steady_tones(frames) & ~exclude
    win = MUSIC_WINDOW
    if len(steady) < win:
        return np.zeros(len(steady), dtype=bool)
    dense = np.convolve(steady.astype(float), np.ones(win), mode="valid") >= 0.6 * win
    covered = np.zeros(len(steady), dtype=bool)
    for i in np.flatnonzero(dense):
        covered[i: i + win] = steady[i: i + win] | covered[i: i + win]
    runs = _runs(covered)
    merged: list[list[int]] = []
    for a, b in runs:
        if merged and a - merged[-1][1] < 5:
            merged[-1][1] = int(b)
        else:
            merged.append([int(a), int(b)])
    music = np.zeros(len(steady), dtype=bool)
    for a, b in merged:
        if b - a >= 24:
            music[a:b] = True
    return music & ~exclude


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) index runs where mask is true."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True))


def _first_run(mask: np.ndarray, length: int, need: int) -> int | None:
    """First index i where at least `need` of mask[i:i+length] are true."""
    if len(mask) < length:
        return None
    window = np.convolve(mask.astype(np.int32), np.ones(length, dtype=np.int32), mode="valid")
    hits = np.flatnonzero(window >= need)
    if not len(hits):
        return None
    i = int(hits[0])
    return i + int(np.flatnonzero(mask[i: i + length])[0])


def detect(audio: Audio, max_sec: float = 120.0) -> Decision:
    sr = audio.sample_rate
    head = audio.samples[: int(max_sec * sr)]
    chans = [head[:, c] for c in range(head.shape[1])]
    mono = head.mean(axis=1)
    fr = [_frames(c) for c in chans]
    n = len(fr[0])
    if n == 0:
        return Decision(False, 0.0, "", "audio shorter than one frame")
    t = VAD_FRAME / sr

    digits = frame_digits(mono, sr, VAD_FRAME)
    dtmf = np.array([bool(d) for d in digits])
    dtmf_near = np.convolve(dtmf, np.ones(3), mode="same") > 0  # tone edges leak into neighbours
    speech = [vad_probs(c)[:n] > 0.5 for c in chans]
    any_speech = np.logical_or.reduce(speech)
    music = _music(_frames(mono), dtmf_near)

    if audio.stereo:
        both = _energetic(fr[0]) & _energetic(fr[1])
        e0, e1 = (fr[0] ** 2).sum(axis=1) + 1e-12, (fr[1] ** 2).sum(axis=1) + 1e-12
        corr = (fr[0] * fr[1]).sum(axis=1) / np.sqrt(e0 * e1)
        balanced = np.abs(10 * np.log10(e0 / e1)) < BALANCE_DB
        shared = both & ((corr > SHARED_CORR) | balanced)
        prelude = dtmf | music | shared
        # a human talks on one leg: speech there and that leg >= 6 dB louder than the other
        dominant = [e0 > 4 * e1, e1 > 4 * e0]
        human = np.logical_or.reduce([s & d for s, d in zip(speech, dominant, strict=True)]) & ~dtmf_near & ~music
        onset = _first_run(human, HUMAN_RUN, HUMAN_RUN - 2)
        limit = onset if onset is not None else n
        pre_idx = np.flatnonzero(prelude[:limit])
        one_leg = _tone_prelude_end(dtmf | music, [sp & ~dtmf_near & ~music for sp in speech], t)
        # need >= 0.3 s of prelude content: a few correlated frames are chance, not an IVR
        enough = len(pre_idx) * t >= 0.3
        if not enough and one_leg == 0:
            return Decision(False, 0.0, "", "no shared-channel prompt, DTMF or hold music before the first human turn")
        end_i = int(pre_idx[-1]) + 1 if enough else 0
        how = f"first single-channel speech at {onset * t:.2f} s" if onset is not None else "no human turn found"
        parts = [f"prompt on both channels ({shared[:limit].sum() * t:.1f} s)"] if shared[:limit].any() else []
        if one_leg > end_i:
            end_i = one_leg
            how = "prompt on one channel only, then DTMF/hold music, before anyone spoke on the other"
    else:
        end_i = _tone_prelude_end(dtmf | music, [any_speech], t)
        if end_i == 0:
            return Decision(False, 0.0, "", "mono call without DTMF or hold music near the start: no IVR evidence")
        limit = end_i
        how = "mono: prelude ends at the last DTMF/hold music after a short prompt"
        parts = []
    digit_str = _digit_string(digits[:end_i])
    if digit_str:
        parts.append(f"DTMF '{digit_str}'")
    if music[:end_i].any():
        parts.append(f"hold music ({music[:end_i].sum() * t:.1f} s)")
    end_sec = end_i * t
    return Decision(True, end_sec, digit_str, f"{', '.join(parts)}; prelude ends {end_sec:.2f} s; {how}")


def _tone_prelude_end(tones: np.ndarray, speech: list[np.ndarray], t: float) -> int:
    """End (frame) of the last DTMF/hold-music run that follows only a prompt: at most MAX_PROMPT_SPEECH_SEC
    of speech before it and, with one speech track per leg, that speech on one leg only. Mono calls (one
    track) cannot tell prompt from agent any better. Stereo calls recorded on the trunk carry the prompt on
    one leg only (it was played to the caller), not on both; a customer put on hold mid-call has spoken on
    their leg by then, so a conversation is never cut. 0 when no run qualifies."""
    end = 0
    for a, b in _runs(tones):
        before = [float(sp[:a].sum()) * t for sp in speech]
        if sum(before) <= MAX_PROMPT_SPEECH_SEC and (len(before) == 1 or min(before) < ONE_LEG_QUIET_SEC):
            end = int(b)
    return end


def _digit_string(digits: list[str]) -> str:
    """Collapse per-frame digits into key presses (a run of >= 2 equal frames is one press)."""
    out: list[str] = []
    prev, count = "", 0
    for d in digits + [""]:
        if d == prev:
            count += 1
            continue
        if prev and count >= 2:
            out.append(prev)
        prev, count = d, 1
    return "".join(out)
