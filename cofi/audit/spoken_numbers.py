"""Numbers as they are spoken on trading calls and written by speech recognition.

"1,500", "1,50,000", "2.5 lakh", "fifteen hundred", "two hundred and fifty", "one point five",
"twelve fifty", "two rupees fifty paise", "$50", "₹2,500", "50k". A spoken number can have several
readings ("two fifty" is 250 or 2.50, "nine ten" is 910): each `SpokenNumber` keeps all of them,
most likely first, so a booked value that matches any reading is found and a mismatch is only
called when no reading matches. The role of a number (quantity or price) comes from the words
around it ("200 shares", "at 250", "price of", "rupees").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

UNITS = {"zero": 0, "oh": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
         "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14,
         "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19}
TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fourty": 40, "fifty": 50, "sixty": 60, "seventy": 70,
        "eighty": 80, "ninety": 90}
SCALES = {"hundred": 100, "thousand": 1_000, "k": 1_000, "lakh": 100_000, "lakhs": 100_000, "lac": 100_000,
          "lacs": 100_000, "million": 1_000_000, "crore": 10_000_000, "crores": 10_000_000,
          "billion": 1_000_000_000}
QTY_WORDS = frozenset({"shares", "share", "units", "unit", "lots", "lot", "contracts", "contract", "stocks",
                       "quantity", "qty", "nos", "pieces"})
PRICE_BEFORE = frozenset({"at", "@", "price", "rate", "priced", "limit", "costing"})
CURRENCY = frozenset({"rupees", "rupee", "rs", "inr", "dollars", "dollar", "usd", "bucks", "euros", "euro",
                      "pounds", "₹", "$", "€", "£"})
SUBUNIT = frozenset({"paise", "paisa", "cents", "cent", "pence"})
TOKEN_RE = re.compile(r"[₹$€£@]|\d[\d,]*(?:\.\d+)?[kK]?|[a-z]+(?:'[a-z]+)?|[.,;:?!]")


@dataclass(frozen=True)
class SpokenNumber:
    """One number in a token stream: its readings (most likely first) and where it is."""

    values: tuple[float, ...]
    start: int  # first token
    end: int  # one past the last token
    role: str = ""  # "quantity", "price" or "" (unknown)

    def matches(self, value: float, tolerance: float = 0.005) -> bool:
        return any(abs(v - value) <= tolerance * max(1.0, abs(value)) for v in self.values)


def tokenize(text: str) -> list[str]:
    tokens = TOKEN_RE.findall(text.lower().replace("–", "-"))
    # "a hundred", "a lakh": the article is the number one
    return ["one" if t == "a" and i + 1 < len(tokens) and tokens[i + 1] in SCALES else t
            for i, t in enumerate(tokens)]


def _digits(tok: str) -> float | None:
    scale = 1000.0 if tok[-1] in "kK" else 1.0
    body = tok.rstrip("kK").replace(",", "")
    try:
        return float(body) * scale
    except ValueError:
        return None


def _words_below_thousand(tokens: list[str], i: int) -> tuple[int, int]:
    """(value, next index) of a number under 1000 in words starting at i ("two hundred and fifty")."""
    value, j = 0, i
    if j < len(tokens) and tokens[j] in UNITS:
        value, j = UNITS[tokens[j]], j + 1
        if j < len(tokens) and tokens[j] == "hundred":
            value, j = value * 100, j + 1
            if j + 1 < len(tokens) and tokens[j] == "and" and (tokens[j + 1] in UNITS or tokens[j + 1] in TENS):
                j += 1
            if j < len(tokens) and tokens[j] in TENS:
                value, j = value + TENS[tokens[j]], j + 1
                if j < len(tokens) and tokens[j] in UNITS and UNITS[tokens[j]] < 10:
                    value, j = value + UNITS[tokens[j]], j + 1
            elif j < len(tokens) and tokens[j] in UNITS:
                value, j = value + UNITS[tokens[j]], j + 1
        return value, j
    if j < len(tokens) and tokens[j] in TENS:
        value, j = TENS[tokens[j]], j + 1
        if j < len(tokens) and tokens[j] in UNITS and 0 < UNITS[tokens[j]] < 10:
            value, j = value + UNITS[tokens[j]], j + 1
    return value, j


def _word_number(tokens: list[str], i: int) -> tuple[list[float], int]:
    """Readings of the number in words at i and the index after it; ([], i) when none starts there."""
    total, j, group_end = 0.0, i, i
    while True:
        small, k = _words_below_thousand(tokens, j)
        if k == j:
            break
        if k < len(tokens) and tokens[k] in SCALES and tokens[k] not in ("hundred", "k"):
            total, j = total + small * SCALES[tokens[k]], k + 1
            group_end = j
            if j < len(tokens) and tokens[j] == "and":
                j += 1
            continue
        total, j, group_end = total + small, k, k
        break
    if group_end == i:
        return [], i
    j = group_end
    readings = [total]
    # "one point five", "two point seven five"
    if j + 1 < len(tokens) and tokens[j] == "point" and tokens[j + 1] in UNITS and UNITS[tokens[j + 1]] < 10:
        digits = ""
        k = j + 1
        while k < len(tokens) and tokens[k] in UNITS and UNITS[tokens[k]] < 10:
            digits += str(UNITS[tokens[k]])
            k += 1
        value = float(f"{int(total)}.{digits}")
        if k < len(tokens) and tokens[k] in SCALES:  # "one point five crore"
            value, k = value * SCALES[tokens[k]], k + 1
        return [value], k
    # "twelve fifty", "two fifty", "nine ten", "four thirty five": hundreds (or units.cents) left implicit
    if 0 < total < 100 and float(total).is_integer() and j < len(tokens) and (tokens[j] in TENS or (
            tokens[j] in UNITS and UNITS[tokens[j]] >= 10)):
        tail, k = _words_below_thousand(tokens, j)
        if k > j and 10 <= tail < 100:
            cents, m = _words_below_thousand(tokens, k)
            if m > k and 10 <= cents < 100:  # "six twelve fifty" = 612.50
                return [total * 100 + tail + cents / 100], m
            return [total * 100 + tail, total + tail / 100], k
    return readings, j


def find_numbers(tokens: list[str]) -> list[SpokenNumber]:
    """Every number in `tokens` with its readings and role."""
    out: list[SpokenNumber] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok[0].isdigit():
            value = _digits(tok)
            j = i + 1
            if value is not None:
                if j < len(tokens) and tokens[j] in SCALES and tokens[j] not in ("hundred",):
                    value, j = value * SCALES[tokens[j]], j + 1
                elif j < len(tokens) and tokens[j] == "hundred":
                    value, j = value * 100, j + 1
                # "600 and 12": Whisper writes "six hundred and twelve" so when the speaker pauses after "hundred"
                if value >= 100 and value % 100 == 0 and j + 1 < len(tokens) and tokens[j] == "and":
                    tail = _digits(tokens[j + 1]) if tokens[j + 1][0].isdigit() else None
                    tail, k = (tail, j + 2) if tail is not None else _words_below_thousand(tokens, j + 1)
                    if k > j + 1 and 0 < tail < 100 and float(tail).is_integer() and not (
                            k < len(tokens) and tokens[k] in SUBUNIT):  # "1,500 and 50 paise" is 1,500.50
                        value, j = value + tail, k
                # "612 rupees and 50 paise"
                k = j + 1 if j < len(tokens) and tokens[j] in CURRENCY else j
                k += 1 if k > j and k < len(tokens) and tokens[k] == "and" else 0
                if k > j and k + 1 < len(tokens) and tokens[k][0].isdigit() and tokens[k + 1] in SUBUNIT:
                    cents = _digits(tokens[k])
                    if cents is not None and cents < 100:
                        out.append(SpokenNumber((value + cents / 100,), i, k + 2, "price"))
                        i = k + 2
                        continue
                out.append(_with_role(tokens, SpokenNumber((value,), i, j)))
            i = j
            continue
        readings, j = _word_number(tokens, i)
        if readings:
            number = SpokenNumber(tuple(readings), i, j)
            # "two rupees fifty paise" / "ten dollars and twenty cents"
            k = j + (1 if j < len(tokens) and tokens[j] in CURRENCY else 0)
            k += 1 if k < len(tokens) and tokens[k] == "and" else 0
            cents, m = _words_below_thousand(tokens, k) if k > j else (0, k)
            if k > j and m > k and m < len(tokens) and tokens[m] in SUBUNIT:
                number = SpokenNumber((readings[0] + cents / 100,), i, m + 1, "price")
                j = m + 1
            out.append(_with_role(tokens, number))
            i = j
            continue
        i += 1
    return out


def _with_role(tokens: list[str], n: SpokenNumber) -> SpokenNumber:
    if n.role:
        return n
    after = tokens[n.end] if n.end < len(tokens) else ""
    before = tokens[n.start - 1] if n.start > 0 else ""
    before2 = tokens[n.start - 2] if n.start > 1 else ""
    if after in QTY_WORDS or (after == "of" and n.end + 1 < len(tokens) and tokens[n.end + 1] in QTY_WORDS):
        return SpokenNumber(n.values, n.start, n.end, "quantity")
    if before in ("quantity", "qty") or (before == "of" and before2 in ("quantity", "qty")):
        return SpokenNumber(n.values, n.start, n.end, "quantity")
    if before in PRICE_BEFORE or before in CURRENCY or after in CURRENCY or after in SUBUNIT or (
            before == "of" and before2 in ("price", "rate")):
        return SpokenNumber(n.values, n.start, n.end, "price")
    return n


def numbers_in(text: str) -> list[SpokenNumber]:
    return find_numbers(tokenize(text))
