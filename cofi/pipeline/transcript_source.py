"""The transcript later stages read: as text (speaker-labelled lines) and, for the audit, the redacted one.

`labelled_text` is how stt and redact write a transcript as text; `audit_transcript` is the one
place that decides which text the audit (llm1, llm2) reads: the redact stage's when the batch
redacted the call, else stt's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cofi.pipeline.stages import results_of


def labelled_text(segments: list[dict[str, Any]]) -> str:
    """'agent: ...' lines, consecutive segments of one speaker joined into one line."""
    lines: list[tuple[str, str]] = []
    for s in segments:
        if lines and lines[-1][0] == s["speaker"]:
            lines[-1] = (s["speaker"], f"{lines[-1][1]} {s['text']}")
        else:
            lines.append((s["speaker"], s["text"]))
    return "\n".join(f"{who}: {what}" for who, what in lines)


def audit_transcript(event: Mapping[str, Any]) -> str:
    """The text the audit reads: the redacted transcript when the call went through redact, else stt's
    ('' when neither ran)."""
    results = results_of(event)
    if results.redact is not None:
        return results.redact.text
    return results.stt.text if results.stt is not None else ""
