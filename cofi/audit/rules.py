"""A batch's custom audit rules: loaded and checked at submit time, evaluated by llm2.

A rule file (YAML or JSON) is a list of rules (or `{rules: [...]}`), each with `id`,
`description`, `severity` (critical | major | minor) and exactly one of
- `when` (alias `expression`): a condition that must hold for the call to pass, over
  `answers.<questionId>` (normalized option or None), `speech.<SpeechParams field>`,
  `trades.total|confirmed|contradicted|not_mentioned`, `score` (0-100) and `language`;
  evaluated with simpleeval, never `eval`. The speaker metrics (talkTime*, talkRatio, overtalkSec) read 0 on
  a mono call (no agent or customer channel): guard them with `speech.talkTimeAgentSec > 0 and ...`;
- `llm`: a natural-language rule the LLM judges over the transcript.
Every name in an expression is checked at load time, so a typo fails the submit, not the batch.
"""

from __future__ import annotations

import ast
import json
import os
import select
import subprocess
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from cofi.audit.questionnaire import SPEECH_METRICS, Questionnaire

TRADE_COUNTS = ("total", "confirmed", "contradicted", "not_mentioned", "unclear")
# The budget of one expression, checked at submit: what a rule may cost is bounded before it runs.
MAX_EXPRESSION_CHARS = 1000
MAX_NODES = 200
MAX_NUMBER = 10**12  # largest literal number
MAX_STRING = 256  # longest literal string
MAX_EXPONENT = 16  # `x ** n`: n a literal number, at most this
MAX_POWERS = 2
MAX_ROUND_DIGITS = 12
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
    """Raise RulesError if `expr` is not valid Python syntax, uses a name outside the allowed ones or is
    over the budget (length, size, literal sizes, powers, repetition, shifts)."""
    if len(expr) > MAX_EXPRESSION_CHARS:
        raise RulesError(f"expression of {len(expr)} characters; at most {MAX_EXPRESSION_CHARS}")
    try:
        tree = ast.parse(expr.strip(), mode="eval")
    except SyntaxError as exc:
        raise RulesError(f"syntax error in {expr!r}: {exc.msg} (col {exc.offset})") from exc
    except (MemoryError, RecursionError) as exc:
        raise RulesError(f"expression too deeply nested: {type(exc).__name__}") from exc
    check_budget(expr, tree)
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


def _literal(node: ast.AST) -> Any:
    """The value of a literal number (with its sign) or string; None for anything else."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd) and isinstance(node.operand, ast.Constant):
        node = node.operand
    return node.value if isinstance(node, ast.Constant) else None


def check_budget(expr: str, tree: ast.AST) -> None:
    """RulesError when `expr` could cost more than a rule may: every operand of `**` and `*` is bounded
    here, because Python's big integers and string repetition make one line cost seconds or gigabytes."""
    nodes = list(ast.walk(tree))
    if len(nodes) > MAX_NODES:
        raise RulesError(f"in {expr[:80]!r}: {len(nodes)} syntax nodes; at most {MAX_NODES}")
    powers = 0
    for node in nodes:
        if isinstance(node, ast.Constant):
            value = node.value
            if isinstance(value, bool) or value is None:
                continue
            if isinstance(value, int | float) and abs(value) > MAX_NUMBER:
                raise RulesError(f"in {expr[:80]!r}: number {value:.3g} is larger than {MAX_NUMBER:.0e}")
            if isinstance(value, str | bytes) and len(value) > MAX_STRING:
                raise RulesError(f"in {expr[:80]!r}: text of {len(value)} characters; at most {MAX_STRING}")
            if isinstance(value, complex):
                raise RulesError(f"in {expr[:80]!r}: complex numbers are not allowed")
        elif isinstance(node, ast.BinOp):
            if isinstance(node.op, ast.LShift | ast.RShift):
                raise RulesError(f"in {expr[:80]!r}: bit shifts are not allowed in a rule")
            if isinstance(node.op, ast.Pow):
                powers += 1
                exponent = _literal(node.right)
                if not isinstance(exponent, int | float) or isinstance(exponent, bool) or abs(exponent) > MAX_EXPONENT:
                    raise RulesError(f"in {expr[:80]!r}: `**` needs a literal exponent of at most {MAX_EXPONENT}")
                if powers > MAX_POWERS:
                    raise RulesError(f"in {expr[:80]!r}: more than {MAX_POWERS} `**`")
            if isinstance(node.op, ast.Mult) and any(isinstance(_literal(side), str | bytes)
                                                     or isinstance(side, ast.List | ast.Tuple | ast.JoinedStr)
                                                     for side in (node.left, node.right)):
                raise RulesError(f"in {expr[:80]!r}: repeating text or lists with `*` is not allowed in a rule")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "round" \
                and len(node.args) > 1:
            digits = _literal(node.args[1])
            if not isinstance(digits, int) or abs(digits) > MAX_ROUND_DIGITS:
                raise RulesError(f"in {expr[:80]!r}: round() takes a literal number of digits up to {MAX_ROUND_DIGITS}")


def load_rules(source: str | Path | Mapping[str, Any] | list[Any] | None,
               questionnaire: Questionnaire | None = None) -> RuleSet:
    """From a file (a `Path`), YAML/JSON text (a `str`: content, never read as a path) or parsed data;
    RulesError with the rule id and reason.

    With a questionnaire, `answers.<id>` must name one of its questions."""
    if source is None:
        return RuleSet()
    origin = "rules"
    data: Any
    if isinstance(source, Mapping | list):
        data = source
    else:  # a Path is a file to read (the CLI's --rules); a str is the rules themselves, never a path
        if isinstance(source, Path) and not source.is_file():
            raise RulesError(f"file not found: {source}")
        text = source.read_text(encoding="utf-8") if isinstance(source, Path) else source
        origin = str(source) if isinstance(source, Path) else origin
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


def _value(expr: str, names: Mapping[str, Any]) -> bool:
    from simpleeval import SimpleEval  # the `llm` extra; the tracker checks rules without evaluating them

    return bool(SimpleEval(functions=dict(FUNCTIONS), names=dict(names)).eval(expr.strip()))


def _outcome(rule: Rule, ok: bool, error: str | None) -> tuple[bool, str]:
    if error is not None:  # a None answer compared with <, a division by zero, the time or memory bound ...
        return False, f"{rule.id}: cannot evaluate {rule.when!r}: {error}"
    return ok, "" if ok else f"{rule.id}: {rule.description or rule.when} (failed: {rule.when})"


def evaluate(rule: Rule, names: Mapping[str, Any]) -> tuple[bool, str]:
    """(passed, reason) of an expression rule over `rule_names(...)`, in this process (no time or memory
    bound: services use `BoundedEvaluator`); an error fails the rule with its message."""
    assert rule.when is not None
    try:
        return _outcome(rule, _value(rule.when, names), None)
    except Exception as exc:  # noqa: BLE001 - any error fails the rule, with its message
        return _outcome(rule, False, f"{type(exc).__name__}: {exc}")


class BoundedEvaluator:
    """Expression rules evaluated in a child process (`python -m cofi.audit.rules --serve`) under a wall-clock
    bound (the child is killed past it) and an address-space bound (RLIMIT_AS): a costly rule fails, alone,
    and never holds this process's GIL, so the worker's poll loop keeps its group membership.
    Thread-safe (one child, one request at a time); the child starts on first use and after a kill."""

    def __init__(self, timeout_s: float = 2.0, memory_mb: int = 256, start_timeout_s: float = 60.0) -> None:
        self.timeout_s = timeout_s
        self.memory_mb = memory_mb
        self.start_timeout_s = start_timeout_s
        self._proc: subprocess.Popen[str] | None = None
        self._lock = threading.Lock()

    def evaluate(self, rule: Rule, names: Mapping[str, Any]) -> tuple[bool, str]:
        assert rule.when is not None
        request = json.dumps({"expr": rule.when, "names": _plain(names)}) + "\n"
        with self._lock:
            try:
                proc = self._child()
                assert proc.stdin is not None and proc.stdout is not None
                proc.stdin.write(request)
                proc.stdin.flush()
                line = self._read_line(proc, self.timeout_s)
            except (OSError, ValueError) as exc:
                self._kill()
                return _outcome(rule, False, f"rule evaluator failed: {exc}")
            if line is None:
                self._kill()
                return _outcome(rule, False, f"took longer than {self.timeout_s:g}s (RULE_EVAL_TIMEOUT_S)")
            if not line:
                self._kill()
                return _outcome(rule, False, f"the evaluation process died (memory bound {self.memory_mb} MB?)")
        reply = json.loads(line)
        return _outcome(rule, bool(reply.get("value")), reply.get("error"))

    def close(self) -> None:
        with self._lock:
            self._kill()

    def _child(self) -> subprocess.Popen[str]:
        if self._proc is not None and self._proc.poll() is None:
            return self._proc
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[2]),
                                                             os.environ.get("PYTHONPATH", "")])}
        proc = subprocess.Popen([sys.executable, "-m", "cofi.audit.rules", "--serve", str(self.memory_mb)],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                text=True, env=env)
        self._proc = proc
        if self._read_line(proc, self.start_timeout_s) != "ready\n":
            self._kill()
            raise OSError("the rule evaluation process did not start")
        return proc

    @staticmethod
    def _read_line(proc: subprocess.Popen[str], timeout_s: float) -> str | None:
        """One reply line; None when none came within the timeout, "" when the child is gone."""
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], timeout_s)
        return proc.stdout.readline() if ready else None

    def _kill(self) -> None:
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.kill()
            self._proc.wait()
            for stream in (self._proc.stdin, self._proc.stdout):
                if stream is not None:
                    stream.close()
            self._proc = None


def _plain(names: Mapping[str, Any]) -> dict[str, Any]:
    """`rule_names` as JSON (the namespaces as objects)."""
    return {k: vars(v) if isinstance(v, SimpleNamespace) else v for k, v in names.items()}


def _serve(memory_mb: int) -> None:
    """The child of BoundedEvaluator: one JSON request per line on stdin, one reply per line on stdout."""
    import resource

    used = int(next(line.split()[1] for line in Path("/proc/self/status").read_text().splitlines()
                    if line.startswith("VmSize:"))) * 1024
    limit = used + memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    for line in sys.stdin:
        req = json.loads(line)
        names = {k: (_Namespace(**v) if k == "answers" else SimpleNamespace(**v)) if isinstance(v, dict) else v
                 for k, v in req["names"].items()}
        try:
            reply: dict[str, Any] = {"value": _value(req["expr"], names)}
        except Exception as exc:  # noqa: BLE001 - MemoryError included: the rule fails, the child lives
            reply = {"error": f"{type(exc).__name__}: {exc}"[:500]}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


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


if __name__ == "__main__" and sys.argv[1:2] == ["--serve"]:
    _serve(int(sys.argv[2]))
