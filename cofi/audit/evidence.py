"""Evidence quotes that really are in the transcript.

Small models often echo the prompt ("<short quote>") instead of quoting the call. A quote
is kept only when it is grounded in the transcript; otherwise the evidence is the
transcript line that shares the most content words with the question (or the trade).
"""

from __future__ import annotations

import re

STOP = frozenset("""a an the and or of to in on at for with by is are was were be been did do does has have had
this that these those it its you your we our they their he she his her i me my from as any all not no yes
agent customer call caller what which who whom when where how than then there here so if into about""".split())


def _tokens(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+(?:\.[0-9]+)?", text.lower())


def grounded(quote: str, transcript: str, min_tokens: int = 2) -> bool:
    """True when the quote's words appear in order, contiguously, in the transcript."""
    q = _tokens(quote)
    if len(q) < min_tokens:
        return False
    return f" {' '.join(q)} " in f" {' '.join(_tokens(transcript))} "


def best_line(transcript: str, query: str, max_chars: int = 160) -> str:
    """The transcript line sharing most content words with `query` ('' when none shares any)."""
    wanted = {t for t in _tokens(query) if t not in STOP and len(t) > 1}
    best, best_score = "", 0
    for line in transcript.splitlines():
        score = len(wanted & set(_tokens(line)))
        if score > best_score:
            best, best_score = line.strip(), score
    return best[:max_chars]


def evidence_for(quote: str, transcript: str, query: str, max_chars: int = 160) -> str:
    """The model's quote when grounded, else the best-matching transcript line."""
    quote = quote.strip().strip('"')
    return quote[:max_chars] if grounded(quote, transcript) else best_line(transcript, query, max_chars)
