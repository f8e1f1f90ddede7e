"""Trade checks on generated calls, through real speech recognition: tickers spoken by company name,
quantities and prices in words, and booked values that differ from the spoken ones.

The calls are spoken by espeak-ng and transcribed by Whisper base, then llm1 checks the booked
trades. Every case here is decided by the deterministic pass (instrument names, spoken numbers), so
the LLM endpoint is a closed port: a request to it would fail the test.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cofi.settings import Settings
from services.llm1.engine import Llm1Engine
from services.stt.engines import build_engine as build_stt
from tests.support.audio import CallFactory, make_ctx, make_event
from tests.support.servers import free_port

TURNS = [("agent", "Good morning, Acme Securities, how can I help?"),
         ("customer", "I would like to buy two hundred and fifty shares of State Bank of India."),
         ("agent", "Two hundred and fifty State Bank of India at six hundred and twelve rupees, shall I place it?"),
         ("customer", "Yes please. And sell fifteen hundred shares of Tata Motors at seven hundred rupees."),
         ("agent", "Done, both orders are placed.")]
MASTER = [{"symbol": "SBIN", "name": "State Bank of India", "aliases": ["SBI"]},
          {"symbol": "TATAMOTORS", "name": "Tata Motors", "aliases": []}]
ONLY_TRADES = "questions:\n  - {id: trades_ok, text: All trades confirmed, type: trade}\n"


def trade(tid: str, symbol: str, side: str, qty: float, price: float) -> dict:
    return {"tradeId": tid, "clientCode": "C12345", "symbol": symbol, "side": side, "quantity": qty,
            "price": price, "tradeTime": "2026-01-15T09:05:00+00:00", "phone": None}


@pytest.fixture(scope="module")
def transcript(settings: Settings, call: CallFactory) -> dict:
    path, _ = call("trades_spoken", ivr=False, turns=TURNS, seed=41, stereo=True)
    stt = build_stt("whisper", settings)
    event = make_event(Path(path))
    event["vocabulary"] = ["State Bank of India", "SBI", "Tata Motors"]
    result = stt.process(event, make_ctx(settings, "stt")).result
    stt.close()
    return result


@pytest.mark.parametrize(("booked", "status", "mismatches"), [
    (trade("T1", "SBIN", "buy", 250, 612), "confirmed", []),
    (trade("T2", "TATAMOTORS", "sell", 1500, 700), "confirmed", []),
    (trade("T3", "SBIN", "buy", 500, 612), "contradicted", ["quantity"]),
    (trade("T4", "SBIN", "buy", 250, 620), "contradicted", ["price"]),
    (trade("T5", "SBIN", "sell", 250, 612), "contradicted", ["side"]),
])
def test_spoken_trades_are_checked_field_by_field(transcript: dict, settings: Settings, booked: dict,
                                                  status: str, mismatches: list[str]) -> None:
    engine = Llm1Engine(settings.model_copy(update={"llm_base_url": f"http://127.0.0.1:{free_port()}/v1",
                                                    "llm_max_retries": 1}))
    ev = make_event(Path("/unused.wav"), {"stt": {"worker": "w", "engine": "whisper", "durationMs": 1, **transcript}})
    other = trade("T0", "TATAMOTORS" if booked["symbol"] == "SBIN" else "SBIN", "buy", 1, 1)
    ev.update(trades=[booked, other], instruments=MASTER, questionnaire=ONLY_TRADES)
    out = engine.process(ev, make_ctx(settings, "llm1")).result
    engine.close()
    check = out["tradeChecks"][0]
    assert (check["status"], check["mismatches"]) == (status, mismatches), transcript["text"]
    assert check["source"] == "facts" and check["evidence"] and out["promptTokens"] == 0
