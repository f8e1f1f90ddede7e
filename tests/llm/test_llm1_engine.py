"""llm1 engine: errors without a server, and answers from speech/trade questions (no LLM needed)."""

from __future__ import annotations

import socket
from collections.abc import Callable

import pytest

from cofi.pipeline.codec import get_codec
from cofi.pipeline.engine import PermanentError, StageContext, TransientError
from cofi.settings import Settings
from services.llm1.engines import build_engine
from tests.support.llm_events import make_event, with_result

NO_LLM_QUESTIONS = """
questions:
  - {id: quiet, text: Silence below 0.3, type: speech, speech: {metric: silenceRatio, op: "<", threshold: 0.3}}
  - {id: slow, text: Fewer than 100 words a minute, type: speech, speech: {metric: speechRateWpm, op: "<", threshold: 100}}
  - {id: trades_ok, text: All trades confirmed, type: trade}
"""


def dead_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/v1"


def test_server_down_raises_transient_error(ctx: Callable[[str], StageContext]) -> None:
    url = dead_url()
    engine = build_engine("llm", Settings(llm_base_url=url, llm_max_retries=2, llm_retry_backoff_s=0.01))
    with pytest.raises(TransientError, match=f"LLM endpoint {url} still failing after 2 attempts: ConnectError"):
        engine.process(make_event("agent: hello"), ctx("llm1"))
    engine.close()


def test_speech_and_trade_questions_need_no_llm(ctx: Callable[[str], StageContext]) -> None:
    engine = build_engine("llm", Settings(llm_base_url=dead_url(), llm_dialect="openai"))
    ev = make_event("agent: hello", questionnaire=NO_LLM_QUESTIONS)
    out = engine.process(ev, ctx("llm1")).result
    engine.close()
    assert [(a["questionId"], a["answer"], a["source"]) for a in out["answers"]] == [
        ("quiet", "yes", "speech"), ("slow", "no", "speech"), ("trades_ok", "na", "trade")]
    assert out["tradeChecks"] == [] and out["promptTokens"] == 0
    get_codec().encode("FileEvent", with_result(ev, "llm1", out))


def test_missing_stt_or_bad_questionnaire_is_permanent(ctx: Callable[[str], StageContext]) -> None:
    engine = build_engine("llm", Settings(llm_base_url=dead_url(), llm_dialect="openai"))
    with pytest.raises(PermanentError, match="llm1 needs the stt result"):
        engine.process(make_event(stt=False), ctx("llm1"))
    with pytest.raises(PermanentError, match="bad questionnaire in event: .*duplicate question ids"):
        engine.process(make_event("x", questionnaire="questions: [{id: a, text: x}, {id: a, text: y}]"), ctx("llm1"))
    engine.close()


def test_build_engine_names() -> None:
    assert build_engine("passthrough", Settings()).name == "passthrough"
    with pytest.raises(ValueError, match="unknown LLM1_ENGINE 'gpt'"):
        build_engine("gpt", Settings())


def test_invalid_llm_output_twice_leaves_the_answer_for_review(ctx: Callable[[str], StageContext]) -> None:
    from services.llm2.engines import build_engine as build_llm2
    from tests.support.scripted_server import Scripted, completion

    srv = Scripted([(200, completion("not an answer"))] * 2)
    q = """questions:
  - {id: recording, text: "Recording disclosed?", critical: true, cues: ["record*"]}
  - {id: trades_ok, text: "Trades confirmed?", type: trade}
"""
    trade = {"tradeId": "T1", "clientCode": "C1", "symbol": "AAPL", "side": "buy", "quantity": 100.0,
             "price": 187.5, "tradeTime": "2026-01-15T10:05:00Z", "phone": None}
    ev = make_event("agent: buy 100 AAPL at 187.50, this call is recorded", questionnaire=q, trades=[trade])
    engine = build_engine("llm", Settings(llm_base_url=srv.url, llm_dialect="llamacpp"))
    out = engine.process(ev, ctx("llm1")).result
    engine.close()
    srv.stop()
    rec, trades_ok = out["answers"]
    assert rec["answer"] == "" and rec["check"].startswith("review: the check of line 1 got no valid reply")
    assert out["tradeChecks"][0]["status"] == "confirmed" and out["tradeChecks"][0]["source"] == "facts"
    assert trades_ok["answer"] == "yes" and out["promptTokens"] == 20  # the two tries of one check, no trade LLM
    ev1 = with_result(ev, "llm1", out)
    get_codec().encode("FileEvent", ev1)
    out2 = build_llm2("rules", Settings()).process(ev1, ctx("llm2")).result
    assert out2["verdict"] == "fail"
    assert "critical question recording has an unrecognised answer (needs review)" in out2["reasons"]


def test_a_call_in_a_language_the_questionnaire_does_not_audit_is_left_for_review(
        ctx: Callable[[str], StageContext]) -> None:
    """English cues over a Spanish call matched nothing: every question was a confident "no" and a call that
    disclosed the recording was a critical_fail. Now no LLM is asked (the endpoint is dead here) and
    nothing is answered but what needs no words."""
    engine = build_engine("llm", Settings(llm_base_url=dead_url(), llm_dialect="openai", llm_max_retries=1))
    trade = {"tradeId": "T1", "clientCode": "C1", "symbol": "INFY", "side": "BUY", "quantity": 10.0, "price": 1500.0,
             "tradeTime": "2026-01-15T09:00:00+00:00", "phone": None}
    ev = make_event("agent: Le informo que esta llamada está siendo grabada.", language="es", trades=[trade])
    out = engine.process(ev, ctx("llm1")).result
    engine.close()
    by_id = {a["questionId"]: a for a in out["answers"]}
    for qid in ("greeting", "identity_verified", "recording_disclosed", "order_placed", "agent_rude"):
        assert by_id[qid]["answer"] == "" and by_id[qid]["check"].startswith("review: the call is in 'es'")
    assert by_id["low_silence"]["answer"] == "yes"  # speech parameters need no language
    assert out["tradeChecks"][0]["status"] == "unclear" and by_id["trades_confirmed"]["answer"] == ""
    assert out["promptTokens"] == 0
    get_codec().encode("FileEvent", with_result(ev, "llm1", out))
