"""Bounded rules: a static budget at submit (length, literal sizes, `**`, repetition, shifts) and an
evaluation in a child process with a time and memory bound, so a costly rule fails alone and the
worker's threads keep running. Rules text is content, never a path."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cofi.audit.questionnaire import default_questionnaire
from cofi.audit.rules import MAX_EXPRESSION_CHARS, BoundedEvaluator, Rule, RulesError, evaluate, load_rules, rule_names
from cofi.ops.cli import app

COSTLY = ["(10**4000000)*(10**4000000)*(10**4000000)>1", "'-'*100000+'1'"]


def names() -> dict:
    qids = {q.id for q in default_questionnaire().questions}
    return rule_names({"greeting": "yes"}, {"silenceRatio": 0.1}, [{"status": "confirmed"}], 80.0, "en", qids)


@pytest.mark.parametrize(("expr", "reason"), [
    (COSTLY[0], "`\\*\\*` needs a literal exponent of at most 16"),
    (COSTLY[1], "repeating text or lists with `\\*` is not allowed"),
    ("score ** score > 1", "literal exponent"),
    ("((score ** 2) ** 2) ** 2 > 1", "more than 2 `\\*\\*`"),
    ("[0] * 10 == score", "repeating text or lists"),
    ("1 << 40 > score", "bit shifts are not allowed"),
    ("score > 10000000000000", "number 1e\\+13 is larger"),
    ("language == '" + "x" * 300 + "'", "text of 300 characters"),
    ("round(score, -1000000) > 1", "round\\(\\) takes a literal number of digits"),
    ("score > 1 and " * 80 + "True", f"characters; at most {MAX_EXPRESSION_CHARS}"),
    ("+".join(["score"] * 150) + " > 1", "syntax nodes; at most 200"),
])
def test_costly_expressions_are_refused_at_load(expr: str, reason: str) -> None:
    with pytest.raises(RulesError, match=reason):
        load_rules([{"id": "r", "when": expr}])


def test_the_two_costly_rules_are_refused_by_cofi_submit(tmp_path: Path) -> None:
    (tmp_path / "a.wav").write_bytes(b"RIFF")
    for i, expr in enumerate(COSTLY):
        rules = tmp_path / f"rules{i}.yaml"
        rules.write_text(f"- id: costly\n  when: \"{expr}\"\n" if "'" in expr else f"- id: costly\n  when: '{expr}'\n")
        result = CliRunner().invoke(app, ["submit", str(tmp_path / "a.wav"), "--rules", str(rules)])
        assert result.exit_code == 2, result.output
        assert "rule costly" in result.output and ("exponent" in result.output or "repeating" in result.output)


def test_ordinary_rules_pass_the_budget_and_evaluate_the_same_bounded() -> None:
    rules = load_rules([{"id": "a", "when": "score ** 2 > 6000 and answers.greeting == 'yes'"},
                        {"id": "b", "when": "speech.silenceRatio < 0.05"},
                        {"id": "c", "when": "answers.greeting > 3"},
                        {"id": "d", "when": "round(max(trades.total, 1) * 1.5, 1) == 1.5"}], default_questionnaire())
    bounded = BoundedEvaluator(timeout_s=10, memory_mb=128)
    try:
        for rule in rules.rules:
            assert bounded.evaluate(rule, names()) == evaluate(rule, names())
        assert [bounded.evaluate(r, names())[0] for r in rules.rules] == [True, False, False, True]
    finally:
        bounded.close()


def test_a_rule_past_the_time_bound_fails_alone_and_other_threads_keep_running() -> None:
    bounded = BoundedEvaluator(timeout_s=2, memory_mb=256)
    ticks: list[int] = []
    stop = threading.Event()

    def heartbeat() -> None:  # stands for the worker's poll loop
        while not stop.wait(0.01):
            ticks.append(1)

    beat = threading.Thread(target=heartbeat)
    try:
        bounded.evaluate(Rule(id="warm", when="1 > 0"), {})
        beat.start()
        ok, reason = bounded.evaluate(Rule(id="costly", when=COSTLY[0]), names())  # past the budget: built directly
        stop.set()
        beat.join()
        assert not ok and "took longer than 2s" in reason
        assert len(ticks) >= 3, "the evaluation must not hold this process's GIL"
        assert bounded.evaluate(Rule(id="next", when="score > 50"), names()) == (True, "")  # a fresh child
    finally:
        stop.set()
        bounded.close()


def test_a_rule_past_the_memory_bound_fails_with_memory_error() -> None:
    bounded = BoundedEvaluator(timeout_s=30, memory_mb=1)
    try:
        ok, reason = bounded.evaluate(Rule(id="big", when="10**4000000 > 1"), {})
        assert not ok and "MemoryError" in reason
        assert bounded.evaluate(Rule(id="small", when="2 > 1"), {}) == (True, "")
    finally:
        bounded.close()


def test_rules_text_is_never_read_as_a_path(tmp_path: Path) -> None:
    secret = tmp_path / "secret.yaml"
    secret.write_text("- {id: leaked, when: 'score > 1'}\n")
    with pytest.raises(RulesError, match="got str") as info:
        load_rules(str(secret))
    assert "leaked" not in str(info.value)
    assert [r.id for r in load_rules(secret).rules] == ["leaked"]  # a Path (the CLI's --rules) is a file
