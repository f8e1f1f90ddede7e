"""The llm1 engine: the batch's questionnaire and trade checks over the transcript.

`llm` questions go to the LLM (cofi.audit.answering: numbered lines, a line number as evidence,
every positive answer checked against its line); `speech` questions are answered from the STT
speech parameters and `trade` questions from the trade checks, without the LLM. Trade checks are
deterministic first (instrument names and aliases, spoken numbers); the LLM judges only what that
pass cannot decide. Thread-safe: the only shared state is the LlmClient, itself thread-safe.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cofi.audit import prompts
from cofi.audit.answering import Answerer, AnswerRecord
from cofi.audit.instruments import Instrument, Master, default_master, master_of
from cofi.audit.llm_client import LlmClient, LlmOutputError, Usage
from cofi.audit.questionnaire import QuestionnaireError, questionnaire_of, speech_answer, trade_answer
from cofi.audit.trade_facts import trade_facts, uncertain_words
from cofi.audit.transcript import Line, conversation, fit, split_lines
from cofi.pipeline.engine import Engine, PermanentError, StageContext, StageOutput
from cofi.pipeline.transcript_source import audit_artifact, audit_transcript, call_language
from cofi.settings import Settings

log = logging.getLogger(__name__)
EVIDENCE_MAX = 300


def stt_of(event: Mapping[str, Any]) -> Mapping[str, Any]:
    stt = (event.get("results") or {}).get("stt")
    if not stt:
        raise PermanentError(f"file {event.get('file')}: llm1 needs the stt result, the event has none")
    return stt


def _transcript_json(event: Mapping[str, Any]) -> dict[str, Any] | None:
    """The transcript artifact the audit reads (redacted when the batch redacts), for its word
    probabilities, when this worker can read it."""
    path = audit_artifact(event)
    try:
        return json.loads(Path(path).read_text(encoding="utf-8")) if path else None
    except (OSError, ValueError):
        return None


def _unchecked_trade(trade: Mapping[str, Any], why: str) -> dict[str, Any]:
    """A trade of a call the questionnaire cannot read: unclear (a person checks it), never not_mentioned."""
    return {"tradeId": trade["tradeId"], "status": "unclear", "mismatches": ["language"],
            "evidence": why[:EVIDENCE_MAX], "evidenceLine": 0, "source": "facts"}


class Llm1Engine(Engine):
    stage = "llm1"
    name = "llm"

    def __init__(self, settings: Settings, client: LlmClient | None = None) -> None:
        self.settings = settings
        self.client = client or LlmClient(settings)

    def health(self) -> tuple[bool, str]:
        """Unhealthy while the LLM endpoint cannot answer (the worker calls this every few seconds)."""
        return self.client.probe()

    def process(self, event: dict[str, Any], ctx: StageContext) -> StageOutput:
        try:
            questionnaire = questionnaire_of(event)
        except QuestionnaireError as exc:
            raise PermanentError(f"file {event.get('file')}: bad questionnaire in event: {exc}") from exc
        stt = stt_of(event)
        lines = split_lines(audit_transcript(event))  # the redacted transcript when the batch redacts
        shown = fit(lines, self.settings.llm_max_transcript_chars)
        usage = Usage()
        trades = list(event.get("trades") or [])
        gap = questionnaire.language_gap(call_language(event))
        if gap is not None:  # no LLM question or trade check can be read in this language: a person reviews it
            answers = {q.id: AnswerRecord("", check=f"review: {gap}") for q in questionnaire.by_type("llm")}
            trade_checks = [_unchecked_trade(t, gap) for t in trades]
        else:
            answerer = Answerer(self.client, lines, usage, max_checks=self.settings.llm_max_checks,
                                prompt_lines=shown)
            answers = answerer.answer_all(questionnaire.by_type("llm"))
            unsure = uncertain_words(_transcript_json(event))
            master = default_master().merged(master_of(event.get("instruments") or []))
            booked = [master.get(str(t["symbol"])) for t in trades]
            said = conversation(lines)  # a trade is the parties' words, never the switch's menu ("to buy, press 2")
            trade_checks = [self._check_trade(said, t, master, booked, unsure, usage) for t in trades]
        for q in questionnaire.by_type("speech"):
            a, ev = speech_answer(q, stt.get("speech"))
            answers[q.id] = AnswerRecord(a, ev, "speech")
        for q in questionnaire.by_type("trade"):
            a, ev = trade_answer(q, trade_checks)
            answers[q.id] = AnswerRecord(a, ev, "trade")
        ordered = [{"questionId": q.id, **answers[q.id].to_record(EVIDENCE_MAX)} for q in questionnaire.questions]
        return StageOutput(result={
            "model": self.settings.llm_model, "answers": ordered, "tradeChecks": trade_checks,
            "promptTokens": usage.prompt_tokens, "completionTokens": usage.completion_tokens,
        })

    def _check_trade(self, lines: list[Line], trade: Mapping[str, Any], master: Master, booked: list[Instrument],
                     unsure: set[str], usage: Usage) -> dict[str, Any]:
        """The deterministic facts decide when they can; otherwise the LLM checks the lines around the
        instrument's mention against the booked order (it may confirm it, never invent a mismatch)."""
        inst = master.get(str(trade["symbol"]))
        facts = trade_facts(lines, trade, inst, unsure, booked, known=master)
        status, line, source = facts.status, facts.evidence, "facts"
        if not facts.decided and facts.evidence is not None:
            window = [ln for ln in lines if facts.evidence.number - 1 <= ln.number <= facts.evidence.number + 2]
            names = [n for n in (inst.name, *inst.aliases) if n]
            try:
                res = self.client.chat(prompts.trade_check_messages(window, trade, names), prompts.CHECK_FORMAT)
            except LlmOutputError as exc:
                usage.add(exc.usage)
                log.warning("trade %s: %s; the transcript facts alone decide", trade["tradeId"], exc)
            else:
                usage.add(res.usage)
                source = "llm"
                status = "confirmed" if res.records[0]["answer"] == "yes" else "not_mentioned"
        return {"tradeId": trade["tradeId"], "status": status, "mismatches": sorted(facts.mismatches | facts.unclear),
                "evidence": line.quote[:EVIDENCE_MAX] if line else "", "evidenceLine": line.number if line else 0,
                "source": source}

    def close(self) -> None:
        self.client.close()

