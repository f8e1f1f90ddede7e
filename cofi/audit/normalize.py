"""Answer normalization: free-text answers (from any LLM, or a human) to a question's canonical options.

"Yep", "affirmative", "Yes, she did." -> yes; "not applicable" -> na; "three" -> 3 when the
options are numbers. Anything else maps to None with the reason, so llm2 scores it as
unknown instead of guessing.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

SYNONYMS: dict[str, tuple[str, ...]] = {
    "yes": ("yes", "y", "yeah", "yep", "yup", "ya", "sure", "true", "correct", "affirmative", "indeed", "ok",
            "okay", "right", "done", "did", "present", "confirmed", "positive", "absolutely", "certainly", "1"),
    "no": ("no", "n", "nope", "nah", "false", "negative", "never", "not", "none", "absent", "missing", "didnt",
           "did not", "not done", "not at all", "incorrect", "0"),
    "na": ("na", "n/a", "n a", "not applicable", "not relevant", "irrelevant", "does not apply", "doesnt apply",
           "no trade", "no trades", "unknown", "cannot tell", "cant tell", "not mentioned"),
}
UNCERTAIN = ("not sure", "unsure", "maybe", "possibly", "perhaps", "unclear", "i dont know", "dont know")
NUMBER_WORDS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
    "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50,
    "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90, "hundred": 100,
}


@dataclass(frozen=True)
class Normalized:
    value: str | None
    reason: str = ""


def _clean(text: str) -> str:
    text = text.lower().replace("’", "'").replace("n't", " not").replace("'", "")
    text = re.sub(r"[^a-z0-9/.\- ]+", " ", text)
    return re.sub(r"\s+", " ", text).strip(" .-")


def words_to_number(text: str) -> float | None:
    """'twenty five' -> 25, '3' -> 3, 'two hundred' -> 200; None when not a number."""
    t = _clean(text).replace("-", " ")
    try:
        return float(t)
    except ValueError:
        pass
    total, seen = 0, False
    for w in t.split():
        if w == "and":
            continue
        if w not in NUMBER_WORDS:
            return None
        n, seen = NUMBER_WORDS[w], True
        total = total * n if n == 100 and total else total + n
    return float(total) if seen else None


def _canonical(option: str) -> str:
    return _clean(option).replace("/", "").replace(" ", "") if _clean(option) in ("n/a", "n a") else _clean(option)


def normalize_answer(raw: str | None, options: Sequence[str]) -> Normalized:
    """Map `raw` onto one of `options` (returned as written in options) or None with a reason."""
    if raw is None or not str(raw).strip():
        return Normalized(None, "empty answer")
    by_clean = {_canonical(o): o for o in options}
    text = _clean(str(raw))
    if text in by_clean:
        return Normalized(by_clean[text])
    if any(text == u or text.startswith(u + " ") for u in UNCERTAIN):
        return Normalized(None, f"uncertain answer {str(raw)[:80]!r}")
    # synonyms of yes / no / na, longest phrase first, at the start of the answer
    phrases = sorted(((syn, canon) for canon, syns in SYNONYMS.items() if canon in by_clean for syn in syns),
                     key=lambda p: -len(p[0]))
    for syn, canon in phrases:
        if text == syn or text.startswith(syn + " ") or text.startswith(syn + ","):
            return Normalized(by_clean[canon], f"synonym {syn!r}")
    # numeric options: digits or number words
    number = words_to_number(text)
    if number is not None:
        for clean, original in by_clean.items():
            opt_num = words_to_number(clean)
            if opt_num is not None and opt_num == number:
                return Normalized(original, "number")
    # an option named as the first word ("partially, the agent ...")
    first = text.split(" ", 1)[0]
    if first in by_clean:
        return Normalized(by_clean[first], "first word")
    return Normalized(None, f"{str(raw)[:80]!r} matches none of {list(options)}")
