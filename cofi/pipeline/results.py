"""The result of each stage as a pydantic model: the one typed boundary between services.

A worker validates its engine's result against the stage's model before encoding it
(`cofi.pipeline.worker`); consumers (the tracker's audit mapping, llm2 reading llm1 and
stt) read results as these models, never by string keys. Each model mirrors its Avro
record in `schemas/file_event.avsc` field for field (`tests/test_results.py` checks
names, order, optionality and types), with the Avro ranges of `int` and `long`.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

Int32 = Annotated[int, Field(ge=-(2**31), le=2**31 - 1)]
Int64 = Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]


class Record(BaseModel):
    """An Avro record: no unknown fields (fastavro would drop them silently), immutable once read."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def record(self) -> dict[str, Any]:
        """The dict fastavro encodes (field order = Avro order)."""
        return self.model_dump()


class StageResult(Record):
    """Fields every stage result carries; the worker fills them, the engine the rest."""

    worker: str
    engine: str
    durationMs: Int64

    #: auditResult columns this stage's result fills (the tracker writes them when the stage completes)
    AUDIT_COLUMNS: ClassVar[tuple[str, ...]] = ()

    def audit_columns(self) -> dict[str, Any]:
        return {}

    @classmethod
    def passthrough(cls, current_audio: str) -> dict[str, Any]:
        """A valid, empty engine result for the `passthrough` engine (plumbing tests only)."""
        raise NotImplementedError


# ---- denoise, ivr: audio stages (their output audio is what later stages read) ---------------------

class DenoiseResult(StageResult):
    outputPath: str
    sampleRate: Int32 = 16000
    noiseReductionDb: float | None = None

    @classmethod
    def passthrough(cls, current_audio: str) -> dict[str, Any]:
        return {"outputPath": current_audio, "sampleRate": 16000, "noiseReductionDb": None}


class IvrResult(StageResult):
    ivrDetected: bool
    ivrEndSec: float
    dtmfDigits: str = ""
    reason: str = ""
    outputPath: str
    inputPath: str = ""  # the audio the prelude was cut from: stt transcribes its [0, ivrEndSec)

    AUDIT_COLUMNS: ClassVar[tuple[str, ...]] = ("ivrEndSec",)

    def audit_columns(self) -> dict[str, Any]:
        return {"ivrEndSec": self.ivrEndSec}

    @classmethod
    def passthrough(cls, current_audio: str) -> dict[str, Any]:
        return {"ivrDetected": False, "ivrEndSec": 0.0, "dtmfDigits": "", "reason": "passthrough",
                "outputPath": current_audio, "inputPath": current_audio}


# ---- lid, stt ---------------------------------------------------------------------------------------

class LanguageScore(Record):
    language: str
    probability: float


class LidResult(StageResult):
    language: str
    probability: float
    top: list[LanguageScore] = []

    AUDIT_COLUMNS: ClassVar[tuple[str, ...]] = ("language", "languageProbability")

    def audit_columns(self) -> dict[str, Any]:
        return {"language": self.language, "languageProbability": self.probability}

    @classmethod
    def passthrough(cls, current_audio: str) -> dict[str, Any]:
        return {"language": "und", "probability": 0.0, "top": []}


class SpeechParams(Record):
    durationSec: float
    talkTimeAgentSec: float
    talkTimeCustomerSec: float
    talkRatio: float
    silenceRatio: float
    longestSilenceSec: float
    overtalkSec: float
    speechRateWpm: float


class SttResult(StageResult):
    language: str
    transcriptPath: str
    text: str
    words: Int32 = 0
    speech: SpeechParams

    AUDIT_COLUMNS: ClassVar[tuple[str, ...]] = ("transcriptPath", "transcript", "speech")

    def audit_columns(self) -> dict[str, Any]:
        return {"transcriptPath": self.transcriptPath, "transcript": self.text,
                "speech": json.dumps(self.speech.record())}

    @classmethod
    def passthrough(cls, current_audio: str) -> dict[str, Any]:
        return {"language": "und", "transcriptPath": "", "text": "", "words": 0,
                "speech": dict.fromkeys(SpeechParams.model_fields, 0.0)}


# ---- redact (opt-in): PII out of the transcript and the audio ------------------------------------------

class RedactedEntity(Record):
    placeholder: str
    type: str
    mentions: Int32 = 1
    seconds: float = 0.0


class RedactResult(StageResult):
    transcriptPath: str
    text: str
    outputPath: str
    entities: list[RedactedEntity] = []
    policy: list[str] = []
    originalKept: bool = False
    maskedSec: float = 0.0

    #: the same columns as stt: when a batch redacts, the tracker stores these and never stt's (see `audit_owner`)
    AUDIT_COLUMNS: ClassVar[tuple[str, ...]] = ("transcriptPath", "transcript")

    def audit_columns(self) -> dict[str, Any]:
        return {"transcriptPath": self.transcriptPath, "transcript": self.text}

    @classmethod
    def passthrough(cls, current_audio: str) -> dict[str, Any]:
        # plumbing only: nothing was redacted, so nothing of the transcript is passed on either
        return {"transcriptPath": "", "text": "", "outputPath": current_audio, "entities": [], "policy": [],
                "originalKept": False, "maskedSec": 0.0}


# ---- llm1, llm2 -------------------------------------------------------------------------------------

class Answer(Record):
    questionId: str
    answer: str
    evidence: str = ""
    source: str = "llm"
    evidenceLine: Int32 = 0
    check: str = ""


class TradeCheck(Record):
    tradeId: str
    status: str
    evidence: str = ""
    mismatches: list[str] = []
    evidenceLine: Int32 = 0
    source: str = "facts"


class Llm1Result(StageResult):
    model: str
    answers: list[Answer]
    tradeChecks: list[TradeCheck] = []
    promptTokens: Int32 = 0
    completionTokens: Int32 = 0

    AUDIT_COLUMNS: ClassVar[tuple[str, ...]] = ("answers", "tradeChecks")

    def audit_columns(self) -> dict[str, Any]:
        return {"answers": _json(self.answers), "tradeChecks": _json(self.tradeChecks)}

    @classmethod
    def passthrough(cls, current_audio: str) -> dict[str, Any]:
        return {"model": "passthrough", "answers": [], "tradeChecks": [], "promptTokens": 0, "completionTokens": 0}


class NormalizedAnswer(Record):
    questionId: str
    raw: str
    normalized: str | None = None
    points: float = 0.0
    maxPoints: float = 0.0


class RuleResult(Record):
    ruleId: str
    kind: str
    passed: bool
    severity: str = "major"
    reason: str = ""


class Llm2Result(StageResult):
    answers: list[NormalizedAnswer]
    rules: list[RuleResult] = []
    score: float
    verdict: str
    reasons: list[str] = []

    AUDIT_COLUMNS: ClassVar[tuple[str, ...]] = ("normalizedAnswers", "ruleResults", "score", "verdict", "reasons")

    def audit_columns(self) -> dict[str, Any]:
        return {"normalizedAnswers": _json(self.answers), "ruleResults": _json(self.rules), "score": self.score,
                "verdict": self.verdict, "reasons": json.dumps(self.reasons)}

    @classmethod
    def passthrough(cls, current_audio: str) -> dict[str, Any]:
        return {"answers": [], "rules": [], "score": 0.0, "verdict": "pass", "reasons": ["passthrough: not audited"]}


def _json(items: list[Record]) -> str:
    return json.dumps([i.record() for i in items])


def first_errors(exc: ValidationError, most: int = 5) -> str:
    """pydantic's errors as `field.path: message` pairs, the first few (a ResultError's reason)."""
    errs = exc.errors()
    parts = [f"{'.'.join(str(p) for p in e['loc']) or '<result>'}: {e['msg']}" for e in errs[:most]]
    return "; ".join(parts) + (f" (+{len(errs) - most} more)" if len(errs) > most else "")
