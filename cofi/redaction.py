"""A batch's PII redaction policy: which entity types the `redact` stage replaces, and how.

The policy rides in `BatchStart.redact` (set by `cofi submit --redact ...`) and, from the
tracker's intake on, in every FileEvent of the batch (`FileEvent.redactPolicy`); a batch whose
start carries one has the opt-in `redact` stage in its plan. Placeholders are typed and
numbered per call (`[ACCOUNT_NUMBER_1]`, `[ACCOUNT_NUMBER_2]`), so the audit can still tell two
numbers apart and see that identity was verified.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

#: every entity type the redact stage knows, with what it covers (operators read this in `--help`)
ENTITY_TYPES: dict[str, str] = {
    "PERSON": "names of people",
    "CLIENT_CODE": "broker client codes (C48213, spoken letter and digits)",
    "ACCOUNT_NUMBER": "bank, demat and trading account numbers",
    "CARD_NUMBER": "payment card numbers",
    "PAN": "PAN-style tax IDs (ABCDE1234F) and other letter+digit IDs",
    "DATE_OF_BIRTH": "dates of birth",
    "PHONE_NUMBER": "phone numbers",
    "EMAIL_ADDRESS": "email addresses, written or spoken (john dot smith at example dot com)",
    "ADDRESS": "postal addresses (house number and street)",
    "ID_NUMBER": "any other digit string of 4+ digits that is not a trade fact",
}
STAGE = "redact"  # the opt-in stage a policy enables
AUDIO_MODES = ("tone", "silence")
ALL = "all"


class PolicyError(ValueError):
    """A redaction policy names an unknown entity type or audio mode."""


def parse_entities(items: Iterable[str] | None) -> list[str]:
    """`["all"]`, `["ACCOUNT_NUMBER,PHONE_NUMBER", "person"]` -> entity types in ENTITY_TYPES order."""
    names = [s.strip().upper() for item in (items or []) for s in str(item).split(",") if s.strip()]
    if not names or ALL.upper() in names:
        return list(ENTITY_TYPES)
    unknown = sorted(set(names) - set(ENTITY_TYPES))
    if unknown:
        raise PolicyError(f"unknown entity type(s) {', '.join(unknown)}; known: {', '.join(ENTITY_TYPES)} (or all)")
    return [e for e in ENTITY_TYPES if e in set(names)]


def make_policy(entities: Iterable[str] | None = None, audio: str = "tone") -> dict[str, Any]:
    """The `RedactPolicy` record (schemas/batch_start.avsc); PolicyError on anything unknown."""
    if audio not in AUDIO_MODES:
        raise PolicyError(f"audio mode {audio!r}: use {' or '.join(AUDIO_MODES)}")
    return {"entities": parse_entities(entities), "audio": audio}


def checked_policy(record: dict[str, Any] | None) -> dict[str, Any] | None:
    """A policy as read from an event, validated (None stays None: the batch does not redact)."""
    if record is None:
        return None
    return make_policy(record.get("entities") or [ALL], record.get("audio") or "tone")


def enabled_stages(policy: dict[str, Any] | None) -> list[str]:
    """The opt-in stages a batch with this policy runs (for `stage_plan(..., enable=...)`)."""
    return [STAGE] if policy is not None else []


def placeholder(entity: str, n: int) -> str:
    return f"[{entity}_{n}]"


def luhn_ok(digits: str) -> bool:
    """The Luhn check of card numbers: what tells a card number from any other run of 13-19 digits."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0
