"""The llm2 `rules` engine: normalizes llm1's answers, evaluates the batch's rules, scores, gives the verdict.

Deterministic except for `llm` rules, which ask the LLM over the transcript; the LLM
client is created only when a batch has such rules (under a lock: the worker may call
`process` from several threads). Speech questions llm1 did not answer (stage disabled)
are answered here from the STT speech parameters.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from cofi.audit import prompts
from cofi.audit.formats import IntField, LinesFormat, WordField
from cofi.audit.llm_client import LlmClient
from cofi.audit.questionnaire import Questionnaire, QuestionnaireError, questionnaire_of, speech_answer, trade_answer
from cofi.audit.rules import BoundedEvaluator, Rule, RulesError, load_rules, rule_names
from cofi.audit.transcript import by_number, conversation, fit, split_lines
from cofi.pipeline.engine import Engine, PermanentError, StageContext, StageOutput
from cofi.pipeline.results import Llm1Result, SttResult
from cofi.pipeline.stages import results_of
from cofi.pipeline.transcript_source import audit_transcript, call_language
from cofi.settings import Settings
from services.llm2.scoring import score_answers, verdict


def _speech(stt: SttResult | None) -> dict[str, float] | None:
    return stt.speech.record() if stt is not None else None


def _trade_checks(llm1: Llm1Result | None) -> list[dict[str, Any]]:
    return [c.record() for c in llm1.tradeChecks] if llm1 is not None else []


def raw_answers(q: Questionnaire, event: Mapping[str, Any]) -> tuple[dict[str, str | None], list[str]]:
    """Raw answer per question id from llm1, filling speech/trade questions llm1 did not answer."""
    results = results_of(event)
    llm1, stt = results.llm1, results.stt
    raw: dict[str, str | None] = {a.questionId: a.answer for a in (llm1.answers if llm1 is not None else [])}
    notes: list[str] = []
    for question in q.questions:
        if question.id in raw:
            continue
        if question.type == "speech":
            raw[question.id] = speech_answer(question, _speech(stt))[0]
        elif question.type == "trade" and llm1 is not None:
            raw[question.id] = trade_answer(question, _trade_checks(llm1))[0]
        elif question.type == "trade" and not event.get("trades"):
            raw[question.id] = trade_answer(question, [])[0]
        else:
            notes.append(f"{question.id} not answered (llm1 {'disabled' if llm1 is None else 'gave no answer'})")
    return raw, notes


def _no_speech(questionnaire: Questionnaire, event: Mapping[str, Any]) -> str | None:
    """Why a call whose transcript is empty is not judged on what was said (a dead or one-sided recording,
    a caller who hung up on hold): every "did the agent say X" would be "no" and fail the agent. The IVR
    prelude's lines are not the call: a caller who hung up on hold heard the prompt and said nothing."""
    if not questionnaire.by_type("llm") or conversation(split_lines(audit_transcript(event))):
        return None
    return "no speech was transcribed (silence, music or tones only): nothing said can be audited"


class Llm2Engine(Engine):
    stage = "llm2"
    name = "rules"
    # stays `slow` (small micro-batches): a batch's `llm` rules make each file an LLM call

    def __init__(self, settings: Settings, client: LlmClient | None = None) -> None:
        self.settings = settings
        self._client = client
        self._lock = threading.Lock()
        self.rules_eval = BoundedEvaluator(settings.rule_eval_timeout_s, settings.rule_eval_memory_mb)

    def _llm(self) -> LlmClient:
        with self._lock:
            if self._client is None:
                self._client = LlmClient(self.settings)
            return self._client

    def process(self, event: dict[str, Any], ctx: StageContext) -> StageOutput:
        where = f"file {event.get('file')}"
        try:
            questionnaire = questionnaire_of(event)
            rules = load_rules(event.get("rules"), questionnaire)
        except (QuestionnaireError, RulesError) as exc:
            raise PermanentError(f"{where}: {exc}") from exc
        raw, notes = raw_answers(questionnaire, event)
        scored = score_answers(questionnaire, raw)
        results = results_of(event)
        stt = results.stt
        language = call_language(event)
        names = rule_names(scored.normalized, _speech(stt), _trade_checks(results.llm1), scored.score, language,
                           {q.id for q in questionnaire.questions})
        gap = questionnaire.language_gap(language) or _no_speech(questionnaire, event)
        rule_results = []
        for rule in rules.rules:
            if rule.when is not None:
                passed, reason = self.rules_eval.evaluate(rule, names)
            elif gap is not None:  # the LLM would judge a transcript it cannot read, or an empty one
                passed, reason = False, f"{rule.id}: not judged: {gap}"
            else:
                passed, reason = self._judge(rule, audit_transcript(event))
            rule_results.append({"ruleId": rule.id, "kind": rule.kind, "passed": passed,
                                 "severity": rule.severity, "reason": reason})
        v, reasons = verdict(questionnaire, scored, rule_results, notes)
        if gap is not None:  # its answers say nothing about the call: neither a pass nor a fail
            v, reasons = "review", [f"not audited: {gap}", *(f"rule {r['ruleId']} failed: {r['reason']}"
                                                               for r in rule_results
                                                               if not r["passed"] and r["kind"] == "expression")]
        return StageOutput(result={"answers": scored.answers, "rules": rule_results, "score": scored.score,
                                   "verdict": v, "reasons": reasons})

    def _judge(self, rule: Rule, text: str) -> tuple[bool, str]:
        """An `llm` rule: the model says whether the call complies and cites a line (quoted as we hold it)."""
        lines = fit(split_lines(text), self.settings.llm_max_transcript_chars)
        if not lines:
            return False, f"{rule.id}: empty transcript, cannot judge {rule.llm!r}"
        fmt = LinesFormat.of([[IntField("line", 0, max(ln.number for ln in lines)),
                               WordField("complies", ("yes", "no"))]], name="rule")
        reply = self._llm().chat(prompts.rule_messages(lines, rule.llm or "", fmt), fmt).records[0]
        ok = reply["complies"] == "yes"
        cited = by_number(lines).get(int(reply["line"]))
        return ok, f"{rule.id}: LLM judged it {'compliant' if ok else 'violated'}" + (
            f" (line {cited.number}: {cited.quote[:160]})" if cited else "")

    def close(self) -> None:
        self.rules_eval.close()
        with self._lock:
            if self._client is not None:
                self._client.close()
