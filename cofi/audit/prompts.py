"""Compact prompts and JSON schemas for llm1 (the default model is a 270M one with a 4k context).

Every schema is closed (additionalProperties false, everything required) and the answer
is an enum of the question's canonical options, so a grammar-constrained server can only
produce a usable reply.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from cofi.audit.questionnaire import Question

SYSTEM = ("You audit a recorded phone call between a brokerage agent and a customer. "
          "Judge only from the transcript. Reply with JSON only.")


def user_only(content: str) -> list[dict[str, str]]:
    """One user turn with the instructions first: Gemma's chat format has no system role."""
    return [{"role": "user", "content": f"{SYSTEM}\n\n{content}"}]
EVIDENCE_MAX = 160
TRADE_FIELDS = ("symbol", "side", "quantity", "price")


def cut_transcript(text: str, max_chars: int) -> str:
    """Keep the head and the tail (greeting/disclosures open a call, read-backs close it)."""
    text = text.strip()
    if len(text) <= max_chars:
        return text
    head = int(max_chars * 0.65)
    return text[:head] + "\n[...]\n" + text[-(max_chars - head):]


def _evidence(max_len: int = EVIDENCE_MAX) -> dict[str, Any]:
    return {"type": "string", "maxLength": max_len}


def answer_schema(q: Question, evidence_max: int = EVIDENCE_MAX) -> dict[str, Any]:
    return {"type": "object", "additionalProperties": False, "required": ["answer", "evidence"],
            "properties": {"answer": {"type": "string", "enum": list(q.options)}, "evidence": _evidence(evidence_max)}}


def batch_schema(questions: Sequence[Question]) -> dict[str, Any]:
    return {"type": "object", "additionalProperties": False, "required": [q.id for q in questions],
            # shorter quotes: one reply holds them all, and generation is the slow part
            "properties": {q.id: answer_schema(q, EVIDENCE_MAX // 2) for q in questions}}


def _question_line(q: Question) -> str:
    hint = f" ({q.hint})" if q.hint else ""
    return f"{q.text}{hint} Options: {', '.join(q.options)}."


def question_messages(transcript: str, q: Question) -> list[dict[str, str]]:
    """One question over the transcript."""
    return user_only(f"Transcript:\n{transcript}\n\nQuestion: {_question_line(q)}\n"
                     "Reply in JSON: answer (one of the options) and evidence (a few words copied from the transcript).")


def batch_messages(transcript: str, questions: Sequence[Question]) -> list[dict[str, str]]:
    """All llm questions over the transcript in one call."""
    lines = "\n".join(f"- {q.id}: {_question_line(q)}" for q in questions)
    return user_only(f"Transcript:\n{transcript}\n\nQuestions:\n{lines}\n"
                     "Reply in JSON keyed by question id, each with answer (one of its options) and evidence "
                     "(a few words copied from the transcript).")


def trade_schema() -> dict[str, Any]:
    return {"type": "object", "additionalProperties": False, "required": ["status", "evidence", "mismatches"],
            "properties": {
                "status": {"type": "string", "enum": ["confirmed", "contradicted", "not_mentioned"]},
                "evidence": _evidence(),
                "mismatches": {"type": "array", "maxItems": 4, "items": {"type": "string", "enum": list(TRADE_FIELDS)}},
            }}


def describe_trade(trade: Mapping[str, Any]) -> str:
    qty = trade["quantity"]
    qty_s = str(int(qty)) if float(qty).is_integer() else str(qty)
    return f"{trade['side']} {qty_s} {trade['symbol']} at {trade['price']:g}"


def trade_messages(transcript: str, trade: Mapping[str, Any]) -> list[dict[str, str]]:
    return user_only(
        f"Transcript:\n{transcript}\n\nBooked trade: {describe_trade(trade)}.\n"
        "Did the customer agree to exactly this trade in the call? status: confirmed (same symbol, side, "
        "quantity and price), contradicted (the call states a different symbol, side, quantity or price; list "
        "them in mismatches), not_mentioned (no such order discussed). "
        "Reply in JSON: status, evidence (a few words copied from the transcript), mismatches.")
