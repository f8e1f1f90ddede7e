"""llm1 / llm2 against the REAL local llama.cpp server (Gemma 3 270M, started by the llm_server fixture).

Answers of a 270M model are not asserted to be right (bench/llm.py measures accuracy);
these tests assert that real replies are schema-valid, grounded and Avro-valid.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from llm_events import make_event, with_result

from cofi.audit.evidence import grounded
from cofi.audit.llm_client import LlmClient
from cofi.audit.questionnaire import default_questionnaire
from cofi.pipeline.codec import get_codec
from cofi.pipeline.engine import StageContext
from cofi.settings import Settings
from services.llm1.engine import Llm1Engine
from services.llm2.engine import Llm2Engine

TRANSCRIPT = """agent: Good morning, this is Sarah from Acme Brokerage. This call is recorded.
customer: Hi, I want to buy one hundred shares of Apple.
agent: So a buy of 100 AAPL at 187.50, correct?
customer: Yes, correct."""

ONE_QUESTION = """
questions:
  - {id: recording, text: "Did the agent say the call is recorded?", critical: true, weight: 2}
  - {id: quiet, text: Silence below 0.3, type: speech, speech: {metric: silenceRatio, op: "<", threshold: 0.3}}
"""
TRADE = {"tradeId": "T1", "clientCode": "C1", "symbol": "AAPL", "side": "buy", "quantity": 100.0, "price": 187.5,
         "tradeTime": "2026-01-15T10:05:00Z", "phone": None}


def test_client_talks_llamacpp_dialect_to_the_real_server(llm_settings: Settings) -> None:
    c = LlmClient(llm_settings.model_copy(update={"llm_dialect": "auto"}))
    assert c.dialect() == "llamacpp"
    schema = {"type": "object", "additionalProperties": False, "required": ["answer"],
              "properties": {"answer": {"type": "string", "enum": ["red", "green"]}}}
    res = c.chat_json([{"role": "user", "content": "Is grass red or green? Reply in JSON."}], schema)
    c.close()
    assert res.data["answer"] in ("red", "green")
    assert res.usage.prompt_tokens > 0 and res.usage.completion_tokens > 0


def test_llm1_real_model_output_is_avro_valid(llm_settings: Settings, ctx: Callable[[str], StageContext]) -> None:
    engine = Llm1Engine(llm_settings)
    ev = make_event(TRANSCRIPT, questionnaire=ONE_QUESTION)
    out = engine.process(ev, ctx("llm1")).result
    engine.close()
    rec, quiet = out["answers"]
    assert (rec["questionId"], rec["source"]) == ("recording", "llm") and rec["answer"] in ("yes", "no", "na")
    assert rec["evidence"] == "" or grounded(rec["evidence"], TRANSCRIPT)
    assert (quiet["answer"], quiet["source"]) == ("yes", "speech")
    assert out["model"] == llm_settings.llm_model and out["promptTokens"] > 50 and out["completionTokens"] > 0
    get_codec().encode("FileEvent", with_result(ev, "llm1", out))


def test_llm2_llm_rule_on_real_model(llm_settings: Settings, ctx: Callable[[str], StageContext]) -> None:
    engine = Llm2Engine(llm_settings)
    rules = "- {id: polite, severity: minor, llm: The agent is polite to the customer.}"
    ev = make_event(TRANSCRIPT, questionnaire=ONE_QUESTION, rules=rules)
    out = engine.process(ev, ctx("llm2")).result
    engine.close()
    [rule] = out["rules"]
    assert (rule["ruleId"], rule["kind"], rule["severity"]) == ("polite", "llm", "minor")
    assert rule["reason"].startswith("polite: LLM judged it ")
    assert out["verdict"] in ("pass", "fail", "critical_fail")
    get_codec().encode("FileEvent", with_result(ev, "llm2", out))


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["per_question", "batch"])
def test_full_default_questionnaire_and_trades_then_llm2(llm_settings: Settings, ctx: Callable[[str], StageContext],
                                                        mode: str) -> None:
    llm1 = Llm1Engine(llm_settings, question_mode=mode)
    trades = [TRADE, {**TRADE, "tradeId": "T2", "symbol": "MSFT", "side": "sell"}]
    ev = make_event(TRANSCRIPT, trades=trades, questionnaire=default_questionnaire().to_json())
    out1 = llm1.process(ev, ctx("llm1")).result
    llm1.close()
    q = default_questionnaire()
    assert [a["questionId"] for a in out1["answers"]] == [x.id for x in q.questions]
    for a in out1["answers"]:
        assert a["answer"] in q.get(a["questionId"]).options  # type: ignore[union-attr]
    assert [(c["tradeId"], c["status"] in ("confirmed", "contradicted", "not_mentioned")) for c in out1["tradeChecks"]] \
        == [("T1", True), ("T2", True)]
    ev1 = with_result(ev, "llm1", out1)
    get_codec().encode("FileEvent", ev1)
    out2 = Llm2Engine(llm_settings).process(ev1, ctx("llm2")).result
    assert len(out2["answers"]) == len(q.questions)
    get_codec().encode("FileEvent", with_result(ev1, "llm2", out2))
