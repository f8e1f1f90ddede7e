"""Answer normalization: synonyms, free text, numbers in words, unknown answers (pure)."""

from __future__ import annotations

import pytest

from cofi.audit.normalize import normalize_answer, words_to_number

YNN = ["yes", "no", "na"]


@pytest.mark.parametrize(("raw", "expected"), [
    ("yes", "yes"), ("YES", "yes"), ("Yep", "yes"), ("affirmative", "yes"), ("Yes, she did.", "yes"),
    ("yeah the agent greeted", "yes"), ("No.", "no"), ("nope", "no"), ("Didn't", "no"), ("did not mention it", "no"),
    ("Not applicable", "na"), ("N/A", "na"), ("n/a - no trade", "na"), ("no trades in this call", "na"),
])
def test_yes_no_na_synonyms(raw: str, expected: str) -> None:
    assert normalize_answer(raw, YNN).value == expected


def test_returns_the_option_as_written() -> None:
    assert normalize_answer("n/a", ["Yes", "No", "N/A"]).value == "N/A"


@pytest.mark.parametrize(("raw", "expected"), [("three", "3"), ("3", "3"), ("Twenty-five", "25"), ("five", None)])
def test_numbers_in_words(raw: str, expected: str | None) -> None:
    assert normalize_answer(raw, ["1", "2", "3", "25"]).value == expected


def test_words_to_number() -> None:
    assert words_to_number("two hundred and five") == 205
    assert words_to_number("forty two") == 42
    assert words_to_number("lots") is None


@pytest.mark.parametrize("raw", ["purple", "maybe", "not sure", "", None])
def test_unknown_option_is_none_with_a_reason(raw: str | None) -> None:
    n = normalize_answer(raw, YNN)
    assert n.value is None
    assert n.reason


def test_custom_options_first_word() -> None:
    assert normalize_answer("Partially, the agent skipped the price", ["full", "partially", "none"]).value == "partially"
