"""Trade-to-audio mapping and trade file loading (pure, no LLM)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cofi.audit.trades import TradeFileError, load_trades, map_trades
from cofi.pipeline.codec import get_codec
from tests.support.llm_events import make_event as file_event


def trade(tid: str, client: str, at: str, **kw: object) -> dict:
    return {"tradeId": tid, "clientCode": client, "symbol": "AAPL", "side": "buy", "quantity": 100,
            "price": 187.5, "tradeTime": at, **kw}


def call(fid: str, client: str, start: str, phone: str = "") -> dict:
    return {"fileId": fid, "file": f"{fid}.wav", "metadata": {"clientCode": client, "phone": phone, "callStart": start}}


def test_no_trades_leaves_every_call_without_trades() -> None:
    m = map_trades([], [call("f1", "C1", "2026-01-15T10:00:00Z")])
    assert m.by_file == {"f1": []}
    assert m.calls_without_trades == ["f1"] and not m.unmapped_trades and not m.ambiguous


def test_several_trades_on_one_call_and_shape_is_avro_trade() -> None:
    trades = [trade("T1", "C1", "2026-01-15T10:05:00Z"), trade("T2", "C1", "2026-01-15T10:20:00+00:00", side="S"),
              trade("T3", "C2", "2026-01-15T10:05:00Z")]
    m = map_trades(trades, [call("f1", "C1", "2026-01-15T10:00:00Z"), call("f2", "C9", "2026-01-15T10:00:00Z")])
    assert [t["tradeId"] for t in m.by_file["f1"]] == ["T1", "T2"]
    assert m.by_file["f1"][1]["side"] == "sell"
    assert [t["tradeId"] for t in m.unmapped_trades] == ["T3"]
    assert m.calls_without_trades == ["f2"]
    get_codec().encode("FileEvent", file_event(trades=m.by_file["f1"]))  # valid Avro Trade records


def test_trade_matching_two_calls_goes_to_nearest_and_is_reported() -> None:
    calls = [call("early", "C1", "2026-01-15T09:50:00Z"), call("late", "C1", "2026-01-15T10:10:00Z")]
    m = map_trades([trade("T1", "C1", "2026-01-15T10:05:00Z")], calls)
    assert [t["tradeId"] for t in m.by_file["late"]] == ["T1"] and m.by_file["early"] == []
    assert m.ambiguous == [{"tradeId": "T1", "fileId": "late", "candidates": ["late", "early"]}]


def test_window_and_phone_fallback() -> None:
    calls = [call("f1", "", "2026-01-15T10:00:00", phone="+44 20 7946 0000")]
    inside = trade("T1", "OTHER", "2026-01-15T10:29:00Z", phone="020-7946-0000")
    outside = trade("T2", "OTHER", "2026-01-15T10:31:00Z", phone="02079460000")
    m = map_trades([inside, outside], calls, window_minutes=30)
    assert [t["tradeId"] for t in m.by_file["f1"]] == ["T1"]
    assert [t["tradeId"] for t in m.unmapped_trades] == ["T2"]


def test_load_trades_csv_and_json(tmp_path: Path) -> None:
    csv_path = tmp_path / "t.csv"
    csv_path.write_text("tradeId,clientCode,symbol,side,quantity,price,tradeTime,phone\n"
                        "T1,C1,aapl,BUY,100,187.5,2026-01-15T10:05:00Z,\n")
    [t] = load_trades(csv_path)
    assert t == {"tradeId": "T1", "clientCode": "C1", "symbol": "AAPL", "side": "buy", "quantity": 100.0,
                 "price": 187.5, "tradeTime": "2026-01-15T10:05:00Z", "phone": None}
    json_path = tmp_path / "t.json"
    json_path.write_text(json.dumps({"trades": [trade("T9", "C1", "2026-01-15T10:05:00Z")]}))
    assert load_trades(json_path)[0]["tradeId"] == "T9"


@pytest.mark.parametrize(("body", "message"), [
    ("tradeId,clientCode,symbol\nT1,C1,AAPL\n", "CSV header lacks side, quantity, price, tradeTime"),
    ("tradeId,clientCode,symbol,side,quantity,price,tradeTime\nT1,C1,AAPL,hold,1,1,2026-01-15T10:00:00Z\n",
     "line 2: side 'hold' is not buy or sell"),
    ("tradeId,clientCode,symbol,side,quantity,price,tradeTime\nT1,C1,AAPL,buy,lots,1,2026-01-15T10:00:00Z\n",
     "line 2: quantity/price must be numbers"),
    ("tradeId,clientCode,symbol,side,quantity,price,tradeTime\nT1,C1,AAPL,buy,1,1,yesterday\n",
     "line 2: tradeTime 'yesterday' is not ISO 8601"),
    ("tradeId,clientCode,symbol,side,quantity,price,tradeTime\nT1,C1,AAPL,buy,1,1,2026-01-15T10:00:00Z\n"
     "T1,C1,AAPL,buy,1,1,2026-01-15T10:00:00Z\n", "line 3: duplicate tradeId T1"),
    ("tradeId,clientCode,symbol,side,quantity,price,tradeTime\n,C1,AAPL,buy,1,1,2026-01-15T10:00:00Z\n",
     "line 2: missing tradeId"),
])
def test_malformed_trade_rows_fail_clearly(tmp_path: Path, body: str, message: str) -> None:
    p = tmp_path / "t.csv"
    p.write_text(body)
    with pytest.raises(TradeFileError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_trades(p)
