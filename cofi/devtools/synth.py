"""Synthetic recorded calls with known ground truth, for tests and benchmarks.

Speech comes from espeak-ng (resampled by sox), tones and noise from numpy, so a call is
real audio whose turn timings, IVR prelude end, words and language are known exactly.
A call: optional IVR prelude (prompt voice + DTMF + optional hold music, identical on both
channels because the switch plays it to both legs), then an agent/customer dialogue about
a trade; stereo puts the agent on the left channel and the customer on the right.
Everything is deterministic for a seed.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import random
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import soundfile as sf

from cofi.devtools.wer import wer as wer  # re-exported: tests/audio/test_stt.py imports it from here

SAMPLE_RATE = 16000
AGENT, CUSTOMER = "agent", "customer"

# Standard DTMF (row, column) frequencies in Hz.
DTMF_FREQS: dict[str, tuple[int, int]] = {
    "1": (697, 1209), "2": (697, 1336), "3": (697, 1477), "A": (697, 1633),
    "4": (770, 1209), "5": (770, 1336), "6": (770, 1477), "B": (770, 1633),
    "7": (852, 1209), "8": (852, 1336), "9": (852, 1477), "C": (852, 1633),
    "*": (941, 1209), "0": (941, 1336), "#": (941, 1477), "D": (941, 1633),
}

VOICES = {  # espeak-ng voice per language and role: different variants so speakers differ
    "en": {"ivr": "en-us+f4", AGENT: "en-us+m3", CUSTOMER: "en-us+f3"},
    "es": {"ivr": "es+f4", AGENT: "es+m3", CUSTOMER: "es+f3"},
    "de": {"ivr": "de+f4", AGENT: "de+m3", CUSTOMER: "de+f3"},
    "fr": {"ivr": "fr+f4", AGENT: "fr+m3", CUSTOMER: "fr+f3"},
}

IVR_PROMPTS = {
    "en": "Welcome to Example Bank. For trading, press one.",
    "es": "Bienvenido a Banco Ejemplo. Para operaciones, marque uno.",
    "de": "Willkommen bei der Beispielbank. Für den Handel drücken Sie eins.",
    "fr": "Bienvenue à la Banque Exemple. Pour la bourse, tapez un.",
}

NUMBERS_EN = {10: "ten", 20: "twenty", 25: "twenty five", 50: "fifty", 100: "one hundred",
               200: "two hundred", 250: "two hundred fifty", 500: "five hundred", 1000: "one thousand",
               12: "twelve", 15: "fifteen", 30: "thirty", 40: "forty", 75: "seventy five", 80: "eighty"}
_AGENTS = ["John", "Maria", "David", "Sarah", "Peter", "Laura"]
_CUSTOMERS = ["Michael Brown", "Anna Smith", "Robert Miller", "Linda Davis", "James Wilson", "Emma Taylor"]
_COMPANIES = ["Acme", "Globex", "Initech", "Umbrella", "Stark Industries", "Wayne Enterprises"]
_MONTHS = ["January", "March", "May", "July", "September", "November"]

# Per language: ordered turn templates (speaker, text, priority). A call with N turns keeps
# the N highest-priority turns (lowest number) in script order, so short calls still hold
# the greeting, the order and its confirmation.
_SCRIPTS: dict[str, list[tuple[str, str, int]]] = {
    "en": [
        (AGENT, "Good morning, thank you for calling Example Bank, my name is {agent}.", 0),
        (CUSTOMER, "Hi {agent}, this is {customer}, I would like to place an order.", 5),
        (AGENT, "Before we continue, please note this call is recorded. Can you confirm your date of birth?", 4),
        (CUSTOMER, "Yes, it is the {day} of {month}.", 6),
        (CUSTOMER, "I want to {side} {qty} shares of {company} at {price} dollars.", 1),
        (AGENT, "Let me confirm, you want to {side} {qty} shares of {company} at {price} dollars. Is that correct?", 2),
        (CUSTOMER, "Yes, that is correct.", 3),
        (AGENT, "Your order has been placed. Thank you for calling, have a nice day.", 7),
    ],
    "es": [
        (AGENT, "Buenos días, gracias por llamar a Banco Ejemplo, mi nombre es {agent}.", 0),
        (CUSTOMER, "Hola, soy {customer}, quiero comprar acciones de {company}.", 1),
        (AGENT, "Le informo que esta llamada está siendo grabada. ¿Cuántas acciones desea comprar?", 2),
        (CUSTOMER, "Quiero comprar cien acciones al precio de mercado, por favor.", 3),
        (AGENT, "Perfecto, su orden ha sido registrada. Muchas gracias por su llamada.", 4),
    ],
    "de": [
        (AGENT, "Guten Morgen, vielen Dank für Ihren Anruf bei der Beispielbank, mein Name ist {agent}.", 0),
        (CUSTOMER, "Hallo, hier spricht {customer}, ich möchte Aktien von {company} kaufen.", 1),
        (AGENT, "Bitte beachten Sie, dass dieses Gespräch aufgezeichnet wird. Wie viele Aktien möchten Sie kaufen?", 2),
        (CUSTOMER, "Ich möchte hundert Aktien zum aktuellen Marktpreis kaufen, bitte.", 3),
        (AGENT, "Vielen Dank, Ihr Auftrag wurde erfasst. Ich wünsche Ihnen einen schönen Tag.", 4),
    ],
    "fr": [
        (AGENT, "Bonjour, merci d'avoir appelé la Banque Exemple, je m'appelle {agent}.", 0),
        (CUSTOMER, "Bonjour, je suis {customer}, je voudrais acheter des actions {company}.", 1),
        (AGENT, "Je vous informe que cet appel est enregistré. Combien d'actions voulez-vous acheter?", 2),
        (CUSTOMER, "Je voudrais acheter cent actions au prix du marché, s'il vous plaît.", 3),
        (AGENT, "Très bien, votre ordre est enregistré. Merci de votre appel et bonne journée.", 4),
    ],
}
LANGUAGES = tuple(_SCRIPTS)


@dataclass
class Turn:
    speaker: str
    start: float
    end: float
    text: str


@dataclass
class CallTruth:
    """What a synthesized call really contains; times in seconds from the start of the file."""

    file: str
    language: str
    duration: float
    sample_rate: int
    stereo: bool
    ivr: bool
    ivr_end_sec: float  # end of the last prelude sound (prompt, DTMF, hold music); 0 without IVR
    dtmf: str
    hold_music: bool
    snr_db: float | None
    turns: list[Turn] = field(default_factory=list)
    clientCode: str = ""
    phone: str = ""
    callStart: str = ""

    @property
    def reference_text(self) -> str:
        """All spoken dialogue in time order (the IVR prompt excluded)."""
        return " ".join(t.text for t in sorted(self.turns, key=lambda t: t.start))

    @property
    def first_turn_sec(self) -> float:
        return min(t.start for t in self.turns)

    def talk_time(self, speaker: str) -> float:
        return sum(t.end - t.start for t in self.turns if t.speaker == speaker)

    @property
    def overtalk_sec(self) -> float:
        a = [t for t in self.turns if t.speaker == AGENT]
        c = [t for t in self.turns if t.speaker == CUSTOMER]
        return sum(max(0.0, min(x.end, y.end) - max(x.start, y.start)) for x in a for y in c)

    def to_json(self) -> dict:
        d = asdict(self)
        d["reference_text"] = self.reference_text
        d["overtalk_sec"] = self.overtalk_sec
        return d

    @classmethod
    def from_json(cls, d: dict) -> CallTruth:
        d = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        d["turns"] = [Turn(**t) for t in d["turns"]]
        return cls(**d)


def _cache_dir() -> Path:
    d = Path(os.environ.get("COFI_SYNTH_CACHE", Path(tempfile.gettempdir()) / "cofi-synth-cache"))
    d.mkdir(parents=True, exist_ok=True)
    return d


def speak(text: str, voice: str, *, speed: int = 165, sr: int = SAMPLE_RATE) -> np.ndarray:
    """espeak-ng speech at `sr`, leading/trailing silence trimmed; cached per text+voice+speed+sr."""
    key = hashlib.sha1(f"{voice}|{speed}|{sr}|{text}".encode()).hexdigest()
    path = _cache_dir() / f"{key}.wav"
    if not path.exists():
        with tempfile.TemporaryDirectory() as tmp:
            raw, out = Path(tmp) / "raw.wav", Path(tmp) / "out.wav"
            subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(raw), text],
                           check=True, capture_output=True)
            subprocess.run(["sox", str(raw), "-r", str(sr), "-b", "16", "-c", "1", str(out)],
                           check=True, capture_output=True)
            os.replace(out, path)  # atomic: parallel test workers never read a half file
    audio, _ = sf.read(path, dtype="float32")
    return _trim(audio, sr)


def _trim(x: np.ndarray, sr: int) -> np.ndarray:
    frame = sr // 100
    n = len(x) // frame
    if n == 0:
        return x
    rms = np.sqrt((x[: n * frame].reshape(n, frame) ** 2).mean(axis=1))
    active = np.flatnonzero(rms > 0.02 * rms.max())
    return x[active[0] * frame: (active[-1] + 1) * frame]


def _normalize(x: np.ndarray, dbfs: float) -> np.ndarray:
    rms = float(np.sqrt(np.mean(x**2))) or 1.0
    return x * (10 ** (dbfs / 20) / rms)


def dtmf_tone(digit: str, sec: float = 0.12, sr: int = SAMPLE_RATE, level: float = 0.25) -> np.ndarray:
    f1, f2 = DTMF_FREQS[digit]
    t = np.arange(int(sec * sr)) / sr
    return (level * (np.sin(2 * np.pi * f1 * t) + np.sin(2 * np.pi * f2 * t)) / 2).astype(np.float32)


def hold_music(sec: float, rng: random.Random, sr: int = SAMPLE_RATE) -> np.ndarray:
    """A simple melody of harmonic tones (what an on-hold jingle looks like to a detector)."""
    notes = [262, 294, 330, 349, 392, 440, 494, 523]
    note_sec = 0.25
    out: list[np.ndarray] = []
    t = np.arange(int(note_sec * sr)) / sr
    env = np.minimum(1.0, np.minimum(t / 0.02, (note_sec - t) / 0.05))
    for _ in range(int(round(sec / note_sec))):
        f = rng.choice(notes)
        tone = np.sin(2 * np.pi * f * t) + 0.4 * np.sin(4 * np.pi * f * t) + 0.2 * np.sin(6 * np.pi * f * t)
        out.append((0.12 * env * tone).astype(np.float32))
    return np.concatenate(out)


def _noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """Stationary coloured noise (amplitude ~ f^-1/4, shaped in the FFT domain), unit RMS."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(len(spec), dtype=np.float64)
    f[0] = 1.0
    y = np.fft.irfft(spec / np.sqrt(f) ** 0.5, n)
    return (y / (y.std() or 1.0)).astype(np.float32)


def _script(language: str, turns: int | Sequence[tuple[str, str]], rng: random.Random,
            companies: Sequence[str] | None = None) -> list[tuple[str, str]]:
    if not isinstance(turns, int):
        return [(s, t) for s, t in turns]
    if language not in _SCRIPTS:
        raise ValueError(f"no script for language {language!r}; known: {', '.join(_SCRIPTS)}")
    slots = {
        "agent": rng.choice(_AGENTS), "customer": rng.choice(_CUSTOMERS), "company": rng.choice(list(companies or _COMPANIES)),
        "side": rng.choice(["buy", "sell"]), "qty": NUMBERS_EN[rng.choice([10, 20, 50, 100, 200, 250, 500, 1000])],
        "price": NUMBERS_EN[rng.choice([12, 15, 25, 30, 40, 50, 75, 80])],
        "day": rng.choice(["first", "third", "fifth", "tenth", "twelfth"]), "month": rng.choice(_MONTHS),
    }
    template = _SCRIPTS[language]
    n = max(2, min(turns, len(template)))
    keep = sorted(sorted(range(len(template)), key=lambda i: template[i][2])[:n])
    return [(template[i][0], template[i][1].format(**slots)) for i in keep]


def render_call(*, turns: int | Sequence[tuple[str, str]] = 4, ivr: bool = True, dtmf: str = "1",
                stereo: bool = True, snr_db: float | None = None, language: str = "en",
                hold_music_sec: float = 0.0, overtalk: bool = False, seed: int = 0,
                companies: Sequence[str] | None = None,
                sample_rate: int = SAMPLE_RATE, ivr_prompt: str | None = None) -> tuple[np.ndarray, np.ndarray, CallTruth]:
    """(noisy audio, clean audio, truth); audio is (samples, 2) for stereo else (samples,). `ivr_prompt`:
    what the switch says (default: the language's welcome and menu)."""
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    sr = sample_rate
    voices = VOICES.get(language, VOICES["en"])
    # Pieces: (start_sec, channel or None for both, samples)
    pieces: list[tuple[float, str | None, np.ndarray]] = []
    t = rng.uniform(0.2, 0.5)
    ivr_end = 0.0
    if ivr:
        said = ivr_prompt or IVR_PROMPTS.get(language, IVR_PROMPTS["en"])
        prompt = _normalize(speak(said, voices["ivr"], speed=175, sr=sr), -22)
        pieces.append((t, None, prompt))
        t += len(prompt) / sr
        if dtmf:
            t += rng.uniform(0.3, 0.6)
            for k, d in enumerate(dtmf):
                tone = dtmf_tone(d, sr=sr)
                pieces.append((t, None, tone))
                t += len(tone) / sr + (0.1 if k < len(dtmf) - 1 else 0.0)
        if hold_music_sec > 0:
            t += 0.3
            music = hold_music(hold_music_sec, rng, sr)
            pieces.append((t, None, music))
            t += len(music) / sr
        ivr_end = t  # end of the last prelude sound
        t += rng.uniform(0.5, 0.9)
    turn_list: list[Turn] = []
    gains = {AGENT: rng.uniform(-21, -18), CUSTOMER: rng.uniform(-24, -19)}
    script = _script(language, turns, rng, companies)
    # with overtalk, the last customer turn that answers an agent turn starts before the agent ends
    interrupt = max((i for i in range(1, len(script)) if script[i][0] == CUSTOMER and script[i - 1][0] == AGENT),
                    default=-1)
    for i, (speaker, text) in enumerate(script):
        speed = rng.randint(175, 195)
        clip = _normalize(speak(text, voices[speaker], speed=speed, sr=sr), gains[speaker])
        start = t
        if overtalk and i == interrupt:
            start = max(turn_list[-1].start + 0.5, turn_list[-1].end - 0.6)  # interrupts the previous agent turn
        pieces.append((start, speaker, clip))
        end = start + len(clip) / sr
        turn_list.append(Turn(speaker, round(start, 3), round(end, 3), text))
        t = max(t, end) + rng.uniform(0.25, 0.7)
    total = int((t - 0.3 + 0.5) * sr)
    n_ch = 2 if stereo else 1
    clean = np.zeros((total, n_ch), dtype=np.float32)
    for start, who, x in pieces:
        i = int(round(start * sr))
        # the prelude is played to both legs; in mono every piece is heard once
        chans = [0] if not stereo else [0, 1] if who is None else [0 if who == AGENT else 1]
        for c in chans:
            clean[i: i + len(x), c] += x[: total - i]
    noisy = clean.copy()
    if snr_db is not None:
        # speech level per channel over the samples where that channel carries sound
        speech_rms = float(np.mean([np.sqrt(np.mean(ch[np.abs(ch) > 1e-3] ** 2)) for ch in clean.T
                                    if np.any(np.abs(ch) > 1e-3)] or [0.0]))
        noise_rms = speech_rms / 10 ** (snr_db / 20)
        noisy += noise_rms * np.stack([_noise(total, nrng) for _ in range(n_ch)], axis=1)
    if not stereo:
        clean, noisy = clean[:, 0], noisy[:, 0]
    peak = max(float(np.abs(noisy).max()), 1e-9)
    if peak > 0.95:
        noisy, clean = noisy * (0.95 / peak), clean * (0.95 / peak)
    truth = CallTruth(file="", language=language, duration=round(total / sr, 3), sample_rate=sr, stereo=stereo,
                      ivr=ivr, ivr_end_sec=round(ivr_end, 3), dtmf=dtmf if ivr else "",
                      hold_music=ivr and hold_music_sec > 0, snr_db=snr_db, turns=turn_list)
    return noisy, clean, truth


def make_call(path: str | Path, *, turns: int | Sequence[tuple[str, str]] = 4, ivr: bool = True,
              dtmf: str = "1", stereo: bool = True, snr_db: float | None = None, language: str = "en",
              hold_music: bool = False, overtalk: bool = False, seed: int = 0,
              sample_rate: int = SAMPLE_RATE, clean_path: str | Path | None = None,
              companies: Sequence[str] | None = None, ivr_prompt: str | None = None) -> CallTruth:
    """Write one synthetic call (16-bit WAV) and return its truth; `clean_path` also writes it noise-free."""
    noisy, clean, truth = render_call(turns=turns, ivr=ivr, dtmf=dtmf, stereo=stereo, snr_db=snr_db,
                                      language=language, hold_music_sec=1.5 if hold_music else 0.0,
                                      overtalk=overtalk, seed=seed, sample_rate=sample_rate, companies=companies,
                                      ivr_prompt=ivr_prompt)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, noisy, sample_rate, subtype="PCM_16")
    if clean_path is not None:
        sf.write(clean_path, clean, sample_rate, subtype="PCM_16")
    truth.file = path.name
    return truth


def make_batch(out_dir: str | Path, n: int, *, seed: int = 0, language: str = "en",
               ivr: bool | None = None, hold_music: bool | None = None, stereo: bool | None = True,
               snr_db: float | None = None, turns: int | None = None, max_turns: int = 5,
               sample_rate: int = SAMPLE_RATE, companies: Sequence[str] | None = None) -> list[CallTruth]:
    """n calls `call_0000.wav`... plus `manifest.csv` (file,clientCode,phone,callStart) and `truth.json`.

    Options left as None vary per call (IVR in ~80%, hold music in ~30%, 3 to `max_turns` turns, stereo
    in ~80%); the English script has 8 turns: the disclosures come with the 5th and the 7th.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    base = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)
    truths: list[CallTruth] = []
    for i in range(n):
        has_ivr = ivr if ivr is not None else rng.random() < 0.8
        t = make_call(out / f"call_{i:04d}.wav",
                      turns=turns if turns is not None else rng.randint(3, max_turns),
                      ivr=has_ivr, dtmf=rng.choice(["1", "1", "2", "12", "9"]),
                      stereo=stereo if stereo is not None else rng.random() < 0.8,
                      snr_db=snr_db, language=language,
                      hold_music=hold_music if hold_music is not None else rng.random() < 0.3,
                      seed=seed * 100_003 + i, sample_rate=sample_rate, companies=companies)
        t.clientCode = f"C{rng.randint(10000, 99999)}"
        t.phone = f"+1555{rng.randint(0, 9999999):07d}"
        t.callStart = (base + timedelta(minutes=7 * i, seconds=rng.randint(0, 59))).isoformat()
        truths.append(t)
    with open(out / "manifest.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "clientCode", "phone", "callStart"])
        for t in truths:
            w.writerow([t.file, t.clientCode, t.phone, t.callStart])
    (out / "truth.json").write_text(json.dumps([t.to_json() for t in truths], indent=1))
    return truths


def load_truth(out_dir: str | Path) -> list[CallTruth]:
    return [CallTruth.from_json(d) for d in json.loads((Path(out_dir) / "truth.json").read_text())]
