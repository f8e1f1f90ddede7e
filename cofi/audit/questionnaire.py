"""The audit questionnaire: what llm1 asks about each call and how llm2 scores the answers.

A questionnaire is written in YAML or JSON and travels in FileEvent.questionnaire as JSON.
Question types:
- `llm`:    answered by the LLM over the transcript, constrained to `options`;
- `speech`: answered from the STT speech parameters (`metric op threshold`), no LLM;
- `trade`:  answered from the trade checks (all confirmed -> yes, none mapped -> na).
`scoring` maps an option to the fraction of `weight` it earns; options missing from it
(typically `na`) take the question out of the score. A `critical` question answered with
an option worth 0 makes the call a critical fail.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

SPEECH_METRICS = ("durationSec", "talkTimeAgentSec", "talkTimeCustomerSec", "talkRatio", "silenceRatio",
                  "longestSilenceSec", "overtalkSec", "speechRateWpm")
# Known only when the agent and the customer are on channels of their own (a stereo call); a mono call
# reports them as 0, which a threshold would read as a fact ("talkRatio=0 < 0.7": the agent let the customer talk).
ROLE_METRICS = ("talkTimeAgentSec", "talkTimeCustomerSec", "talkRatio", "overtalkSec")
OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq, "!=": operator.ne,
}
DEFAULT_PATH = Path(__file__).parent / "defaults" / "questionnaire.yaml"


class QuestionnaireError(ValueError):
    """A questionnaire that cannot be used (syntax, missing fields, inconsistent options)."""


class SpeechCheck(BaseModel):
    model_config = ConfigDict(extra="forbid")
    metric: Literal[SPEECH_METRICS]  # type: ignore[valid-type]
    op: Literal["<", "<=", ">", ">=", "==", "!="]
    threshold: float

    def holds(self, speech: Mapping[str, Any]) -> bool:
        return OPS[self.op](float(speech[self.metric]), self.threshold)

    def describe(self, speech: Mapping[str, Any]) -> str:
        return f"{self.metric}={float(speech[self.metric]):.3g} {self.op} {self.threshold:g}"


class Question(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="an identifier: rules name it answers.<id>")
    text: str = Field(min_length=1)
    type: Literal["llm", "speech", "trade"] = "llm"
    options: list[str] = Field(default_factory=lambda: ["yes", "no", "na"], min_length=2)
    scoring: dict[str, float] = Field(default_factory=lambda: {"yes": 1.0, "no": 0.0})
    weight: float = Field(1.0, ge=0)
    critical: bool = False
    hint: str = Field("", description="extra guidance for the LLM (what counts as yes)")
    speech: SpeechCheck | None = None
    cues: list[str] = Field(default_factory=list, max_length=200,
                            description="phrases that mark the lines worth checking ('record*' = recorded, recording)")
    speaker: Literal["any", "agent", "customer"] = Field("any", description="whose lines can show a yes")
    prelude: bool = Field(False, description="the IVR prelude's lines (what the switch played before anyone "
                          "answered) can show a yes too: a recording disclosed by the prompt")
    requires: str | None = Field(None, description="id of an earlier question: this one is na unless that is yes")
    context: int = Field(1, ge=0, le=3, description="following lines shown with a checked line (a reply, a confirm)")

    @model_validator(mode="after")
    def _consistent(self) -> Question:
        if len(set(self.options)) != len(self.options):
            raise ValueError(f"question {self.id}: duplicate options {self.options}")
        unknown = set(self.scoring) - set(self.options)
        if unknown:
            raise ValueError(f"question {self.id}: scoring names options not in options: {sorted(unknown)}")
        if any(not 0.0 <= v <= 1.0 for v in self.scoring.values()):
            raise ValueError(f"question {self.id}: scoring values must be fractions in [0, 1]")
        if self.type == "speech" and self.speech is None:
            raise ValueError(f"question {self.id}: type speech needs a `speech: {{metric, op, threshold}}` check")
        if self.type != "speech" and self.speech is not None:
            raise ValueError(f"question {self.id}: `speech` is only for type speech")
        if self.type in ("speech", "trade") and not {"yes", "no"} <= set(self.options):
            raise ValueError(f"question {self.id}: type {self.type} answers yes/no, so options must include them")
        if self.requires is not None and "na" not in self.options:
            raise ValueError(f"question {self.id}: `requires` answers na when it does not apply, so options need na")
        if self.prelude and self.type != "llm":
            raise ValueError(f"question {self.id}: `prelude` is for llm questions (a line of the IVR prompt shows a yes)")
        if any(not c.strip() or len(c) > 80 for c in self.cues):
            raise ValueError(f"question {self.id}: cues must be non-empty phrases of at most 80 characters")
        return self


class Questionnaire(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = "default"
    version: str = "1"
    pass_score: float = Field(70.0, ge=0, le=100, description="score (0-100) at or above which a call passes")
    languages: list[str] = Field(default_factory=lambda: ["en"], min_length=1,
                                 description="languages of the calls it can audit (its questions and cues are "
                                             "written for them; Whisper's codes: en, es, hi...); ['*'] for any")
    questions: list[Question] = Field(min_length=1)

    @field_validator("languages")
    @classmethod
    def _language_codes(cls, v: list[str]) -> list[str]:
        codes = [c.strip().lower() for c in v]
        bad = [c for c in codes if not re.fullmatch(r"\*|[a-z]{2,3}", c)]
        if bad:
            raise ValueError(f"languages: {bad} are not language codes (en, es, hi, ...) or '*'")
        return codes

    def language_gap(self, language: str | None) -> str | None:
        """Why a call in `language` cannot be audited with this questionnaire, or None when it can.

        Its cues and questions are written in its languages: over a call in another one no cue matches
        and every "did the agent say X" would be a confident "no" (a Spanish call that disclosed the
        recording was a critical_fail). An undetermined language (no speech) is audited as it is."""
        lang = (language or "").strip().lower()
        if "*" in self.languages or lang in ("", "und") or lang in self.languages:
            return None
        return (f"the call is in {lang!r}; questionnaire {self.id} audits {', '.join(self.languages)} calls "
                f"(its `languages`): a person reviews it, or `cofi reaudit` gives the batch a questionnaire that "
                f"lists {lang!r} (with cues in it)")

    @model_validator(mode="after")
    def _unique_ids(self) -> Questionnaire:
        ids = [q.id for q in self.questions]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"duplicate question ids: {dup}")
        earlier: set[str] = set()
        for q in self.questions:
            if q.requires is not None and q.requires not in earlier:
                raise ValueError(f"question {q.id}: requires {q.requires!r}, which is not an earlier question")
            earlier.add(q.id)
        return self

    def by_type(self, kind: str) -> list[Question]:
        return [q for q in self.questions if q.type == kind]

    def get(self, qid: str) -> Question | None:
        return next((q for q in self.questions if q.id == qid), None)

    def to_json(self) -> str:
        """The compact string carried in FileEvent.questionnaire."""
        return self.model_dump_json(exclude_none=True)

    @classmethod
    def from_json(cls, text: str) -> Questionnaire:
        return load_questionnaire(text)


def _parse_text(text: str) -> Any:
    try:
        return yaml.safe_load(text)  # YAML is a superset of JSON
    except yaml.YAMLError as exc:
        raise QuestionnaireError(f"questionnaire is neither YAML nor JSON: {exc}") from exc


def load_questionnaire(source: str | Path | Mapping[str, Any]) -> Questionnaire:
    """From a file (a Path), YAML/JSON text (a str: always content, never read as a path, so an
    event cannot make a stage read a file) or a mapping; QuestionnaireError with the reason."""
    origin = "questionnaire"
    if isinstance(source, Mapping):
        data: Any = dict(source)
    elif isinstance(source, Path):
        if not source.is_file():
            raise QuestionnaireError(f"file not found: {source}")
        origin = str(source)
        data = _parse_text(source.read_text(encoding="utf-8"))
    else:
        data = _parse_text(source)
    if isinstance(data, list):
        data = {"questions": data}
    if not isinstance(data, dict):
        raise QuestionnaireError(f"{origin}: expected a mapping with `questions`, got {type(data).__name__}")
    try:
        return Questionnaire.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in exc.errors())
        raise QuestionnaireError(f"{origin}: invalid questionnaire: {problems}") from exc


@lru_cache(maxsize=1)
def default_questionnaire() -> Questionnaire:
    """The call-audit questionnaire shipped with cofi (used when a batch brings none)."""
    return load_questionnaire(DEFAULT_PATH)


def questionnaire_of(event: Mapping[str, Any]) -> Questionnaire:
    """The batch's questionnaire from a FileEvent, or the default one."""
    raw = event.get("questionnaire")
    return load_questionnaire(raw) if raw else default_questionnaire()


def speech_answer(question: Question, speech: Mapping[str, Any] | None) -> tuple[str, str]:
    """(answer, evidence) of a `speech` question from STT speech parameters; na without them."""
    assert question.speech is not None, f"{question.id} is not a speech question"
    if not speech or question.speech.metric not in speech:
        return ("na" if "na" in question.options else "no"), "no speech parameters"
    if question.speech.metric in ROLE_METRICS and not has_roles(speech):
        why = f"{question.speech.metric} unknown: no separate agent and customer channels (a mono call)"
        return ("na", why) if "na" in question.options else ("", f"needs review, {why}")
    holds = question.speech.holds(speech)
    return ("yes" if holds else "no"), question.speech.describe(speech)


def has_roles(speech: Mapping[str, Any]) -> bool:
    """Whether the call's talk was split by speaker: some talk time on the agent's or the customer's channel."""
    return float(speech.get("talkTimeAgentSec") or 0) + float(speech.get("talkTimeCustomerSec") or 0) > 0


def trade_answer(question: Question, trade_checks: list[Mapping[str, Any]]) -> tuple[str, str]:
    """(answer, evidence) of a `trade` question: yes when every mapped trade was confirmed."""
    if not trade_checks:
        return ("na" if "na" in question.options else "yes"), "no trades mapped to this call"
    bad = [f"{t['tradeId']}={t['status']}" for t in trade_checks if t["status"] not in ("confirmed", "unclear")]
    if bad:
        return "no", "not confirmed: " + ", ".join(bad)
    unclear = [f"{t['tradeId']} ({', '.join(t.get('mismatches') or [])})" for t in trade_checks if t["status"] == "unclear"]
    if unclear:  # a field heard with low confidence: a person listens, the verdict waits
        return "", "needs review, heard unclearly: " + ", ".join(unclear)
    return "yes", f"{len(trade_checks)} trade(s) confirmed"
