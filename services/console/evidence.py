"""Find an evidence quote in the transcript's turns, word by word, to highlight it.

Located by text, never by any index an LLM may add: the quote and the transcript words are
normalized (case, accents, punctuation and speaker labels ignored) and the longest common
run of words is taken; a quote is located when that run covers all of it, or most of a long
one (small models paraphrase a word or two).
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass, field
from difflib import SequenceMatcher

MIN_PARTIAL_WORDS = 3
PARTIAL_SHARE = 0.6


def tokens(text: str) -> list[str]:
    """Lower-case words without accents or punctuation ("Héllo, it's" -> ["hello", "it", "s"])."""
    plain = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(ch for ch in plain if not unicodedata.combining(ch))
    return re.findall(r"\w+", plain)


@dataclass
class Word:
    text: str
    start: float | None = None
    end: float | None = None
    marks: list[str] = field(default_factory=list)  # ids of the evidence items that quote this word


@dataclass
class Turn:
    speaker: str
    start: float | None
    end: float | None
    words: list[Word]

    @property
    def text(self) -> str:
        return " ".join(w.text for w in self.words)

    def pieces(self) -> list[tuple[str, list[str]]]:
        """(text, marks) runs: consecutive words quoted by the same evidence make one highlight."""
        out: list[tuple[str, list[str]]] = []
        for w in self.words:
            if out and out[-1][1] == w.marks:
                out[-1] = (f"{out[-1][0]} {w.text}", w.marks)
            else:
                out.append((w.text, w.marks))
        return out


@dataclass
class Location:
    turn: int  # first turn of the quote
    start: float | None  # time of its first word
    words: int  # how many words matched
    exact: bool


def _strip_labels(quote: str, speakers: set[str]) -> str:
    """'agent: Hello' -> 'Hello' (best-line evidence quotes a labelled transcript line)."""
    if not speakers:
        return quote
    names = "|".join(re.escape(s) for s in sorted(speakers, key=len, reverse=True))
    return re.sub(rf"(?i)(?:^|(?<=\s))(?:{names})\s*:\s*", " ", quote)


def locate(turns: list[Turn], quote: str | None, mark: str | None = None) -> Location | None:
    """Where `quote` is in `turns` (None when it is not there); with `mark`, tag the matched words."""
    if not quote or not turns:
        return None
    q = tokens(_strip_labels(quote, {t.speaker for t in turns}))
    if not q:
        return None
    flat: list[tuple[int, int]] = []  # (turn, word) per token
    words: list[str] = []
    for ti, turn in enumerate(turns):
        for wi, word in enumerate(turn.words):
            for tok in tokens(word.text):
                flat.append((ti, wi))
                words.append(tok)
    if not words:
        return None
    m = SequenceMatcher(None, words, q, autojunk=False).find_longest_match(0, len(words), 0, len(q))
    exact = m.size == len(q)
    if not exact and (len(q) < MIN_PARTIAL_WORDS or m.size < max(MIN_PARTIAL_WORDS, math.ceil(PARTIAL_SHARE * len(q)))):
        return None
    hit = flat[m.a:m.a + m.size]
    if mark:
        for ti, wi in dict.fromkeys(hit):
            marks = turns[ti].words[wi].marks
            if mark not in marks:
                marks.append(mark)
    ti, wi = hit[0]
    return Location(ti, turns[ti].words[wi].start if turns[ti].words[wi].start is not None else turns[ti].start,
                    m.size, exact)
