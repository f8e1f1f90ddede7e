"""Custom rules: loading (clear errors at submit time) and evaluation with simpleeval (pure)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cofi.audit.questionnaire import default_questionnaire
from cofi.audit.rules import RulesError, RuleSet, evaluate, load_rules, rule_names
from cofi.pipeline.codec import get_codec
from tests.support.llm_events import SPEECH, make_event

RULES_YAML = """
- id: recording
  description: The call recording must be disclosed
  severity: critical
  when: answers.recording_disclosed == "yes"
- id: quiet
  severity: minor
  expression: speech.silenceRatio < 0.3 and speech.longestSilenceSec <= 20
- id: trades_ok
  when: trades.contradicted == 0 and trades.not_mentioned == 0
- id: no_guarantee
  severity: major
  llm: The agent never promises guaranteed profits.
"""


def names(**answers: str | None) -> dict:
    checks = [{"status": "confirmed"}, {"status": "contradicted"}]
    return rule_names(answers, SPEECH, checks, 80.0, "en", {q.id for q in default_questionnaire().questions})


def test_load_yaml_json_and_round_trip(tmp_path: Path) -> None:
    rs = load_rules(RULES_YAML, default_questionnaire())
    assert [(r.id, r.kind, r.severity) for r in rs.rules] == [
        ("recording", "expression", "critical"), ("quiet", "expression", "minor"),
        ("trades_ok", "expression", "major"), ("no_guarantee", "llm", "major")]
    text = rs.to_json()
    assert RuleSet.from_json(text) == rs
    p = tmp_path / "rules.json"
    p.write_text(text)
    assert load_rules(p) == rs
    get_codec().encode("FileEvent", make_event("x", rules=text))
    assert load_rules(None).rules == [] and load_rules("").rules == []


def test_evaluation_over_answers_speech_trades() -> None:
    rs = {r.id: r for r in load_rules(RULES_YAML).rules}
    assert evaluate(rs["recording"], names(recording_disclosed="yes")) == (True, "")
    ok, reason = evaluate(rs["recording"], names(recording_disclosed="no"))
    assert not ok and "The call recording must be disclosed" in reason
    assert evaluate(rs["recording"], names())[0] is False  # unanswered reads as None
    assert evaluate(rs["quiet"], names())[0] is True
    assert evaluate(rs["trades_ok"], names())[0] is False  # one contradicted trade


def test_runtime_error_fails_the_rule_with_the_message() -> None:
    [rule] = load_rules("- {id: r, when: 'answers.greeting > 3'}").rules
    ok, reason = evaluate(rule, names(greeting=None))
    assert not ok and "cannot evaluate" in reason and "TypeError" in reason


@pytest.mark.parametrize(("text", "message"), [
    ("- {id: r, when: 'answers.greeting ==' }", "rule r: syntax error"),
    ("- {id: r, when: 'speech.loudness > 3'}", "rule r: .*unknown name speech.loudness"),
    ("- {id: r, when: 'trades.pending == 0'}", "unknown name trades.pending"),
    ("- {id: r, when: 'answers.greting == \"yes\"'}", "unknown name answers.greting"),
    ("- {id: r, when: '__import__(\"os\")'}", "unknown name '__import__'"),
    ("- {id: r, when: 'open(\"/etc/passwd\")'}", "unknown name 'open'"),
    ("- {id: r, when: 'answers.greeting.upper() == \"YES\"'}", "only answers.<id>"),
    ("- {id: r, when: 'speech == 1'}", "use speech.<name>"),
    ("- {id: r, when: '[x for x in (1,)]'}", "ListComp is not allowed"),
    ("- {id: r}", "exactly one of `when`/`expression` or `llm`"),
    ("- {id: r, when: 'score > 1', llm: 'be nice'}", "exactly one of"),
    ("- {id: r, when: 'score > 1', severity: fatal}", r"rules.0 \(id=r\).severity"),
    ("- {id: r, when: 'score > 1', colour: red}", "colour: Extra inputs are not permitted"),
    ("- {id: r, when: 'score > 1'}\n- {id: r, when: 'score > 2'}", r"duplicate rule ids \['r'\]"),
    ("rules: [", "neither YAML nor JSON"),
    ("42", "expected a list of rules"),
    ("missing.yaml", "expected a list of rules .*got str"),  # text is content, never a path
])
def test_malformed_rule_files_fail_at_load(text: str, message: str) -> None:
    with pytest.raises(RulesError, match=message):
        load_rules(text, default_questionnaire())


def test_any_answer_id_allowed_without_a_questionnaire() -> None:
    rs = load_rules(json.dumps([{"id": "r", "when": "answers.anything == 'yes' and language == 'en' and score >= 70"}]))
    [rule] = rs.rules
    assert (rule.id, rule.kind) == ("r", "expression")
    passing = rule_names({"anything": "yes"}, SPEECH, [], 70.0, "en")
    assert evaluate(rule, passing)[0] is True
    assert evaluate(rule, {**passing, "score": 69.0})[0] is False
    with pytest.raises(RulesError, match="unknown name answers.anything"):  # a questionnaire pins the ids
        load_rules(json.dumps([{"id": "r", "when": "answers.anything == 'yes'"}]), default_questionnaire())
