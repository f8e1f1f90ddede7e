"""The one function that says which transcript the audit reads."""

from __future__ import annotations

import pytest

from cofi.errors import PermanentError
from cofi.pipeline.results import SpeechParams
from cofi.pipeline.stages import STAGES, empty_results
from cofi.pipeline.transcript_source import audit_transcript, labelled_text

STT = {"worker": "w", "engine": "e", "durationMs": 1, "language": "en", "transcriptPath": "/a/stt.json",
       "text": "customer: my account is 4567 8901", "speech": dict.fromkeys(SpeechParams.model_fields, 0.0)}
REDACT = {"worker": "w", "engine": "e", "durationMs": 1, "transcriptPath": "/a/redact.json",
          "text": "customer: my account is [ACCOUNT_NUMBER_1]", "outputPath": "/a/redact.wav"}


def _event(plan: list[str], **results: dict) -> dict:
    return {"file": "a.wav", "stages": plan, "results": {**empty_results(), **results}}


def test_the_audit_reads_the_redacted_transcript_when_there_is_one() -> None:
    plain = [s for s in STAGES if s != "redact"]
    assert audit_transcript(_event(plain, stt=STT)) == STT["text"]
    assert audit_transcript(_event(list(STAGES), stt=STT, redact=REDACT)) == REDACT["text"]
    assert audit_transcript(_event(plain)) == ""


def test_a_redacting_batch_never_falls_back_to_the_original() -> None:
    with pytest.raises(PermanentError, match="no redact result"):
        audit_transcript(_event(list(STAGES), stt=STT))


def test_labelled_text_joins_a_speakers_segments() -> None:
    segments = [{"speaker": "agent", "text": "hello"}, {"speaker": "agent", "text": "there"},
                {"speaker": "customer", "text": "hi"}]
    assert labelled_text(segments) == "agent: hello there\ncustomer: hi"
