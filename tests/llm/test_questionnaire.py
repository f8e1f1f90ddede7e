"""Questionnaire loading and validation (pure)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cofi.audit.questionnaire import (
    Questionnaire,
    QuestionnaireError,
    default_questionnaire,
    load_questionnaire,
    speech_answer,
)
from cofi.pipeline.codec import get_codec
from tests.support.llm_events import make_event


def test_default_questionnaire_covers_the_call_audit() -> None:
    q = default_questionnaire()
    ids = {x.id for x in q.questions}
    assert {"greeting", "identity_verified", "recording_disclosed", "trade_read_back", "risk_disclosed",
            "agent_rude", "trades_confirmed", "low_silence"} <= ids
    assert {x.type for x in q.questions} == {"llm", "speech", "trade"}
    by_id = {x.id: x for x in q.questions}
    assert by_id["trade_read_back"].requires == by_id["risk_disclosed"].requires == "order_placed"
    assert by_id["order_placed"].weight == 0  # a precondition, not scored
    assert all(x.cues for x in q.by_type("llm"))  # every LLM question says which lines to check


def test_json_round_trip_and_event_carries_it() -> None:
    q = default_questionnaire()
    text = q.to_json()
    assert Questionnaire.from_json(text) == q
    get_codec().encode("FileEvent", make_event("hi", questionnaire=text))


def test_yaml_text_json_text_and_files(tmp_path: Path) -> None:
    yaml_text = "questions:\n  - id: greet\n    text: Greeted?\n"
    assert load_questionnaire(yaml_text).questions[0].options == ["yes", "no", "na"]
    assert load_questionnaire(json.dumps({"questions": [{"id": "greet", "text": "Greeted?"}]})).questions[0].id == "greet"
    p = tmp_path / "q.yaml"
    p.write_text(yaml_text)
    assert load_questionnaire(p).questions[0].id == "greet"
    with pytest.raises(QuestionnaireError, match="expected a mapping"):  # text is content, never a path to read
        load_questionnaire(str(p))
    with pytest.raises(QuestionnaireError, match="file not found"):
        load_questionnaire(tmp_path / "absent.yaml")


@pytest.mark.parametrize(("text", "message"), [
    ("questions: [", "neither YAML nor JSON"),
    ("42", "expected a mapping with `questions`"),
    ("questions: []", "questions: List should have at least 1 item"),
    ("questions:\n  - {id: a, text: x}\n  - {id: a, text: y}\n", "duplicate question ids: \\['a'\\]"),
    ("questions:\n  - {id: a, text: x, type: speech}\n", "type speech needs a `speech"),
    ("questions:\n  - {id: a, text: x, scoring: {maybe: 1}}\n", "scoring names options not in options"),
    ("questions:\n  - {id: 'bad id', text: x}\n", "questions.0.id: String should match pattern"),
    ("questions:\n  - {id: a, text: x, type: speech, speech: {metric: loudness, op: '<', threshold: 1}}\n",
     "questions.0.speech.metric"),
    ("no_such_file.yaml", "expected a mapping with `questions`, got str"),
])
def test_malformed_questionnaire_raises_one_clear_error(text: str, message: str) -> None:
    with pytest.raises(QuestionnaireError, match=message):
        load_questionnaire(text)


def test_speech_question_answered_from_parameters() -> None:
    q = next(x for x in default_questionnaire().questions if x.id == "low_silence")
    assert speech_answer(q, {"silenceRatio": 0.1}) == ("yes", "silenceRatio=0.1 < 0.3")
    assert speech_answer(q, {"silenceRatio": 0.5})[0] == "no"
    assert speech_answer(q, None)[0] == "na"


@pytest.mark.parametrize("options,expected", [(["yes", "no", "na"], "na"), (["yes", "no"], "")])
def test_a_speaker_metric_of_a_mono_call_is_not_a_fact(options: list[str], expected: str) -> None:
    """A mono call has no agent or customer channel: its talkRatio 0 is unknown, not "the agent never talked"."""
    q = load_questionnaire({"questions": [{"id": "balanced", "text": "Agent talks less than 70%", "type": "speech",
                                           "options": options,
                                           "speech": {"metric": "talkRatio", "op": "<", "threshold": 0.7}}]}
                           ).questions[0]
    mono = {"talkTimeAgentSec": 0.0, "talkTimeCustomerSec": 0.0, "talkRatio": 0.0, "silenceRatio": 0.2}
    answer, evidence = speech_answer(q, mono)
    assert answer == expected and "mono call" in evidence
    stereo = {"talkTimeAgentSec": 20.0, "talkTimeCustomerSec": 5.0, "talkRatio": 0.8, "silenceRatio": 0.2}
    assert speech_answer(q, stereo) == ("no", "talkRatio=0.8 < 0.7")
    silence = next(x for x in default_questionnaire().questions if x.id == "low_silence")
    assert speech_answer(silence, mono)[0] == "yes"  # what needs no roles is still answered


def test_languages_name_the_calls_a_questionnaire_can_audit() -> None:
    q = default_questionnaire()
    assert q.languages == ["en"] and q.language_gap("en") is None and q.language_gap("und") is None
    assert "the call is in 'fr'" in (q.language_gap("FR") or "")
    assert load_questionnaire({"languages": ["ES", "*"], "questions": [{"id": "a", "text": "x"}]}).language_gap("zh") is None
    with pytest.raises(QuestionnaireError, match="not language codes"):
        load_questionnaire({"languages": ["spanish"], "questions": [{"id": "a", "text": "x"}]})
