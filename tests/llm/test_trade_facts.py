"""Deterministic trade facts and how they overrule or complete the LLM's trade verdict (pure)."""

from __future__ import annotations

import pytest

from cofi.audit.trade_facts import Facts, combine, numbers_in, trade_facts

TRADE = {"tradeId": "T1", "symbol": "AAPL", "side": "buy", "quantity": 100.0, "price": 187.5}
CALL = """agent: Good morning, Acme Brokerage, this call is recorded.
customer: I'd like to buy one hundred shares of AAPL.
agent: A buy of 100 AAPL at 187.50, correct?
customer: Yes."""


def test_numbers_in_digits_and_words() -> None:
    assert [v for v, _ in numbers_in("buy 1,000 at 12.5 or two thousand five hundred and ten, one hundred")] == [
        1000, 12.5, 2510, 100]


def test_all_fields_stated_is_confirmed() -> None:
    f = trade_facts(CALL, TRADE)
    assert f.found == {"symbol", "side", "quantity", "price"} and f.status == "confirmed"
    assert f.evidence == "agent: A buy of 100 AAPL at 187.50, correct?"


@pytest.mark.parametrize(("change", "mismatch"), [({"side": "sell"}, "side"), ({"quantity": 250.0}, "quantity")])
def test_a_field_stated_differently_is_contradicted(change: dict, mismatch: str) -> None:
    f = trade_facts(CALL, {**TRADE, **change})
    assert f.status == "contradicted" and f.mismatches == {mismatch}


def test_other_symbol_is_not_mentioned() -> None:
    f = trade_facts(CALL, {**TRADE, "symbol": "MSFT"})
    assert f.status == "not_mentioned" and "symbol" not in f.found


def test_combine_facts_overrule_a_parroting_llm() -> None:
    assert combine("confirmed", [], Facts(found={"side"})) == ("not_mentioned", [])
    assert combine("confirmed", ["price"], Facts(found={"symbol"}, mismatches={"side"})) == ("contradicted", ["side"])
    assert combine("not_mentioned", [], Facts(found={"symbol", "side", "quantity", "price"})) == ("confirmed", [])
    assert combine("contradicted", ["price", "side"], Facts(found={"side"})) == ("contradicted", ["price"])
    assert combine("contradicted", ["side"], Facts(found={"side"})) == ("not_mentioned", [])
