"""The llm1 engine: answers the batch's questionnaire over the transcript and checks mapped trades.

`llm` questions go to the LLM (JSON-schema output constrained to the canonical options);
`speech` questions are answered from the STT speech parameters and `trade` questions from
the trade checks, without the LLM. Trade checks ask the LLM and cross-check its verdict
against the fields the transcript really states (`trade_facts`). Thread-safe: the only
shared state is the LlmClient, which is itself thread-safe and bounds requests in flight.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from cofi.audit import prompts
from cofi.audit.evidence import evidence_for, grounded
from cofi.audit.llm_client import ChatResult, LlmClient, LlmOutputError, Usage
from cofi.audit.questionnaire import Question, QuestionnaireError, questionnaire_of, speech_answer, trade_answer
from cofi.audit.trade_facts import combine, trade_facts
from cofi.pipeline.engine import Engine, PermanentError, StageContext, StageOutput
from cofi.pipeline.transcript_source import audit_transcript
from cofi.settings import Settings

log = logging.getLogger(__name__)
QUESTION_MODES = ("per_question", "batch")


def stt_of(event: Mapping[str, Any]) -> Mapping[str, Any]:
    stt = (event.get("results") or {}).get("stt")
    if not stt:
        raise PermanentError(f"file {event.get('file')}: llm1 needs the stt result, the event has none")
    return stt


def unanswered(exc: LlmOutputError) -> dict[str, str]:
    """An answer llm2 will score as unrecognised (needs review) instead of failing the whole file."""
    return {"answer": "", "evidence": f"invalid LLM output: {exc}"[:prompts.EVIDENCE_MAX], "source": "llm"}


def empty_answer(q: Question) -> str:
    return "no" if "no" in q.options else q.options[-1]


class Llm1Engine(Engine):
    stage = "llm1"
    name = "llm"

    def __init__(self, settings: Settings, client: LlmClient | None = None, question_mode: str | None = None) -> None:
        question_mode = question_mode or settings.llm1_question_mode
        if question_mode not in QUESTION_MODES:
            raise ValueError(f"question_mode {question_mode!r}; expected one of {QUESTION_MODES}")
        self.settings = settings
        self.client = client or LlmClient(settings)
        self.question_mode = question_mode

    def process(self, event: dict[str, Any], ctx: StageContext) -> StageOutput:
        try:
            questionnaire = questionnaire_of(event)
        except QuestionnaireError as exc:
            raise PermanentError(f"file {event.get('file')}: bad questionnaire in event: {exc}") from exc
        stt = stt_of(event)
        full_text = audit_transcript(event)  # the redacted transcript when the batch redacts
        transcript = prompts.cut_transcript(full_text, self.settings.llm_max_transcript_chars)
        usage = Usage()
        answers: dict[str, dict[str, str]] = {}
        llm_questions = questionnaire.by_type("llm")
        if not transcript:
            for q in llm_questions:
                answers[q.id] = {"answer": empty_answer(q), "evidence": "(empty transcript)", "source": "llm"}
        elif self.question_mode == "batch" and llm_questions:
            try:
                res = self.client.chat_json(prompts.batch_messages(transcript, llm_questions),
                                            prompts.batch_schema(llm_questions), name="answers")
            except LlmOutputError as exc:
                usage.add(exc.usage)
                for q in llm_questions:
                    answers[q.id] = unanswered(exc)
            else:
                usage.add(res.usage)
                for q in llm_questions:
                    answers[q.id] = self._answer(q, res.data[q.id], transcript)
        else:
            for q in llm_questions:
                try:
                    res = self.client.chat_json(prompts.question_messages(transcript, q), prompts.answer_schema(q),
                                                name="answer")
                except LlmOutputError as exc:
                    usage.add(exc.usage)
                    answers[q.id] = unanswered(exc)
                    continue
                usage.add(res.usage)
                answers[q.id] = self._answer(q, res.data, transcript)
        trade_checks = [self._check_trade(transcript, full_text, t, usage) for t in event.get("trades") or []]
        for q in questionnaire.by_type("speech"):
            a, ev = speech_answer(q, stt.get("speech"))
            answers[q.id] = {"answer": a, "evidence": ev, "source": "speech"}
        for q in questionnaire.by_type("trade"):
            a, ev = trade_answer(q, trade_checks)
            answers[q.id] = {"answer": a, "evidence": ev, "source": "trade"}
        ordered = [{"questionId": q.id, "answer": answers[q.id]["answer"],
                    "evidence": str(answers[q.id].get("evidence", ""))[:prompts.EVIDENCE_MAX],
                    "source": answers[q.id]["source"]} for q in questionnaire.questions]
        return StageOutput(result={
            "model": self.settings.llm_model, "answers": ordered, "tradeChecks": trade_checks,
            "promptTokens": usage.prompt_tokens, "completionTokens": usage.completion_tokens,
        })

    @staticmethod
    def _answer(q: Question, data: Mapping[str, Any], transcript: str) -> dict[str, str]:
        return {"answer": str(data["answer"]), "evidence": evidence_for(str(data.get("evidence", "")), transcript,
                                                                        f"{q.text} {q.hint}"), "source": "llm"}

    def _check_trade(self, transcript: str, full_text: str, trade: Mapping[str, Any], usage: Usage) -> dict[str, Any]:
        """LLM verdict over the (cut) transcript, cross-checked with facts from the full one."""
        if not transcript:
            return {"tradeId": trade["tradeId"], "status": "not_mentioned", "evidence": "(empty transcript)",
                    "mismatches": []}
        facts = trade_facts(full_text, trade)
        try:
            res = self.client.chat_json(prompts.trade_messages(transcript, trade), prompts.trade_schema(),
                                        name="trade")
        except LlmOutputError as exc:  # the facts alone still decide
            usage.add(exc.usage)
            log.warning("trade %s: %s; using the transcript facts only", trade["tradeId"], exc)
            res = ChatResult({"status": "not_mentioned", "evidence": "", "mismatches": []})
        usage.add(res.usage)
        status, mismatches = combine(str(res.data["status"]), list(res.data["mismatches"]), facts)
        quote = str(res.data["evidence"])
        return {"tradeId": trade["tradeId"], "status": status, "mismatches": mismatches,
                "evidence": quote[:prompts.EVIDENCE_MAX] if grounded(quote, full_text) else facts.evidence}

    def close(self) -> None:
        self.client.close()
