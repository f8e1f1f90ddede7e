"""Word error rate against a synthetic call's known text (tests and bench/audio.py).

Both sides go through Whisper's own English text normalizer (the `whisper-normalizer` port:
numbers, currency, ordinals, spelling variants, punctuation, casing), so "twenty" = "20" and
"fifty dollars" = "$50": a machine that writes numbers differently does not count as an error.
"""

from __future__ import annotations

import re
from functools import lru_cache

SPEAKER_LABEL = re.compile(r"^\s*(agent|customer|speaker|mixed)\s*:\s*", re.I | re.M)


@lru_cache(maxsize=1)
def _normalizer():
    from whisper_normalizer.english import EnglishTextNormalizer

    return EnglishTextNormalizer()


def normalize_text(s: str) -> str:
    """Speaker labels dropped, then Whisper's English normalization."""
    return _normalizer()(SPEAKER_LABEL.sub("", s))


def wer(reference: str, hypothesis: str) -> float:
    """Word error rate after normalize_text (jiwer, from the dev extra)."""
    import jiwer

    ref, hyp = normalize_text(reference), normalize_text(hypothesis)
    if not ref:
        return 0.0 if not hyp else 1.0
    return float(jiwer.wer(ref, hyp))
