"""Deterministic trade checks: what the call states about a booked trade, field by field.

The instrument is found by its ticker, name or aliases (cofi.audit.instruments); the side, the
quantity and the price are read in the lines around each mention (the order, the read-back and
the confirmation), numbers as digits or words (cofi.audit.spoken_numbers). A field the call
states differently is a mismatch; a mismatch whose numbers speech recognition heard with low
confidence is `unclear` instead (a mishearing must not fail a trade, nor be "corrected" toward
the booked value). The LLM is asked only when this pass cannot decide (`Facts.decided`).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cofi.audit.instruments import Instrument, Master, find_form, words
from cofi.audit.spoken_numbers import QTY_WORDS, SpokenNumber, find_numbers, tokenize
from cofi.audit.transcript import Line

SIDE_WORDS = {"buy": "buy", "buying": "buy", "bought": "buy", "purchase": "buy", "purchasing": "buy",
              "purchased": "buy", "acquire": "buy", "sell": "sell", "selling": "sell", "sold": "sell",
              "exit": "sell", "dispose": "sell"}
MARKET_WORDS = ("market price", "at market", "market order", "current price", "best price")
FIELDS = ("symbol", "side", "quantity", "price")
WINDOW_AFTER = 3  # lines after a mention that still belong to its order (read-back, confirmation)
WINDOW_BEFORE = 1


@dataclass
class Facts:
    found: set[str] = field(default_factory=set)
    mismatches: set[str] = field(default_factory=set)
    unclear: set[str] = field(default_factory=set)
    evidence: Line | None = None
    order_talk: bool = False  # the call speaks of buying or selling at all

    @property
    def status(self) -> str:
        if self.mismatches:
            return "contradicted"
        if self.unclear:
            return "unclear"
        if self.found >= set(FIELDS):
            return "confirmed"
        return "not_mentioned"

    @property
    def decided(self) -> bool:
        """True when no LLM is needed: a mismatch, an unclear hearing, everything found, or no order talk."""
        return bool(self.mismatches or self.unclear or self.found >= set(FIELDS) or not self.order_talk)


def _mention_lines(lines: list[Line], inst: Instrument) -> list[int]:
    forms = inst.spoken_forms()
    return [i for i, ln in enumerate(lines) if any(find_form(words(ln.text), f) >= 0 for f in forms)]


def _sides(tokens: list[str]) -> set[str]:
    return {SIDE_WORDS[t] for t in tokens if t in SIDE_WORDS}


def _quantity_candidates(tokens: list[str], nums: list[SpokenNumber], inst: Instrument) -> list[SpokenNumber]:
    """Numbers said as a quantity: '200 shares', 'quantity 200', or right before the instrument ('200 TCS')."""
    forms = inst.spoken_forms()
    out = [n for n in nums if n.role == "quantity"]
    for n in nums:
        if n.role or n.end >= len(tokens):
            continue
        rest = tokens[n.end:n.end + 6]
        if rest and rest[0] == "of":
            rest = rest[1:]
        if any(find_form(rest[:len(f)], f) == 0 for f in forms) or (rest and rest[0] in QTY_WORDS):
            out.append(n)
    return out


def _uncertain(n: SpokenNumber, tokens: list[str], uncertain_words: Collection[str]) -> bool:
    return any(t in uncertain_words for t in tokens[n.start:n.end])


def _order_line(lines: list[Line], booked: Sequence[Instrument]) -> Line | None:
    """A line that places an order (a side and a quantity) naming none of the call's booked instruments."""
    for ln in lines:
        tokens = tokenize(ln.text)
        if not _sides(tokens) or any(_mention_lines([ln], b) for b in booked):
            continue
        if any(n.role == "quantity" for n in find_numbers(tokens)):
            return ln
    return None


def _other_instrument(line: Line, known: Master | None, booked: Sequence[Instrument]) -> Instrument | None:
    return known.named_in(line.text, exclude=[b.symbol for b in booked]) if known is not None else None


def trade_facts(lines: list[Line], trade: Mapping[str, Any], inst: Instrument,
                uncertain_words: Collection[str] = (), booked: Sequence[Instrument] = (),
                known: Master | None = None) -> Facts:
    """What `lines` state about `trade`; `uncertain_words` are tokens the recognizer was unsure of,
    `booked` the instruments of every trade mapped to the call (this one included), `known` the
    instrument master (to tell an order for another instrument from one for a name we do not know)."""
    facts = Facts(order_talk=any(_sides(tokenize(ln.text)) for ln in lines))
    mentions = _mention_lines(lines, inst)
    if not mentions:
        order = _order_line(lines, [*booked, inst])
        facts.order_talk = order is not None
        if order is not None:
            facts.evidence = order
            if _other_instrument(order, known, [*booked, inst]) is not None:
                facts.mismatches.add("symbol")  # the call orders another instrument than the booked one
        return facts
    facts.found.add("symbol")
    window = _window(lines, mentions, [b for b in booked if b.symbol != inst.symbol])
    qty, price, side = float(trade["quantity"]), float(trade["price"]), str(trade["side"]).lower()
    sides: set[str] = set()
    qty_seen: list[tuple[SpokenNumber, list[str]]] = []
    price_seen: list[tuple[SpokenNumber, list[str]]] = []
    loose: list[SpokenNumber] = []
    score: dict[int, int] = {}
    for j in window:
        tokens = tokenize(lines[j].text)
        nums = find_numbers(tokens)
        sides |= _sides(tokens)
        q = _quantity_candidates(tokens, nums, inst)
        qty_seen += [(n, tokens) for n in q]
        price_seen += [(n, tokens) for n in nums if n.role == "price"]
        loose += [n for n in nums if not n.role and n not in q]
        score[j] = (j in mentions) + (side in _sides(tokens)) + any(n.matches(qty) for n in q) + any(
            n.matches(price) for n in nums)
    near = {x for i in mentions for j in (i - 1, i) if j in window for x in _sides(tokenize(lines[j].text))}
    said = near or sides  # the side said with the instrument first, else anywhere in its window
    if side in said:
        facts.found.add("side")
    elif said:
        facts.mismatches.add("side")
    _judge("quantity", qty, qty_seen, loose, facts, uncertain_words)
    market = any(m in " ".join(lines[j].text.lower() for j in window) for m in MARKET_WORDS)
    if market and not price_seen:
        facts.found.add("price")  # a market order: the booked price is the fill, not a spoken one
    else:
        _judge("price", price, price_seen, loose, facts, uncertain_words)
    best = max(window, key=lambda j: (score[j], -j))
    facts.evidence = lines[best]
    return facts


def _window(lines: list[Line], mentions: list[int], others: Sequence[Instrument]) -> list[int]:
    """Lines around each mention (the order, its read-back, the confirmation), never reaching into a
    line that names another instrument booked for the same call (that is the other order's talk)."""
    other_lines = {j for o in others for j in _mention_lines(lines, o)} - set(mentions)
    out: set[int] = set()
    for i in mentions:
        out.add(i)
        for step, reach in ((-1, WINDOW_BEFORE), (1, WINDOW_AFTER)):
            for k in range(1, reach + 1):
                j = i + step * k
                if not 0 <= j < len(lines) or j in other_lines:
                    break
                out.add(j)
    return sorted(out)


def _judge(name: str, booked: float, seen: list[tuple[SpokenNumber, list[str]]], loose: list[SpokenNumber],
           facts: Facts, uncertain_words: Collection[str]) -> None:
    if any(n.matches(booked) for n, _ in seen) or any(n.matches(booked) for n in loose):
        facts.found.add(name)
    elif seen:
        if all(_uncertain(n, toks, uncertain_words) for n, toks in seen):
            facts.unclear.add(name)
        else:
            facts.mismatches.add(name)


def uncertain_words(transcript_json: Mapping[str, Any] | None, threshold: float = 0.5) -> set[str]:
    """Lower-cased tokens of the words the recognizer gave a probability under `threshold`."""
    out: set[str] = set()
    for seg in (transcript_json or {}).get("segments") or []:
        for w in seg.get("words") or []:
            if float(w.get("probability", 1.0)) < threshold:
                out.update(tokenize(str(w.get("word", ""))))
    return {t for t in out if re.search(r"\d", t) or t not in ("a", "the", "and")}
