"""Deterministic trade facts: which of a trade's fields the transcript states, and which it contradicts.

The LLM's trade verdict is cross-checked against these facts (see `combine`): a model may
not confirm a trade whose quantity, price, side or symbol the call never states, nor miss
a side or quantity the call states differently. Numbers are read as digits ("1,000",
"187.50") or words ("one hundred", "two thousand five hundred"); symbols as the ticker.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

SIDE_WORDS = {"buy": "buy", "buying": "buy", "bought": "buy", "purchase": "buy", "purchasing": "buy",
              "sell": "sell", "selling": "sell", "sold": "sell"}
UNITS = {"zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
         "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
         "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40,
         "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90}
SCALES = {"hundred": 100, "thousand": 1000, "million": 1_000_000}
QTY_UNITS = ("shares", "share", "units", "unit", "lots", "lot", "contracts")
FIELDS = ("symbol", "side", "quantity", "price")
TOKEN_RE = re.compile(r"\d[\d,]*(?:\.\d+)?|[a-z]+|[,;:?!]")


@dataclass
class Facts:
    found: set[str] = field(default_factory=set)
    mismatches: set[str] = field(default_factory=set)
    evidence: str = ""

    @property
    def status(self) -> str:
        if self.mismatches:
            return "contradicted"
        return "confirmed" if self.found >= set(FIELDS) else "not_mentioned"


def numbers_in(text: str) -> list[tuple[float, int]]:
    """(value, index of the token after it) for every number in digits or words."""
    tokens = TOKEN_RE.findall(text.lower())
    out: list[tuple[float, int]] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok[0].isdigit():
            out.append((float(tok.replace(",", "")), i + 1))
            i += 1
            continue
        total, current, j = 0, 0, i
        while j < len(tokens) and (tokens[j] in UNITS or tokens[j] in SCALES or (tokens[j] == "and" and j > i)):
            w, prev = tokens[j], tokens[j - 1] if j > i else ""
            if w in UNITS and prev in UNITS and not (UNITS[prev] >= 20 and UNITS[w] < 10):
                break  # "ten one" is two numbers; "twenty five" is one
            if w in UNITS:
                current += UNITS[w]
            elif w in SCALES:
                current = max(current, 1) * SCALES[w]
                if SCALES[w] >= 1000:
                    total, current = total + current, 0
            j += 1
        if j > i and tokens[j - 1] != "and":
            out.append((float(total + current), j))
            i = j
        else:
            i += 1
    return out


def _line_with(transcript: str, needles: list[str]) -> str:
    best, score = "", 0
    for line in transcript.splitlines():
        low = line.lower()
        s = sum(1 for n in needles if n and n in low)
        if s > score:
            best, score = line.strip(), s
    return best[:160]


def trade_facts(transcript: str, trade: Mapping[str, Any]) -> Facts:
    low = transcript.lower()
    words = re.findall(r"[a-z]+", low)
    facts = Facts()
    if re.search(rf"\b{re.escape(str(trade['symbol']).lower())}\b", low):
        facts.found.add("symbol")
    sides = {SIDE_WORDS[w] for w in words if w in SIDE_WORDS}
    if trade["side"] in sides:
        facts.found.add("side")
    elif sides:
        facts.mismatches.add("side")
    nums = numbers_in(low)
    tokens = TOKEN_RE.findall(low)
    qty, price = float(trade["quantity"]), float(trade["price"])
    if any(v == qty for v, _ in nums):
        facts.found.add("quantity")
    elif any(nxt < len(tokens) and tokens[nxt] in QTY_UNITS for _, nxt in nums):
        facts.mismatches.add("quantity")  # "200 shares" stated, the booked quantity never
    if any(abs(v - price) < 0.005 for v, _ in nums):
        facts.found.add("price")
    facts.evidence = _line_with(transcript, [str(trade["symbol"]).lower(), trade["side"],
                                             f"{qty:g}", f"{price:g}"])
    return facts


def combine(llm_status: str, llm_mismatches: list[str], facts: Facts) -> tuple[str, list[str]]:
    """Final (status, mismatches): facts decide when conclusive; the LLM may only add a contradiction."""
    if facts.status == "contradicted":
        extra = set(llm_mismatches) if llm_status == "contradicted" else set()
        return "contradicted", sorted(facts.mismatches | (extra - facts.found))
    if facts.status == "confirmed":
        return "confirmed", []
    if llm_status == "contradicted":
        mism = sorted(set(llm_mismatches) - facts.found)
        if mism:
            return "contradicted", mism
    return "not_mentioned", []
