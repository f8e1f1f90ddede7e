"""Output formats for the LLM: short constrained replies, in each server's dialect.

Generation is the slow part on a CPU (a 1.5B model writes ~7 tokens/s on 2 cores), so replies are
as short as a grammar can make them: "3 yes" (evidence line 3, answer yes) instead of a JSON
object. A `LinesFormat` describes K records of space-separated fields, each an integer in a range
or one of a few words; it renders as
- a GBNF grammar for llama.cpp servers (`grammar`),
- a regular expression for vLLM (`guided_regex`),
- a JSON schema for OpenAI-style servers (`response_format` json_schema), the fallback,
and `parse` reads either the compact text or that JSON (a server may ignore the constraint),
raising ValueError with the reason.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class IntField:
    name: str
    low: int
    high: int


@dataclass(frozen=True)
class WordField:
    name: str
    words: tuple[str, ...]
    many: bool = False  # a comma-separated list of words, possibly empty


Field = IntField | WordField


def _gbnf_literal(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _digits_rule(high: int) -> str:
    width = len(str(max(high, 0)))
    return "[0-9]" + " [0-9]?" * (width - 1)


@dataclass(frozen=True)
class LinesFormat:
    """K records (one per line), each the same kind of fields or its own (`records`)."""

    records: tuple[tuple[Field, ...], ...]
    name: str = "reply"

    @classmethod
    def of(cls, records: Sequence[Sequence[Field]], name: str = "reply") -> LinesFormat:
        return cls(tuple(tuple(r) for r in records), name)

    # -- renderings ----------------------------------------------------------------------

    def gbnf(self) -> str:
        rules = ["root ::= " + ' "\\n" '.join(f"r{i}" for i in range(len(self.records)))]
        for i, rec in enumerate(self.records):
            parts = []
            for j, f in enumerate(rec):
                rule = f"r{i}f{j}"
                parts.append(rule)
                if isinstance(f, IntField):
                    rules.append(f"{rule} ::= {_digits_rule(f.high)}")
                else:
                    alt = " | ".join(_gbnf_literal(w) for w in f.words)
                    rules.append(f'{rule} ::= "-" | ({alt}) ("," ({alt}))*' if f.many else f"{rule} ::= ({alt})")
            rules.append(f"r{i} ::= " + ' " " '.join(parts))
        return "\n".join(rules) + "\n"

    def regex(self) -> str:
        recs = []
        for rec in self.records:
            fields = []
            for f in rec:
                if isinstance(f, IntField):
                    fields.append(rf"\d{{1,{len(str(max(f.high, 0)))}}}")
                else:
                    alt = "(?:" + "|".join(re.escape(w) for w in f.words) + ")"
                    fields.append(f"(?:-|{alt}(?:,{alt})*)" if f.many else alt)
            recs.append(" ".join(fields))
        return "\n".join(recs)

    def json_schema(self) -> dict[str, Any]:
        def rec_schema(rec: tuple[Field, ...]) -> dict[str, Any]:
            props: dict[str, Any] = {}
            for f in rec:
                if isinstance(f, IntField):
                    props[f.name] = {"type": "integer", "minimum": f.low, "maximum": f.high}
                elif f.many:
                    props[f.name] = {"type": "array", "items": {"type": "string", "enum": list(f.words)}}
                else:
                    props[f.name] = {"type": "string", "enum": list(f.words)}
            return {"type": "object", "additionalProperties": False, "required": [f.name for f in rec],
                    "properties": props}

        if len(self.records) == 1:
            return rec_schema(self.records[0])
        return {"type": "object", "additionalProperties": False,
                "required": [f"q{i + 1}" for i in range(len(self.records))],
                "properties": {f"q{i + 1}": rec_schema(r) for i, r in enumerate(self.records)}}

    def instructions(self) -> str:
        """How the reply looks, for the prompt (the constraint enforces it where the server can)."""
        one = " ".join(f"<{f.name}>" for f in self.records[0])
        if len(self.records) == 1:
            return f"Reply with one line: {one}"
        return f"Reply with {len(self.records)} lines, one per question in order, each: {one}"

    def max_tokens(self) -> int:
        per = sum(4 if isinstance(f, IntField) else (12 if f.many else 4) for f in self.records[0])
        return 16 + len(self.records) * (per + 2)

    # -- parsing -------------------------------------------------------------------------

    def parse(self, text: str) -> list[dict[str, Any]]:
        text = text.strip()
        if text.startswith("{"):
            return self._parse_json(text)
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        if len(lines) != len(self.records):
            raise ValueError(f"expected {len(self.records)} lines, got {len(lines)}: {text[:200]!r}")
        return [self._parse_record(rec, ln.split()) for rec, ln in zip(self.records, lines, strict=True)]

    def _parse_record(self, rec: tuple[Field, ...], tokens: list[str]) -> dict[str, Any]:
        if len(tokens) != len(rec):
            raise ValueError(f"expected {len(rec)} fields ({' '.join(f.name for f in rec)}), got {tokens}")
        return {f.name: self._value(f, tok) for f, tok in zip(rec, tokens, strict=True)}

    @staticmethod
    def _value(f: Field, raw: Any) -> Any:
        if isinstance(f, IntField):
            try:
                value = int(raw)
            except (TypeError, ValueError):
                raise ValueError(f"{f.name}: {raw!r} is not an integer") from None
            if not f.low <= value <= f.high:
                raise ValueError(f"{f.name}: {value} is outside {f.low}..{f.high}")
            return value
        items = raw if isinstance(raw, list) else ([] if raw == "-" else str(raw).split(",")) if f.many else [raw]
        bad = [w for w in items if w not in f.words]
        if bad:
            raise ValueError(f"{f.name}: {bad} not among {list(f.words)}")
        return items if f.many else items[0]

    def _parse_json(self, text: str) -> list[dict[str, Any]]:
        try:
            data = json.loads(text, strict=False)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not JSON ({exc.msg} at char {exc.pos})") from exc
        recs = [data] if len(self.records) == 1 else [data.get(f"q{i + 1}") for i in range(len(self.records))]
        out = []
        for rec, obj in zip(self.records, recs, strict=True):
            if not isinstance(obj, dict):
                raise ValueError(f"expected an object per record, got {obj!r}")
            missing = [f.name for f in rec if f.name not in obj]
            if missing:
                raise ValueError(f"missing {missing}")
            out.append({f.name: self._value(f, obj[f.name]) for f in rec})
        return out


def request_fields(fmt: LinesFormat, dialect: str) -> dict[str, Any]:
    """The request-body fields that constrain the reply to `fmt` in `dialect`."""
    if dialect == "llamacpp":
        return {"grammar": fmt.gbnf()}
    if dialect == "vllm":
        return {"guided_regex": fmt.regex()}
    if dialect == "openai":
        return {"response_format": {"type": "json_schema",
                                    "json_schema": {"name": fmt.name, "schema": fmt.json_schema(), "strict": True}}}
    raise ValueError(f"unknown LLM dialect {dialect!r}")
