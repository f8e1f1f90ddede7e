"""Numbers as a transcript writes them: digits, digit words, and what Whisper makes of spoken digits.

A client reads an account number out digit by digit; the transcript then holds `4567 8901`,
`four five six seven`, `5 -5 -5`, `1 ,000`, `Nero68` (Whisper hearing "zero six eight") or a
mix. `number_runs` finds every run of such tokens on a line, with the digits it stands for, so
the recognizers can judge the number as a whole, whatever the transcript made of it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: digit words, with Whisper's usual mishearings of synthetic and telephone speech ("nero" for zero)
DIGIT_WORDS = {"zero": "0", "oh": "0", "o": "0", "nero": "0", "one": "1", "two": "2", "three": "3", "four": "4",
               "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9", "niner": "9", "hine": "9"}
TEENS = {"ten": "10", "eleven": "11", "twelve": "12", "thirteen": "13", "fourteen": "14", "fifteen": "15",
         "sixteen": "16", "seventeen": "17", "eighteen": "18", "nineteen": "19"}
TENS = {"twenty": "2", "thirty": "3", "forty": "4", "fifty": "5", "sixty": "6", "seventy": "7", "eighty": "8",
        "ninety": "9"}
REPEAT = {"double": 2, "triple": 3}
#: words that never join two numbers into one ("200 at 40" is a quantity and a price, not one ID)
JOINERS_NEVER = {"at", "of", "for", "and", "to", "on", "in", "per", "by", "or", "with", "from", "the", "a", "an",
                 "is", "was", "are", "shares", "share", "units", "lots", "dollars", "rupees", "euros", "pounds",
                 "percent", "price", "buy", "sell", "x"}
#: a number followed by one of these is an amount or a quantity, not an identifier
UNIT_WORDS = {"shares", "share", "units", "unit", "lots", "lot", "contracts", "dollars", "dollar", "rupees",
              "rupee", "euros", "euro", "pounds", "cents", "paise", "percent", "bucks", "crore", "lakh", "million",
              "billion", "thousand", "hundred", "minutes", "seconds", "hours", "days", "years", "months"}
EDGE = ".,;:!?\"'()[]{}"
_DIGITS = re.compile(r"\d[\d,.\-/]*|[,.]\d+")
_ORDINAL = re.compile(r"(\d{1,2})(?:st|nd|rd|th)")
_WORD_THEN_DIGITS = re.compile(rf"({'|'.join(DIGIT_WORDS)})(\d+)")
_ALNUM_ID = re.compile(r"(?=.*\d)(?=.*[a-z])[a-z0-9]{2,}")
_TIME = re.compile(r"\d{1,2}:\d{2}(?::\d{2})?")


@dataclass(frozen=True)
class Token:
    start: int  # character offsets in the analysed text
    end: int
    text: str

    @property
    def core(self) -> str:
        """Without edge punctuation, a leading '-' (Whisper writes "5 -5 -5") or '#'; lower case."""
        return self.text.strip(EDGE).lstrip("-#").strip(EDGE).lower()

    @property
    def money(self) -> bool:
        return self.text.lstrip(EDGE).startswith(("$", "€", "£", "₹")) or self.text.rstrip(EDGE).endswith("%")


def tokens(text: str) -> list[Token]:
    return [Token(m.start(), m.end(), m.group()) for m in re.finditer(r"\S+", text)]


def digits_of(tok: Token) -> str | None:
    """The digits one token stands for ('four' -> '4', '-33788,' -> '33788', 'Nero68' -> '068'), else None.

    Amounts ('$40', '187.50') and clock times ('10:30') are not identifiers: None."""
    low = tok.core
    if not low or tok.money or _TIME.fullmatch(low):
        return None
    if low in DIGIT_WORDS:
        return DIGIT_WORDS[low]
    if low in TEENS:
        return TEENS[low]
    if low in TENS:
        return TENS[low] + "0"
    if (m := _ORDINAL.fullmatch(low)) is not None:
        return m.group(1)
    if (m := _WORD_THEN_DIGITS.fullmatch(low)) is not None:
        return DIGIT_WORDS[m.group(1)] + m.group(2)
    if _DIGITS.fullmatch(low):
        if re.fullmatch(r"\d+\.\d{1,2}", low):
            return None  # a decimal amount or price
        return re.sub(r"\D", "", low)
    if _ALNUM_ID.fullmatch(low.replace("-", "")):
        return re.sub(r"\D", "", low)
    return None


def spelled_letter(tok: Token) -> bool:
    """A letter or all-caps acronym said as letters ('H', 'UNDP', 'F.'): part of a spelled-out ID."""
    core = tok.text.strip(EDGE).lstrip("-")
    return core.isalpha() and core.isupper() and len(core) <= 5 and core != "I"


@dataclass
class Run:
    """Tokens [first, last] of a line that read as one number, and the digits (and letters) it says."""

    first: int
    last: int
    digits: str
    letters: str = ""  # spelled letters before/inside/after it (client code prefix, PAN letters)
    alnum: bool = False  # a token mixing letters and digits ('C17776', 'HFL2288F')

    @property
    def value(self) -> str:
        return self.letters.upper() + self.digits


def alnum_id(tok: Token) -> str:
    """The letters of a token that mixes letters and digits ('C17776' -> 'C'), '' for any other token."""
    low = tok.core.replace("-", "")
    if not _ALNUM_ID.fullmatch(low) or _WORD_THEN_DIGITS.fullmatch(low) or _ORDINAL.fullmatch(low):
        return ""
    return re.sub(r"[^a-z]", "", low).upper()


def _numeric(toks: list[Token], i: int) -> tuple[str, int] | None:
    """(digits, tokens used) of the number starting at token i, or None; joins 'twenty three' -> '23'
    and 'double five' -> '55'."""
    if i >= len(toks):
        return None
    low = toks[i].core
    nxt = toks[i + 1].core if i + 1 < len(toks) else ""
    if low in REPEAT and nxt in DIGIT_WORDS:
        return DIGIT_WORDS[nxt] * REPEAT[low], 2
    if low in TENS and nxt in DIGIT_WORDS and DIGIT_WORDS[nxt] != "0":
        return TENS[low] + DIGIT_WORDS[nxt], 2
    d = digits_of(toks[i])
    return (d, 1) if d else None


def _ends_sentence(tok: Token) -> bool:
    return tok.text.endswith((".", "?", "!"))


def _continues(tok: Token) -> bool:
    """'-8F': Whisper goes on with a hyphen when digits are read out one by one, even after a period."""
    return len(tok.text) > 1 and tok.text[0] == "-" and tok.text[1].isalnum()


def number_runs(toks: list[Token]) -> list[Run]:
    """Runs of number tokens on one line. A run goes on over one short word between two numbers once
    it has 3 digits ('17066, I'm Nero7': Whisper heard "nine" as "I'm"), never over JOINERS_NEVER nor
    a sentence end, and takes in spelled letters before it, inside it and one right after it
    ('C 4 8 2', 'H R 5 3 3 7 E')."""
    runs: list[Run] = []
    i = 0
    while i < len(toks):
        got = _numeric(toks, i)
        if got is None:
            i += 1
            continue
        run = Run(first=i, last=i + got[1] - 1, digits=got[0], letters=alnum_id(toks[i]))
        run.alnum = bool(run.letters)
        j = run.last + 1
        while j < len(toks) and (not _ends_sentence(toks[j - 1]) or _continues(toks[j])):
            nxt = _numeric(toks, j)
            if nxt is not None:
                run.digits += nxt[0]
                run.letters += alnum_id(toks[j])
                run.last = j + nxt[1] - 1
                j = run.last + 1
                continue
            gap = toks[j].core
            after = _numeric(toks, j + 1)
            if after is not None and spelled_letter(toks[j]):
                run.letters += toks[j].text.strip(EDGE).lstrip("-")
            elif not (after is not None and len(run.digits) >= 3 and gap not in JOINERS_NEVER and len(gap) <= 4
                      and not _ends_sentence(toks[j])):
                break
            run.digits += after[0]
            run.last = j + after[1]
            j = run.last + 1
        k = run.first - 1
        while k >= 0 and run.first - k <= 6 and spelled_letter(toks[k]) and not toks[k].text.endswith((".", ",")):
            run.letters = toks[k].text.strip(EDGE).lstrip("-") + run.letters
            run.first = k
            k -= 1
        after_run = run.last + 1
        if (after_run < len(toks) and spelled_letter(toks[after_run]) and len(toks[after_run].text.strip(EDGE)
                                                                              .lstrip("-")) == 1
                and not toks[run.last].text.endswith((".", ","))):
            run.last = after_run
            run.letters += toks[after_run].text.strip(EDGE).lstrip("-")
        runs.append(run)
        i = run.last + 1
    return runs


def followed_by_unit(toks: list[Token], run: Run) -> bool:
    """'250 shares', '40 dollars': a quantity or an amount."""
    return run.last + 1 < len(toks) and toks[run.last + 1].core in UNIT_WORDS
