"""The transcript later stages read: as text (speaker-labelled lines) and, for the audit, the redacted one.

`labelled_text` is how stt and redact write a transcript as text; `audit_transcript` is the one
place that decides which text the audit (llm1, llm2) reads: the redact stage's when the batch
redacted the call, else stt's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cofi.errors import PermanentError
from cofi.pipeline.stages import results_of
from cofi.redaction import STAGE as REDACT


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
    ('' when neither ran). A call whose batch redacts but that has no redact result never gets its
    original read: PermanentError (the file fails at the audit stage, the batch goes on)."""
    results = results_of(event)
    if results.redact is not None:
        return results.redact.text
    if REDACT in (event.get("stages") or []):
        raise PermanentError(f"file {event.get('file')}: its batch redacts PII but the event has no redact "
                             "result; the audit does not read the unredacted transcript")
    return results.stt.text if results.stt is not None else ""


def audit_artifact(event: Mapping[str, Any]) -> str:
    """Path of the transcript JSON (segments, words, probabilities) behind `audit_transcript` ('' when none)."""
    results = results_of(event)
    if results.redact is not None:
        return results.redact.transcriptPath
    return results.stt.transcriptPath if results.stt is not None and REDACT not in (event.get("stages") or []) else ""


def call_language(event: Mapping[str, Any]) -> str:
    """The language the call was transcribed in (stt's, else lid's; '' when neither ran)."""
    results = results_of(event)
    return ((results.stt.language if results.stt is not None else "")
            or (results.lid.language if results.lid is not None else ""))
