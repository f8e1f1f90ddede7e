"""The instrument master: how booked tickers are spoken ("SBIN" is "State Bank of India" or "SBI").

A batch may bring a master (CSV `symbol,name,aliases` with aliases separated by `|` or `;`, or
JSON objects with those keys). Matching is deterministic: a name or alias is found in a line when
its words appear in order, exactly or, for words of five letters and more, within a small edit
distance (speech recognition writes "Infosis" for "Infosys"). The ticker itself always counts,
also spelled out letter by letter ("S B I N").
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from rapidfuzz import fuzz

from cofi.audit.record_files import read_records

WORD_RE = re.compile(r"[a-z0-9]+")
GENERIC = frozenset({"ltd", "limited", "inc", "corp", "corporation", "plc", "the", "co", "company", "and", "of"})
MAX_ENTRIES = 20_000
DEFAULT_MASTER = Path(__file__).parent / "defaults" / "instruments.csv"


class InstrumentError(ValueError):
    """A master file or row that cannot be used; the message names the row."""


@dataclass(frozen=True)
class Instrument:
    symbol: str
    name: str = ""
    aliases: tuple[str, ...] = ()

    def spoken_forms(self) -> list[tuple[str, ...]]:
        """Word sequences that name it: ticker, ticker spelled out, name (without Ltd & co), aliases."""
        forms: list[tuple[str, ...]] = []
        if len(self.symbol) >= 3:  # "V", "KO" or "MS" as a word would match ordinary speech
            forms.append(tuple(words(self.symbol)))
            if len(self.symbol) <= 6 and self.symbol.isalpha():
                forms.append(tuple(self.symbol.lower()))
        for text in (self.name, *self.aliases):
            w = tuple(x for x in words(text) if x not in GENERIC) or tuple(words(text))
            if w:
                forms.append(w)
        return list(dict.fromkeys(f for f in forms if f))

    def to_record(self) -> dict[str, Any]:
        return {"symbol": self.symbol, "name": self.name, "aliases": list(self.aliases)}


def words(text: str) -> list[str]:
    return WORD_RE.findall(text.lower())


def _word_match(a: str, b: str) -> bool:
    if a == b:
        return True
    return min(len(a), len(b)) >= 5 and fuzz.ratio(a, b) >= 80


def find_form(tokens: Sequence[str], form: Sequence[str]) -> int:
    """Index where `form` starts in `tokens` (-1 when absent); long words tolerate small misspellings,
    and words like "of" or "Ltd" are skipped on both sides ("State Bank of India" = "state bank india")."""
    if not any(t in GENERIC for t in form):
        kept = [(i, t) for i, t in enumerate(tokens) if t not in GENERIC]
        tokens_f = [t for _, t in kept]
        at = _find(tokens_f, form)
        return kept[at][0] if at >= 0 else -1
    return _find(tokens, form)


def _find(tokens: Sequence[str], form: Sequence[str]) -> int:
    n = len(form)
    for i in range(len(tokens) - n + 1):
        if all(_word_match(tokens[i + k], form[k]) for k in range(n)):
            return i
    return -1


@dataclass
class Master:
    by_symbol: dict[str, Instrument] = field(default_factory=dict)

    def get(self, symbol: str) -> Instrument:
        return self.by_symbol.get(symbol.upper()) or Instrument(symbol.upper())

    def merged(self, other: Master) -> Master:
        """This master with `other`'s entries added or replacing ours (a batch's master wins)."""
        return Master({**self.by_symbol, **other.by_symbol})

    def named_in(self, text: str, exclude: Iterable[str] = ()) -> Instrument | None:
        """An instrument of this master (not one of `exclude`) that `text` names, if any."""
        tokens = words(text)
        skip = {s.upper() for s in exclude}
        for inst in self.by_symbol.values():
            if inst.symbol not in skip and any(find_form(tokens, f) >= 0 for f in inst.spoken_forms()):
                return inst
        return None

    def records(self, symbols: Iterable[str] | None = None) -> list[dict[str, Any]]:
        keys = self.by_symbol if symbols is None else [s.upper() for s in symbols if s.upper() in self.by_symbol]
        return [self.by_symbol[k].to_record() for k in dict.fromkeys(keys)]

    def vocabulary(self, symbols: Iterable[str], max_chars: int = 600) -> list[str]:
        """Names of these instruments for speech recognition, in the given order, within a budget."""
        out: list[str] = []
        used = 0
        for s in dict.fromkeys(x.upper() for x in symbols):
            inst = self.get(s)
            for name in (inst.name, *inst.aliases):
                if name and name not in out and used + len(name) + 2 <= max_chars:
                    out.append(name)
                    used += len(name) + 2
        return out


def instrument_of(record: Mapping[str, Any], where: str = "instrument") -> Instrument:
    symbol = str(record.get("symbol") or "").strip().upper()
    if not symbol:
        raise InstrumentError(f"{where}: missing symbol")
    raw = record.get("aliases") or []
    aliases = raw if isinstance(raw, list | tuple) else re.split(r"[|;]", str(raw))
    return Instrument(symbol, str(record.get("name") or "").strip(),
                      tuple(a.strip() for a in aliases if str(a).strip()))


def master_of(records: Iterable[Mapping[str, Any]]) -> Master:
    m = Master()
    for i, r in enumerate(records):
        inst = instrument_of(r, f"instrument {i}")
        m.by_symbol[inst.symbol] = inst
    return m


@lru_cache(maxsize=1)
def default_master() -> Master:
    """Common NSE and US instruments with their spoken names: used when a batch brings no master,
    and under a batch's own (which wins for the symbols it lists)."""
    return load_master(DEFAULT_MASTER)


def load_master(path: str | Path) -> Master:
    """Read a CSV (`symbol,name,aliases`) or JSON master; InstrumentError names the bad row."""
    m = Master()
    for where, row in read_records(path, key="instruments", required=("symbol",), error=InstrumentError):
        if len(m.by_symbol) >= MAX_ENTRIES:
            raise InstrumentError(f"{path}: more than {MAX_ENTRIES} instruments")
        inst = instrument_of(row, where)
        m.by_symbol[inst.symbol] = inst
    return m
