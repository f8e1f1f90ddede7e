"""llm2 `rules` engine without the LLM: normalization, scoring, expression rules, verdict, Avro validity."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from cofi.errors import PermanentError
from cofi.pipeline.codec import get_codec
from cofi.pipeline.engine import StageContext
from cofi.pipeline.worker import build_engine as worker_build_engine
from cofi.settings import Settings
from services.llm2.engines import build_engine
from tests.support.llm_events import make_event, with_result

QUESTIONNAIRE = """
pass_score: 70
questions:
  - {id: greeting, text: "Greeted?", weight: 1}
  - {id: recording, text: "Recording disclosed?", weight: 2, critical: true}
  - {id: risk, text: "Risk mentioned?", weight: 1}
  - {id: quiet, text: Silence below 0.3, type: speech, speech: {metric: silenceRatio, op: "<", threshold: 0.3}}
  - {id: trades_ok, text: "Trades confirmed?", type: trade, weight: 2, critical: true}
"""


def llm1(answers: dict[str, str], checks: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"worker": "w", "engine": "llm", "durationMs": 1, "model": "m",
            "answers": [{"questionId": k, "answer": v, "evidence": "", "source": "llm"} for k, v in answers.items()],
            "tradeChecks": checks or [], "promptTokens": 0, "completionTokens": 0}


def run(event: dict[str, Any], ctx: Callable[[str], StageContext]) -> dict[str, Any]:
    engine = build_engine("rules", Settings())
    out = engine.process(event, ctx("llm2")).result
    engine.close()
    get_codec().encode("FileEvent", with_result(event, "llm2", out))  # valid Llm2Result
    return out


def test_all_good_passes_with_full_score(ctx: Callable[[str], StageContext]) -> None:
    ev = make_event("t", questionnaire=QUESTIONNAIRE, llm1=llm1({"greeting": "Yep", "recording": "yes", "risk": "Yes."}))
    out = run(ev, ctx)
    assert out["verdict"] == "pass" and out["score"] == 100.0
    by_id = {a["questionId"]: a for a in out["answers"]}
    assert by_id["greeting"] == {"questionId": "greeting", "raw": "Yep", "normalized": "yes", "points": 1.0,
                                 "maxPoints": 1.0}
    assert by_id["quiet"]["normalized"] == "yes"       # answered here from speech (llm1 did not)
    assert by_id["trades_ok"]["normalized"] == "na" and by_id["trades_ok"]["maxPoints"] == 0.0  # no trades


def test_unknown_option_scores_zero_and_is_reported(ctx: Callable[[str], StageContext]) -> None:
    ev = make_event("t", questionnaire=QUESTIONNAIRE, llm1=llm1({"greeting": "purple", "recording": "yes", "risk": "no"}))
    out = run(ev, ctx)
    g = next(a for a in out["answers"] if a["questionId"] == "greeting")
    assert g["normalized"] is None and g["points"] == 0.0 and g["maxPoints"] == 1.0
    assert out["score"] == pytest.approx(100 * 3 / 5)  # recording 2 + quiet 1 of 5
    assert out["verdict"] == "fail"
    assert any("unrecognised answer greeting" in r for r in out["reasons"])


def test_critical_question_no_is_critical_fail(ctx: Callable[[str], StageContext]) -> None:
    ev = make_event("t", questionnaire=QUESTIONNAIRE, llm1=llm1({"greeting": "yes", "recording": "nope", "risk": "yes"}))
    out = run(ev, ctx)
    assert out["verdict"] == "critical_fail"
    assert out["reasons"][0] == "critical question recording answered 'no'"


def test_contradicted_trade_fails_critical_trade_question(ctx: Callable[[str], StageContext]) -> None:
    checks = [{"tradeId": "T1", "status": "contradicted", "evidence": "sell", "mismatches": ["side"]}]
    ev = make_event("t", questionnaire=QUESTIONNAIRE, llm1=llm1(
        {"greeting": "yes", "recording": "yes", "risk": "yes", "trades_ok": "no"}, checks))
    assert run(ev, ctx)["verdict"] == "critical_fail"


def test_critical_rule_failing_gives_critical_fail(ctx: Callable[[str], StageContext]) -> None:
    rules = """
- {id: slow_talk, severity: minor, when: speech.speechRateWpm < 100}
- {id: no_contradiction, severity: critical, description: No trade may be contradicted, when: trades.contradicted == 0}
- {id: score_ok, severity: major, when: score >= 50}
"""
    checks = [{"tradeId": "T1", "status": "contradicted", "evidence": "", "mismatches": ["price"]}]
    ev = make_event("t", questionnaire=QUESTIONNAIRE, rules=rules,
                    llm1=llm1({"greeting": "yes", "recording": "yes", "risk": "yes", "trades_ok": "yes"}, checks))
    out = run(ev, ctx)
    assert [(r["ruleId"], r["kind"], r["passed"], r["severity"]) for r in out["rules"]] == [
        ("slow_talk", "expression", False, "minor"), ("no_contradiction", "expression", False, "critical"),
        ("score_ok", "expression", True, "major")]
    assert out["verdict"] == "critical_fail"
    assert out["reasons"][0].startswith("critical rule no_contradiction failed: no_contradiction: No trade may be")


def test_major_rule_failing_gives_fail(ctx: Callable[[str], StageContext]) -> None:
    ev = make_event("t", questionnaire=QUESTIONNAIRE, rules="- {id: fast, when: speech.speechRateWpm > 200}",
                    llm1=llm1({"greeting": "yes", "recording": "yes", "risk": "yes"}))
    out = run(ev, ctx)
    assert out["verdict"] == "fail" and out["reasons"][0].startswith("major rule fast failed")


def test_llm1_disabled_scores_speech_questions_only(ctx: Callable[[str], StageContext]) -> None:
    out = run(make_event("t", questionnaire=QUESTIONNAIRE), ctx)
    assert [a["questionId"] for a in out["answers"]] == ["quiet", "trades_ok"]
    assert out["verdict"] == "pass"
    assert any("greeting not answered (llm1 disabled)" in r for r in out["reasons"])


@pytest.mark.parametrize(("field", "value", "message"), [
    ("rules", "- {id: r, when: 'speech.loudness > 1'}", "unknown name speech.loudness"),
    ("rules", "- {id: r, when: 'answers.nosuch == 1'}", "unknown name answers.nosuch"),
    ("questionnaire", "questions: [", "neither YAML nor JSON"),
])
def test_bad_rules_or_questionnaire_in_event_is_permanent(ctx: Callable[[str], StageContext], field: str,
                                                          value: str, message: str) -> None:
    ev = make_event("t", questionnaire=QUESTIONNAIRE)
    ev[field] = value
    with pytest.raises(PermanentError, match=message):
        build_engine("rules", Settings()).process(ev, ctx("llm2"))


def test_build_engine_names() -> None:
    assert worker_build_engine("llm2", Settings(llm2_engine="passthrough")).name == "passthrough"
    assert worker_build_engine("llm2", Settings()).name == "rules"
    with pytest.raises(ValueError, match="unknown LLM2_ENGINE 'nope'"):
        build_engine("nope", Settings())


@pytest.mark.parametrize("language,languages,verdict", [
    ("es", None, "review"), ("en", None, "pass"), ("und", None, "pass"), ("es", "[es, en]", "pass"),
    ("hi", "['*']", "pass")])
def test_a_call_the_questionnaire_cannot_read_is_reviewed_not_judged(
        ctx: Callable[[str], StageContext], language: str, languages: str | None, verdict: str) -> None:
    text = QUESTIONNAIRE if languages is None else f"languages: {languages}\n{QUESTIONNAIRE}"
    ev = make_event("t", questionnaire=text, language=language,
                    llm1=llm1({"greeting": "yes", "recording": "yes", "risk": "yes"}))
    out = run(ev, ctx)
    assert out["verdict"] == verdict
    if verdict == "review":
        assert out["reasons"][0].startswith("not audited: the call is in 'es'; questionnaire default audits en")
        assert len(out["reasons"]) == 1  # not the score or the unanswered questions: they say nothing here


def test_a_call_without_speech_is_reviewed_not_failed(ctx: Callable[[str], StageContext]) -> None:
    """An empty transcript answered every question "no" and failed the agent on the critical ones."""
    ev = make_event("", questionnaire=QUESTIONNAIRE, language="und",
                    llm1=llm1({"greeting": "no", "recording": "no", "risk": "no"}))
    out = run(ev, ctx)
    assert out["verdict"] == "review" and out["reasons"] == [
        "not audited: no speech was transcribed (silence, music or tones only): nothing said can be audited"]
    held = make_event("ivr: This call may be recorded. Please hold.", questionnaire=QUESTIONNAIRE, language="en",
                      llm1=llm1({"greeting": "no", "recording": "yes", "risk": "no"}))
    assert run(held, ctx)["verdict"] == "review"  # hung up on hold: the switch's prompt alone is no speech
    speech_only = "questions:\n  - {id: quiet, text: q, type: speech, speech: {metric: silenceRatio, op: '<', threshold: 0.3}}"
    out = run(make_event("", questionnaire=speech_only, language="und"), ctx)
    assert out["verdict"] == "pass"  # nothing in it depends on words


def test_llm_rules_of_a_call_not_audited_are_not_put_to_the_model(ctx: Callable[[str], StageContext]) -> None:
    """A Spanish call under an English questionnaire: its `llm` rule is not judged (the endpoint here is
    dead: asking would fail the file), its expression rules still are and a failed one is listed."""
    rules = ('{"rules": [{"id": "polite", "severity": "major", "llm": "The agent is polite."},'
             ' {"id": "quiet", "severity": "minor", "when": "speech.silenceRatio < 0.01"}]}')
    ev = make_event("agent: Buenos días.", questionnaire=QUESTIONNAIRE, language="es", rules=rules,
                    llm1=llm1({"greeting": "", "recording": "", "risk": ""}))
    engine = build_engine("rules", Settings(llm_base_url="http://127.0.0.1:9/v1", llm_max_retries=1))
    out = engine.process(ev, ctx("llm2")).result
    engine.close()
    by_id = {r["ruleId"]: r for r in out["rules"]}
    assert by_id["polite"]["passed"] is False and by_id["polite"]["reason"].startswith("polite: not judged: the call")
    assert out["verdict"] == "review"
    assert out["reasons"][1:] == [f"rule quiet failed: {by_id['quiet']['reason']}"]
