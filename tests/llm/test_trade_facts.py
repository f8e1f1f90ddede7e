"""Deterministic trade checks: instruments spoken by name, numbers in words, mismatches named (pure)."""

from __future__ import annotations

import pytest

from cofi.audit.instruments import Instrument, default_master, find_form, load_master, words
from cofi.audit.spoken_numbers import numbers_in
from cofi.audit.trade_facts import trade_facts, uncertain_words
from cofi.audit.transcript import split_lines

SBIN = Instrument("SBIN", "State Bank of India", ("SBI",))
TATA = Instrument("TATAMOTORS", "Tata Motors Ltd")
TRADE = {"tradeId": "T1", "symbol": "SBIN", "side": "buy", "quantity": 250.0, "price": 612.5}
CALL = """agent: Good morning, Acme Securities, this call is recorded.
customer: I'd like to buy two hundred and fifty shares of State Bank of India at six hundred twelve point five.
agent: Confirming: buy 250 SBI at 612.50, correct?
customer: Yes."""


@pytest.mark.parametrize(("text", "values", "role"), [
    ("1,500 shares", (1500.0,), "quantity"), ("1,50,000", (150000.0,), ""), ("2.5 lakh", (250000.0,), ""),
    ("fifteen hundred shares", (1500.0,), "quantity"), ("two hundred and fifty", (250.0,), ""),
    ("one point five crore", (15000000.0,), ""), ("a hundred shares", (100.0,), "quantity"),
    ("two fifty", (250.0, 2.5), ""), ("nine ten", (910.0, 9.1), ""), ("six twelve fifty", (612.5,), ""),
    ("two rupees fifty paise", (2.5,), "price"), ("612 rupees and 50 paise", (612.5,), "price"), ("at $50", (50.0,), "price"), ("₹2,500", (2500.0,), "price"),
    ("50k", (50000.0,), ""), ("quantity of 300", (300.0,), "quantity"), ("price of 12.5", (12.5,), "price"),
    ("one lakh fifty thousand", (150000.0,), ""),
    # Whisper writes "six hundred and twelve" as "600 and 12" when the speaker pauses after "hundred"
    ("600 and 12 rupees", (612.0,), "price"), ("1,500 and fifty shares", (1550.0,), "quantity"),
])
def test_spoken_numbers(text: str, values: tuple, role: str) -> None:
    (n,) = numbers_in(text)
    assert n.values == values and n.role == role


def test_ten_one_is_two_numbers() -> None:
    assert [n.values for n in numbers_in("ten one")] == [(10.0,), (1.0,)]
    assert [n.values for n in numbers_in("600 and 120 shares")] == [(600.0,), (120.0,)]
    assert [n.values for n in numbers_in("1500 and 50 paise")] == [(1500.0,), (50.0,)]  # not 1,550: paise follow


def test_names_aliases_and_misspellings_are_found() -> None:
    assert find_form(words("shares of state bank of india please"), ("state", "bank", "india")) == 2
    assert find_form(words("buy infosis now"), ("infosys",)) == 1  # speech recognition's spelling
    assert find_form(words("buy info now"), ("infosys",)) == -1
    assert ("s", "b", "i", "n") in SBIN.spoken_forms() and ("tata", "motors") in TATA.spoken_forms()
    assert ("ms",) not in default_master().get("MS").spoken_forms()  # "Ms Rao" is not Morgan Stanley
    assert default_master().get("SBIN").name == "State Bank of India"
    assert default_master().named_in("sell 50 Tata Motors", exclude=["SBIN"]).symbol == "TATAMOTORS"


def test_spoken_by_name_in_words_is_confirmed() -> None:
    f = trade_facts(split_lines(CALL), TRADE, SBIN)
    assert f.status == "confirmed" and f.found == {"symbol", "side", "quantity", "price"}
    assert f.evidence is not None and f.evidence.number == 2  # the customer's own order, the earliest best line


@pytest.mark.parametrize(("change", "field"), [({"side": "sell"}, "side"), ({"quantity": 500.0}, "quantity"),
                                               ({"price": 620.0}, "price")])
def test_a_field_stated_differently_is_contradicted_with_its_name(change: dict, field: str) -> None:
    f = trade_facts(split_lines(CALL), {**TRADE, **change}, SBIN)
    assert f.status == "contradicted" and f.mismatches == {field}


def test_another_known_instrument_ordered_is_a_symbol_mismatch() -> None:
    call = "customer: Please buy 100 shares of Reliance at 2,500.\nagent: Done."
    f = trade_facts(split_lines(call), TRADE, SBIN, booked=[SBIN], known=default_master())
    assert f.status == "contradicted" and f.mismatches == {"symbol"} and f.evidence.number == 1


def test_an_order_for_a_name_we_do_not_know_is_left_to_the_llm() -> None:
    call = "customer: Please buy 100 shares of Zenith Widgets at 2,500.\nagent: Done."
    f = trade_facts(split_lines(call), TRADE, SBIN, booked=[SBIN], known=default_master())
    assert not f.decided and not f.mismatches and f.evidence.number == 1


def test_an_order_for_another_booked_trade_is_not_a_mismatch() -> None:
    call = "customer: Please buy 100 shares of Tata Motors at 950.\nagent: Done."
    f = trade_facts(split_lines(call), TRADE, SBIN, booked=[SBIN, TATA])
    assert f.status == "not_mentioned" and f.decided


def test_no_order_talk_is_not_mentioned_without_the_llm() -> None:
    f = trade_facts(split_lines("customer: What is my balance?\nagent: Twelve thousand."), TRADE, SBIN)
    assert f.status == "not_mentioned" and f.decided


def test_market_orders_and_fifteen_hundred() -> None:
    call = "customer: buy fifteen hundred Tata Motors at market price.\nagent: done, 1,500 Tata motor shares bought."
    f = trade_facts(split_lines(call), {**TRADE, "symbol": "TATAMOTORS", "quantity": 1500.0, "price": 948.0}, TATA)
    assert f.status == "confirmed"


def test_a_mismatch_heard_with_low_confidence_is_unclear_not_contradicted() -> None:
    call = "customer: Buy 110 shares of SBI at 612.50.\nagent: Buying 110 SBI at 612.50."
    artifact = {"segments": [{"words": [{"word": "110", "probability": 0.31}, {"word": "SBI", "probability": 0.9}]}]}
    f = trade_facts(split_lines(call), {**TRADE, "quantity": 910.0}, SBIN, uncertain_words(artifact))
    assert f.status == "unclear" and f.unclear == {"quantity"} and not f.mismatches
    assert trade_facts(split_lines(call), {**TRADE, "quantity": 910.0}, SBIN).status == "contradicted"


def test_instrument_master_files(tmp_path) -> None:
    p = tmp_path / "master.csv"
    p.write_text("symbol,name,aliases\nsbin,State Bank of India,SBI|State Bank\nTCS,Tata Consultancy Services,\n")
    m = load_master(p)
    assert m.get("SBIN").aliases == ("SBI", "State Bank") and m.get("tcs").name == "Tata Consultancy Services"
    assert m.get("XYZ") == Instrument("XYZ")
    assert m.vocabulary(["SBIN", "TCS"]) == ["State Bank of India", "SBI", "State Bank", "Tata Consultancy Services"]
    (tmp_path / "bad.csv").write_text("name\nfoo\n")
    with pytest.raises(ValueError, match="CSV header lacks symbol"):
        load_master(tmp_path / "bad.csv")
