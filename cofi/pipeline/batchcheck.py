"""Checks of a batch's content that the CLI makes before sending and the tracker makes again at intake.

One implementation for both, so an odd or hostile BatchStart (from any producer) is refused with the
row and the reason instead of breaking a table, an Avro encoder or a trade mapping later on.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cofi.errors import BatchRejected

MAX_BIGINT = 2**63 - 1  # batchStatus.id
MAX_FILE_CHARS = 512  # fileDistribution.file
MAX_CALLBACK_CHARS = 1024  # batchStatus.callback


def check_batch_id(batch_id: int, what: str = "batch id") -> None:
    if not 0 < batch_id <= MAX_BIGINT:
        raise BatchRejected(f"{what} {batch_id} must be a positive 64-bit integer")


def shown(text: str) -> str:
    """`text` printable in a message even when it holds undecodable bytes (as \\x.. escapes)."""
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def text_problem(text: str) -> str | None:
    """Why `text` cannot travel in an event or a table (None when it can)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid UTF-8 (undecodable bytes)"
    if "\x00" in text:
        return "contains a NUL character"
    return None


def file_problem(name: str) -> str | None:
    """Why `name` cannot be a file of a batch (None when it can)."""
    problem = text_problem(name) or (None if name.strip() else "is empty")
    if problem is None and len(name) > MAX_FILE_CHARS:
        problem = f"is {len(name)} characters long, over {MAX_FILE_CHARS}"
    return problem


def spec_problem(file: str, metadata: Mapping[str, str]) -> str | None:
    """Why one call of a manifest (its path and metadata) cannot be taken, naming what is wrong."""
    problem = file_problem(file)
    if problem is not None:
        return f"file name '{shown(file)}' {problem}"
    for key, value in metadata.items():
        bad = text_problem(key) or text_problem(value)
        if bad is not None:
            return f"metadata '{shown(key)}' {bad}"
    return None


def check_files(files: Iterable[tuple[str, Mapping[str, str]]]) -> None:
    """BatchRejected naming the first call (1-based) whose path or metadata cannot be taken."""
    for i, (file, metadata) in enumerate(files, start=1):
        problem = spec_problem(file, metadata)
        if problem is not None:
            raise BatchRejected(f"file {i}: {problem}")


def check_callback(url: str | None) -> None:
    if url is not None and len(url) > MAX_CALLBACK_CHARS:
        raise BatchRejected(f"callback URL is {len(url)} characters long, over {MAX_CALLBACK_CHARS}")


def _aware(value: str) -> datetime | None:
    """The time, None when it has no time zone; ValueError when it is not ISO 8601."""
    dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    return dt if dt.tzinfo is not None else None


def zone(name: str) -> ZoneInfo:
    """`--trades-tz`: an IANA zone name (Europe/Paris, UTC); BatchRejected when unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise BatchRejected(f"unknown time zone {name!r} (use an IANA name such as UTC or Europe/Paris)") from exc


def check_trades(trades: list[dict[str, Any]], where: Callable[[int], str], tz: ZoneInfo | None = None) -> None:
    """Quantities and prices finite; trade times with a time zone. With `tz`, naive times are given that
    zone in place (the operator said so); without it they are refused: taking them as UTC silently would
    map trades to the wrong calls. `where(i)` names trade i (0-based) as the operator's file numbers it."""
    for i, trade in enumerate(trades):
        for key in ("quantity", "price"):
            value = trade.get(key)
            if isinstance(value, float) and not math.isfinite(value):
                raise BatchRejected(f"{where(i)}: {key} is {value}, not a finite number")
        raw = str(trade.get("tradeTime", ""))
        try:
            aware = _aware(raw)
        except ValueError:
            raise BatchRejected(f"{where(i)}: tradeTime {raw!r} is not ISO 8601") from None
        if aware is not None:
            continue
        if tz is None:
            raise BatchRejected(f"{where(i)}: tradeTime {raw!r} has no time zone; add one "
                                "(2026-01-15T09:30:00+01:00) or give the zone with --trades-tz")
        naive = datetime.fromisoformat(raw.strip())
        trade["tradeTime"] = naive.replace(tzinfo=tz).isoformat()
