"""Word error rate against a synthetic call's known text (tests and bench/audio.py)."""

from __future__ import annotations

import re

_ONES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
         "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"]
_TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]


def number_words(n: int) -> str:
    """English words for 0..999999 ("one hundred twenty five"), as the scripts spell numbers."""
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    if n < 1000:
        return _ONES[n // 100] + " hundred" + ("" if n % 100 == 0 else " " + number_words(n % 100))
    return number_words(n // 1000) + " thousand" + ("" if n % 1000 == 0 else " " + number_words(n % 1000))


def normalize_text(s: str) -> str:
    """Lower case, no speaker labels or punctuation, digits spelled out: for WER against the truth."""
    s = re.sub(r"^(agent|customer|speaker|mixed):\s*", "", s, flags=re.M).lower()
    s = re.sub(r"(?<=\d),(?=\d{3})", "", s)
    s = re.sub(r"\d+", lambda m: f" {number_words(int(m.group()))} " if len(m.group()) <= 6 else m.group(), s)
    return " ".join(re.sub(r"[^a-z0-9' ]+", " ", s.replace("-", " ")).split())


def wer(reference: str, hypothesis: str) -> float:
    """Word error rate after normalize_text (jiwer, from the dev extra)."""
    import jiwer

    ref, hyp = normalize_text(reference), normalize_text(hypothesis)
    if not ref:
        return 0.0 if not hyp else 1.0
    return float(jiwer.wer(ref, hyp))
