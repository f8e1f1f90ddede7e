"""Pure scoring for llm2: normalized answers -> weighted score, and score + rule results -> verdict.

Weights come from the questionnaire. An option missing from a question's `scoring` (na)
takes it out of the score; an unrecognised answer counts as 0 of its weight. Verdict:
- critical_fail: a critical rule failed, or a critical question got a 0-point answer;
- fail: score below the questionnaire's pass_score, a major rule failed, a critical
  question's answer was unrecognised, or nothing could be scored;
- pass otherwise (failed minor rules are listed in reasons only).
The engine replaces it with `review` when the answers say nothing about the call (a language the
questionnaire does not audit, no speech transcribed): services/llm2/engine.py.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cofi.audit.normalize import normalize_answer
from cofi.audit.questionnaire import Question, Questionnaire


@dataclass
class Scored:
    answers: list[dict[str, Any]] = field(default_factory=list)  # NormalizedAnswer records
    normalized: dict[str, str | None] = field(default_factory=dict)
    score: float = 0.0
    scorable: bool = False
    critical_failures: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    unknown_critical: list[str] = field(default_factory=list)


def score_answers(questionnaire: Questionnaire, raw: Mapping[str, str | None]) -> Scored:
    """Normalize each raw answer (absent = not asked, left out of the score) and weigh it."""
    out = Scored()
    total = earned = 0.0
    for q in questionnaire.questions:
        if q.id not in raw:
            continue
        text = raw[q.id] or ""
        norm = normalize_answer(text, q.options)
        points, max_points = _points(q, norm.value)
        out.answers.append({"questionId": q.id, "raw": text, "normalized": norm.value,
                            "points": points, "maxPoints": max_points})
        out.normalized[q.id] = norm.value
        total, earned = total + max_points, earned + points
        if norm.value is None:
            out.unknown.append(f"{q.id}: {norm.reason}")
            if q.critical:
                out.unknown_critical.append(q.id)
        elif q.critical and norm.value in q.scoring and q.scoring[norm.value] == 0:
            out.critical_failures.append(f"critical question {q.id} answered {norm.value!r}")
    out.scorable = total > 0
    out.score = round(100.0 * earned / total, 2) if total > 0 else 0.0
    return out


def _points(q: Question, value: str | None) -> tuple[float, float]:
    if value is None:
        return 0.0, q.weight
    if value not in q.scoring:
        return 0.0, 0.0
    return q.weight * q.scoring[value], q.weight


def verdict(questionnaire: Questionnaire, scored: Scored, rule_results: Sequence[Mapping[str, Any]],
            notes: Sequence[str] = ()) -> tuple[str, list[str]]:
    """(verdict, reasons) from the scored answers and the rule results."""
    reasons = list(scored.critical_failures)
    failed = [r for r in rule_results if not r["passed"]]
    critical_rules = [r for r in failed if r["severity"] == "critical"]
    major_rules = [r for r in failed if r["severity"] == "major"]
    reasons += [f"critical rule {r['ruleId']} failed: {r['reason']}" for r in critical_rules]
    if reasons:
        return "critical_fail", reasons + [f"rule {r['ruleId']} failed: {r['reason']}" for r in failed
                                           if r["severity"] != "critical"] + list(notes)
    fail: list[str] = []
    if not scored.scorable:
        fail.append("no scorable answers")
    elif scored.score < questionnaire.pass_score:
        fail.append(f"score {scored.score:g} below pass score {questionnaire.pass_score:g}")
    fail += [f"critical question {qid} has an unrecognised answer (needs review)" for qid in scored.unknown_critical]
    fail += [f"major rule {r['ruleId']} failed: {r['reason']}" for r in major_rules]
    minor = [f"minor rule {r['ruleId']} failed: {r['reason']}" for r in failed if r["severity"] == "minor"]
    unknown = [f"unrecognised answer {u}" for u in scored.unknown]
    return ("fail" if fail else "pass"), fail + minor + unknown + list(notes)
