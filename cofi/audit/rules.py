"""A batch's custom audit rules: loaded and checked at submit time, evaluated by llm2.

A rule file (YAML or JSON) is a list of rules (or `{rules: [...]}`), each with `id`,
`description`, `severity` (critical | major | minor) and exactly one of
- `when` (alias `expression`): a condition that must hold for the call to pass, over
  `answers.<questionId>` (normalized option or None), `speech.<SpeechParams field>`,
  `trades.total|confirmed|contradicted|not_mentioned`, `score` (0-100) and `language`;
  evaluated with simpleeval, never `eval`;
- `llm`: a natural-language rule the LLM judges over the transcript.
Every name in an expression is checked at load time, so a typo fails the submit, not the batch.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from simpleeval import SimpleEval

from cofi.audit.questionnaire import SPEECH_METRICS, Questionnaire, as_path

TRADE_COUNTS = ("total", "confirmed", "contradicted", "not_mentioned", "unclear")
FUNCTIONS: dict[str, Any] = {"abs": abs, "min": min, "max": max, "len": len, "round": round}
SCALARS = ("score", "language")


class RulesError(ValueError):
    """A rule file that cannot be used: syntax, missing fields, unknown names."""


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    id: str = Field(min_length=1)
    description: str = ""
    severity: Literal["critical", "major", "minor"] = "major"
    when: str | None = Field(None, alias="expression")
    llm: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _both_spellings(cls, data: Any) -> Any:
        if isinstance(data, dict) and "when" in data and "expression" in data:
            raise ValueError("give either `when` or `expression`, not both")
        return data

    @model_validator(mode="after")
    def _one_kind(self) -> Rule:
        if (self.when is None) == (self.llm is None):
            raise ValueError("a rule needs exactly one of `when`/`expression` or `llm`")
        if self.llm is not None and not self.llm.strip():
            raise ValueError("`llm` rule text is empty")
        return self

    @property
    def kind(self) -> str:
        return "expression" if self.when is not None else "llm"


class RuleSet(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rules: list[Rule] = Field(default_factory=list)

    def to_json(self) -> str:
        """The string carried in FileEvent.rules."""
        return json.dumps({"rules": [r.model_dump(exclude_none=True) for r in self.rules]}, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> RuleSet:
        return load_rules(text)


def check_expression(expr: str, question_ids: set[str] | None = None) -> None:
    """Raise RulesError if `expr` is not valid Python syntax or uses a name outside the allowed ones."""
    try:
        tree = ast.parse(expr.strip(), mode="eval")
    except SyntaxError as exc:
        raise RulesError(f"syntax error in {expr!r}: {exc.msg} (col {exc.offset})") from exc
    allowed_attrs: dict[str, set[str] | None] = {
        "answers": question_ids, "speech": set(SPEECH_METRICS), "trades": set(TRADE_COUNTS)}
    parents: dict[int, ast.AST] = {}
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            parents[id(child)] = node
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            if not (isinstance(node.value, ast.Name) and node.value.id in allowed_attrs):
                raise RulesError(f"in {expr!r}: only answers.<id>, speech.<field>, trades.<count> may use a dot")
            known = allowed_attrs[node.value.id]
            if known is not None and node.attr not in known:
                raise RulesError(f"in {expr!r}: unknown name {node.value.id}.{node.attr}; "
                                 f"known: {', '.join(sorted(known))}")
        elif isinstance(node, ast.Name):
            parent = parents.get(id(node))
            if node.id in allowed_attrs:
                if not (isinstance(parent, ast.Attribute) and parent.value is node):
                    raise RulesError(f"in {expr!r}: use {node.id}.<name>, not {node.id} alone")
            elif node.id in FUNCTIONS:
                if not (isinstance(parent, ast.Call) and parent.func is node):
                    raise RulesError(f"in {expr!r}: {node.id} is a function")
            elif node.id not in SCALARS:
                raise RulesError(f"in {expr!r}: unknown name {node.id!r}; allowed: answers.<id>, speech.<field>, "
                                 f"trades.<count>, {', '.join(SCALARS)}, functions {', '.join(FUNCTIONS)}")
        elif isinstance(node, ast.Subscript | ast.Lambda | ast.ListComp | ast.DictComp | ast.SetComp
                        | ast.GeneratorExp | ast.NamedExpr | ast.Starred):
            raise RulesError(f"in {expr!r}: {type(node).__name__} is not allowed in a rule")


def load_rules(source: str | Path | Mapping[str, Any] | list[Any] | None,
               questionnaire: Questionnaire | None = None) -> RuleSet:
    """From a path, YAML/JSON text or parsed data; RulesError with the rule id and reason.

    With a questionnaire, `answers.<id>` must name one of its questions."""
    if source is None:
        return RuleSet()
    origin = "rules"
    data: Any
    if isinstance(source, Mapping | list):
        data = source
    else:
        path = as_path(source, RulesError)
        text = path.read_text(encoding="utf-8") if path is not None else str(source)
        origin = str(path) if path is not None else origin
        try:
            data = yaml.safe_load(text) if text.strip() else []
        except yaml.YAMLError as exc:
            raise RulesError(f"{origin}: neither YAML nor JSON: {exc}") from exc
    if data is None:
        data = []
    if isinstance(data, list):
        data = {"rules": data}
    if not isinstance(data, Mapping):
        raise RulesError(f"{origin}: expected a list of rules or {{rules: [...]}}, got {type(data).__name__}")
    try:
        ruleset = RuleSet.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{_loc(data, e['loc'])}: {e['msg']}" for e in exc.errors())
        raise RulesError(f"{origin}: invalid rules: {problems}") from exc
    ids = [r.id for r in ruleset.rules]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise RulesError(f"{origin}: duplicate rule ids {dup}")
    qids = {q.id for q in questionnaire.questions} if questionnaire else None
    for rule in ruleset.rules:
        if rule.when is not None:
            try:
                check_expression(rule.when, qids)
            except RulesError as exc:
                raise RulesError(f"{origin}: rule {rule.id}: {exc}") from exc
    return ruleset


def _loc(data: Any, loc: tuple[Any, ...]) -> str:
    """'rules.2 (id=xyz).severity' instead of a bare index path."""
    parts = [str(p) for p in loc]
    if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
        try:
            rid = data["rules"][loc[1]].get("id")
            parts[1] = f"{loc[1]} (id={rid})"
        except (AttributeError, IndexError, KeyError, TypeError):
            pass
    return ".".join(parts) or "<root>"


def evaluate(rule: Rule, names: Mapping[str, Any]) -> tuple[bool, str]:
    """(passed, reason) of an expression rule over `rule_names(...)`; an error fails the rule with its message."""
    assert rule.when is not None
    evaluator = SimpleEval(functions=dict(FUNCTIONS), names=dict(names))
    try:
        ok = bool(evaluator.eval(rule.when.strip()))
    except Exception as exc:  # a None answer compared with <, a division by zero ...
        return False, f"{rule.id}: cannot evaluate {rule.when!r}: {type(exc).__name__}: {exc}"
    return ok, "" if ok else f"{rule.id}: {rule.description or rule.when} (failed: {rule.when})"


def rule_names(answers: Mapping[str, str | None], speech: Mapping[str, Any] | None,
               trade_checks: list[Mapping[str, Any]], score: float, language: str,
               question_ids: set[str] | None = None) -> dict[str, Any]:
    """The namespace rules see. Unanswered questions read as None."""
    ans = {qid: None for qid in question_ids or ()} | dict(answers)
    statuses = [str(t.get("status")) for t in trade_checks]
    trades = {k: statuses.count(k) for k in TRADE_COUNTS if k != "total"} | {"total": len(statuses)}
    sp = {m: float((speech or {}).get(m, 0.0)) for m in SPEECH_METRICS}
    return {"answers": _Namespace(**ans), "speech": SimpleNamespace(**sp), "trades": SimpleNamespace(**trades),
            "score": score, "language": language}


class _Namespace(SimpleNamespace):
    """answers.<id> for any id: a question this call did not answer reads as None."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return None
