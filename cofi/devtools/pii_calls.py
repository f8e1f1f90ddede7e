"""Synthetic calls that speak known PII, for the redact stage's recall and precision measures.

A PII call is a short agent/customer dialogue (rendered by `cofi.devtools.synth.make_call`) in
which the customer states a client code, an account number, a card number, a PAN-style ID, a date
of birth, a phone number, an email address and their name, and places one trade whose symbol,
side, quantity and price must survive redaction. `PiiCall.items` is the ground truth: each
entity's type, its canonical value (digits for digit-based types) and the words it was spoken as.
Digits are written one by one ("4 5 6 7") or as words ("four five six seven"), so espeak-ng reads
them digit by digit as a client would. Everything is deterministic for a seed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cofi.devtools.synth import AGENT, CUSTOMER, CallTruth, make_call
from cofi.redaction import luhn_ok

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
FIRST_NAMES = ("Michael", "Anna", "Robert", "Linda", "James", "Emma", "David", "Sarah", "Thomas", "Maria",
               "Daniel", "Laura", "Richard", "Susan", "Priya", "Rahul", "Ananya", "Vikram", "Deepa", "Arjun")
LAST_NAMES = ("Brown", "Smith", "Miller", "Davis", "Wilson", "Taylor", "Johnson", "Anderson", "Moore",
              "Jackson", "Martin", "Thompson", "Sharma", "Mehta", "Iyer", "Kapoor", "Nair", "Reddy")
INTRODUCTIONS = ("Hello, this is {name}, I would like to place an order.", "Hi, {name} here, I would like to place an order.",
                 "Hello, my name is {name} and I would like to place an order.",
                 "Good morning, {name} speaking, I would like to place an order.")
MALE = {"Michael", "Robert", "James", "David", "Thomas", "Daniel", "Richard", "Rahul", "Vikram", "Arjun"}
AGENTS = ("John", "Peter", "Helen", "Mark")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")
ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth",
            "eleventh", "twelfth", "thirteenth", "fourteenth", "fifteenth", "sixteenth", "seventeenth",
            "eighteenth", "nineteenth", "twentieth", "twenty first", "twenty second", "twenty third",
            "twenty fourth", "twenty fifth", "twenty sixth", "twenty seventh", "twenty eighth")
YEARS = {1961: "nineteen sixty one", 1968: "nineteen sixty eight", 1972: "nineteen seventy two",
         1975: "nineteen seventy five", 1979: "nineteen seventy nine", 1983: "nineteen eighty three",
         1986: "nineteen eighty six", 1990: "nineteen ninety", 1994: "nineteen ninety four"}
DOMAINS = ("example", "mailbox", "postbox")
SYMBOLS = ("Acme", "Globex", "Initech", "Umbrella")
QUANTITIES = {100: "one hundred", 200: "two hundred", 250: "two hundred fifty", 500: "five hundred",
              1000: "one thousand"}
PRICES = {12: "twelve", 25: "twenty five", 40: "forty", 75: "seventy five", 80: "eighty"}
ENTITY_TYPES = ("CLIENT_CODE", "ACCOUNT_NUMBER", "CARD_NUMBER", "PAN", "DATE_OF_BIRTH", "PHONE_NUMBER",
                "EMAIL_ADDRESS", "PERSON")
DIGIT_TYPES = ("CLIENT_CODE", "ACCOUNT_NUMBER", "CARD_NUMBER", "PAN", "PHONE_NUMBER")


@dataclass(frozen=True)
class PiiItem:
    type: str  # one of ENTITY_TYPES
    value: str  # canonical: the digits (and letters) for digit-based types, the name, the address, yyyy-mm-dd
    spoken: str  # the words of the script that say it
    turn: int  # index of the turn in PiiCall.turns


@dataclass
class PiiCall:
    turns: list[tuple[str, str]]
    items: list[PiiItem]
    trade: dict[str, Any]
    agent: str
    truth: CallTruth | None = None
    meta: dict[str, str] = field(default_factory=dict)

    @property
    def trade_words(self) -> tuple[str, ...]:
        """How the trade's quantity and price were said (never to be redacted)."""
        return QUANTITIES[int(self.trade["quantity"])], PRICES[int(self.trade["price"])]


def luhn_complete(body: str) -> str:
    """`body` + the check digit that makes it pass the Luhn test, as a real card number does."""
    return next(body + d for d in "0123456789" if luhn_ok(body + d))


def _digits(rng: random.Random, n: int) -> str:
    return "".join(str(rng.randint(0, 9)) for _ in range(n))


def say_digits(digits: str, rng: random.Random, *, words: bool | None = None) -> str:
    """One by one, as numerals ("4 5 6") or words ("four five six"), as a client reads a number out."""
    as_words = rng.random() < 0.5 if words is None else words
    return " ".join(DIGIT_WORDS[int(c)] if (as_words and c.isdigit()) else c for c in digits)


def pii_script(seed: int, *, compact: bool = False) -> PiiCall:
    """The dialogue and its ground truth for one seed (8 PII entities, a name said twice, one trade);
    `compact` keeps only the turns that state PII or the trade (about half as long)."""
    rng = random.Random(seed)
    first, last, agent = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES), rng.choice(AGENTS)
    code = f"C{_digits(rng, 5)}"
    account = _digits(rng, rng.choice((8, 9, 10)))
    card = luhn_complete("4" + _digits(rng, 14))
    pan = "".join(rng.choice("ABCDEFGHJKLMNPRSTUVWXYZ") for _ in range(5)) + _digits(rng, 4) + rng.choice("ABCDEFGH")
    phone = "555" + _digits(rng, 7)
    year = rng.choice(list(YEARS))
    month, day = rng.randint(1, 12), rng.randint(1, 28)
    user = f"{first.lower()}.{last.lower()}"
    domain = rng.choice(DOMAINS)
    symbol, side = rng.choice(SYMBOLS), rng.choice(("buy", "sell"))
    qty, price = rng.choice(list(QUANTITIES)), rng.choice(list(PRICES))

    said = {
        "code": f"{code[0]} {say_digits(code[1:], rng)}",
        "account": say_digits(account, rng),
        "card": ", ".join(say_digits(card[i:i + 4], rng, words=True) for i in range(0, 16, 4)),
        "pan": " ".join(pan),
        "phone": f"{say_digits(phone[:3], rng)}, {say_digits(phone[3:6], rng)}, {say_digits(phone[6:], rng)}",
        "dob": f"the {ORDINALS[day - 1]} of {MONTHS[month - 1]} {YEARS[year]}",
        "email": f"{first.lower()} dot {last.lower()} at {domain} dot com",
        "name": f"{first} {last}",
        "title": rng.choice((f"Mr {last}" if first in MALE else f"Ms {last}", first)),
    }
    turns: list[tuple[str, str]] = [
        (AGENT, f"Good morning, thank you for calling Example Bank, my name is {agent}. How can I help you?"),
        (CUSTOMER, rng.choice(INTRODUCTIONS).format(name=said["name"])),
        (AGENT, "Before we continue, this call is recorded. Can you give me your client code please?"),
        (CUSTOMER, f"Sure, my client code is {said['code']}."),
        (AGENT, "Thank you. And your account number and date of birth?"),
        (CUSTOMER, f"The account number is {said['account']}, and I was born on {said['dob']}."),
        (AGENT, "Can you also confirm your PAN and the phone number on file?"),
        (CUSTOMER, f"My PAN is {said['pan']}. My phone number is {said['phone']}."),
        (AGENT, "And the card linked to the account, and your email address?"),
        (CUSTOMER, f"The card number is {said['card']}. My email is {said['email']}."),
        (AGENT, f"Thank you {said['title']}, your identity is verified. What would you like to do today?"),
        (CUSTOMER, f"I want to {side} {QUANTITIES[qty]} shares of {symbol} at {PRICES[price]} dollars."),
        (AGENT, f"Let me confirm, you want to {side} {QUANTITIES[qty]} shares of {symbol} at {PRICES[price]} "
                "dollars. Is that correct?"),
        (CUSTOMER, "Yes, that is correct."),
        (AGENT, "Your order has been placed. Thank you for calling, have a nice day."),
    ]
    items = [
        PiiItem("PERSON", f"{first} {last}", said["name"], 1),
        PiiItem("CLIENT_CODE", code, said["code"], 3),
        PiiItem("ACCOUNT_NUMBER", account, said["account"], 5),
        PiiItem("DATE_OF_BIRTH", f"{year}-{month:02d}-{day:02d}", said["dob"], 5),
        PiiItem("PAN", pan, said["pan"], 7),
        PiiItem("PHONE_NUMBER", phone, said["phone"], 7),
        PiiItem("CARD_NUMBER", card, said["card"], 9),
        PiiItem("EMAIL_ADDRESS", f"{user}@{domain}.com", said["email"], 9),
        PiiItem("PERSON", f"{first} {last}", said["title"], 10),
    ]
    trade = {"tradeId": f"T{seed}", "clientCode": code, "symbol": symbol, "side": side, "quantity": float(qty),
             "price": float(price), "tradeTime": "2026-01-15T09:05:00+00:00", "phone": None}
    if compact:
        keep = sorted({i.turn for i in items} | {11})
        items = [PiiItem(i.type, i.value, i.spoken, keep.index(i.turn)) for i in items]
        turns = [turns[k] for k in keep]
    return PiiCall(turns=turns, items=items, trade=trade, agent=agent,
                   meta={"clientCode": code, "callStart": "2026-01-15T09:00:00+00:00"})


def make_pii_call(path: str | Path, seed: int, *, stereo: bool = True, snr_db: float | None = None,
                  ivr: bool = False, compact: bool = False) -> PiiCall:
    """Render `pii_script(seed)` to a WAV (espeak-ng voices, agent left, customer right) with its truth."""
    call = pii_script(seed, compact=compact)
    call.truth = make_call(path, turns=call.turns, ivr=ivr, stereo=stereo, snr_db=snr_db, seed=seed)
    return call


def _spoken(turn: str, item: PiiItem) -> tuple[int, int]:
    start = turn.index(item.spoken)
    return start, start + len(item.spoken)


def item_times(call: PiiCall) -> list[tuple[PiiItem, float, float]]:
    """Approximate (start, end) seconds of each item, by its character position within its turn
    (espeak speaks at a near-constant rate); for measures that need where in the audio it was said."""
    assert call.truth is not None, "render the call first (make_pii_call)"
    out = []
    for item in call.items:
        turn = call.truth.turns[item.turn]
        text = call.turns[item.turn][1]
        a, b = _spoken(text, item)
        span = turn.end - turn.start
        out.append((item, turn.start + span * a / len(text), turn.start + span * b / len(text)))
    return out


# ---- what Whisper makes of it: transcripts for text-level measures ---------------------------------------

def _spaced(digits: str, rng: random.Random) -> str:
    """One of the ways a transcript writes digits read out one by one."""
    style = rng.choice(("joined", "groups", "spaced", "hyphens", "commas", "words", "mishear"))
    if style == "joined":
        return digits
    if style == "groups":
        cut = rng.choice((3, 4))
        return " ".join(digits[i:i + cut] for i in range(0, len(digits), cut))
    if style == "spaced":
        return " ".join(digits)
    if style == "hyphens":
        return " -".join(digits)
    if style == "commas":
        return ", ".join(digits)
    words = [DIGIT_WORDS[int(c)] for c in digits]
    if style == "mishear":  # Whisper on synthetic voices: "zero" -> "Nero", "nine" -> "Hine"
        words = ["Nero" if w == "zero" else "Hine" if w == "nine" else w for w in words]
    return " ".join(words)


def _rendered(item: PiiItem, rng: random.Random) -> str:
    v = item.value
    if item.type == "PERSON":
        return v
    if item.type == "EMAIL_ADDRESS":
        user, domain = v.split("@")
        first, last = user.split(".")
        return rng.choice((v, f"{first} dot {last} at {domain.replace('.', ' dot ')}",
                           f"{first} not {last} at {domain.split('.')[0]} .com"))
    if item.type == "DATE_OF_BIRTH":
        y, m, d = (int(x) for x in v.split("-"))
        suffix = "th" if 10 <= d % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(d % 10, "th")
        return rng.choice((item.spoken, f"the {d}{suffix} of {MONTHS[m - 1]} {y}", f"{MONTHS[m - 1]} {d}{suffix}, {y}",
                           f"{d:02d}/{m:02d}/{y}"))
    if item.type == "CLIENT_CODE":
        return rng.choice((v, f"{v[0]} {_spaced(v[1:], rng)}", f"{v[0]}-{v[1:]}"))
    if item.type == "PAN":
        return rng.choice((v, " ".join(v), f"{v[:5]} {v[5:9]} {v[9]}"))
    if item.type == "CARD_NUMBER":
        return rng.choice((" ".join(v[i:i + 4] for i in range(0, 16, 4)), "-".join(v[i:i + 4] for i in range(0, 16, 4)),
                           _spaced(v, rng)))
    if item.type == "PHONE_NUMBER":
        return rng.choice((f"{v[:3]}-{v[3:6]}-{v[6:]}", f"{v[:3]} {v[3:6]} {v[6:]}", _spaced(v, rng)))
    return _spaced(v, rng)


@dataclass
class Transcript:
    """An STT artifact (`services/stt`'s JSON) of a PII call as Whisper might write it, with where each
    PII item and each trade fact is: word indices into the artifact's words in reading order."""

    doc: dict[str, Any]
    items: list[tuple[PiiItem, list[int]]]
    trade_words: list[int]


def whisper_like(call: PiiCall, seed: int) -> Transcript:
    """The call's dialogue written as a transcript would write it: digits joined, grouped, hyphenated or as
    words (with Whisper's "Nero" for zero), emails written or spoken, dates in several forms, trade
    quantities and prices in digits or words; words timed evenly over each turn: over the rendered call's
    turns when it was rendered (`make_pii_call`), else at 2.5 words/s with 0.6 s gaps."""
    rng = random.Random(seed)
    qty, price = int(call.trade["quantity"]), int(call.trade["price"])
    trade_said = {QUANTITIES[qty]: rng.choice((QUANTITIES[qty], f"{qty:,}")),
                  f"{PRICES[price]} dollars": rng.choice((f"{PRICES[price]} dollars", f"${price}", f"{price} dollars"))}
    segments, items, trade_words, n, t = [], [], [], 0, 0.5
    for k, (speaker, text) in enumerate(call.turns):
        pieces: list[tuple[str, object]] = [(text, None)]
        for marker in [*(i for i in call.items if i.turn == k), *trade_said]:
            spoken = marker.spoken if isinstance(marker, PiiItem) else marker
            out: list[tuple[str, object]] = []
            for chunk, tag in pieces:
                if tag is None and spoken in chunk:
                    a, b = chunk.split(spoken, 1)
                    said = _rendered(marker, rng) if isinstance(marker, PiiItem) else trade_said[marker]
                    out += [(a, None), (said, marker if isinstance(marker, PiiItem) else "trade"), (b, None)]
                else:
                    out.append((chunk, tag))
            pieces = out
        words = []
        count = sum(len(chunk.split()) for chunk, _ in pieces)
        if call.truth is not None:
            turn = call.truth.turns[k]
            t, step = turn.start, (turn.end - turn.start) / count
        else:
            step = 0.4
        for chunk, tag in pieces:
            idx = []
            for w in chunk.split():
                words.append({"word": w, "start": round(t, 3), "end": round(t + step * 0.9, 3), "probability": 0.9})
                idx.append(n)
                n += 1
                t += step
            if isinstance(tag, PiiItem):
                items.append((tag, idx))
            elif tag == "trade":
                trade_words += idx
        segments.append({"speaker": speaker, "start": words[0]["start"], "end": words[-1]["end"],
                         "text": " ".join(w["word"] for w in words), "words": words})
        t += 0.6
    doc = {"language": "en", "durationSec": round(t, 3), "speakers": [AGENT, CUSTOMER], "segments": segments}
    return Transcript(doc, items, trade_words)
