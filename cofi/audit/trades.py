"""Trade-to-audio mapping: which recorded call is the one in which each trade was agreed.

`load_trades` reads the batch's trade file (CSV or JSON); `map_trades` is pure: a trade
belongs to the call of the same client (clientCode, else phone) whose start lies within
`window_minutes` of the trade time; when several calls qualify it goes to the nearest one
and is reported as ambiguous. The tracker calls this at batch intake and puts each call's
trades into its FileEvent.trades (dicts shaped like the Avro `Trade` record).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from cofi.audit.record_files import read_records

REQUIRED = ("tradeId", "clientCode", "symbol", "side", "quantity", "price", "tradeTime")
SIDES = {"buy": "buy", "b": "buy", "sell": "sell", "s": "sell"}


class TradeFileError(ValueError):
    """A trade file or row that cannot be used; the message names the row and field."""


@dataclass
class TradeMapping:
    by_file: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    unmapped_trades: list[dict[str, Any]] = field(default_factory=list)
    calls_without_trades: list[str] = field(default_factory=list)
    ambiguous: list[dict[str, Any]] = field(default_factory=list)
    """One entry per trade that matched several calls: tradeId, chosen fileId, candidate fileIds."""


def parse_time(value: str) -> datetime:
    """ISO 8601 (a trailing Z allowed); naive times are taken as UTC."""
    dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def normalize_trade(row: Mapping[str, Any], where: str = "trade") -> dict[str, Any]:
    """Validate one row and shape it as the Avro Trade record."""
    missing = [k for k in REQUIRED if row.get(k) in (None, "")]
    if missing:
        raise TradeFileError(f"{where}: missing {', '.join(missing)}")
    side = SIDES.get(str(row["side"]).strip().lower())
    if side is None:
        raise TradeFileError(f"{where}: side {row['side']!r} is not buy or sell")
    try:
        quantity, price = float(row["quantity"]), float(row["price"])
    except (TypeError, ValueError) as exc:
        raise TradeFileError(f"{where}: quantity/price must be numbers, got {row['quantity']!r}/{row['price']!r}") from exc
    if quantity <= 0 or price < 0:
        raise TradeFileError(f"{where}: quantity must be > 0 and price >= 0")
    try:
        parse_time(str(row["tradeTime"]))
    except ValueError as exc:
        raise TradeFileError(f"{where}: tradeTime {row['tradeTime']!r} is not ISO 8601") from exc
    phone = row.get("phone")
    return {
        "tradeId": str(row["tradeId"]).strip(), "clientCode": str(row["clientCode"]).strip(),
        "symbol": str(row["symbol"]).strip().upper(), "side": side, "quantity": quantity, "price": price,
        "tradeTime": str(row["tradeTime"]).strip(), "phone": str(phone).strip() if phone not in (None, "") else None,
    }


def load_trades(path: str | Path) -> list[dict[str, Any]]:
    """Read a CSV (header row) or JSON (list of objects) trade file; TradeFileError on any bad row."""
    trades, seen = [], set()
    for where, row in read_records(path, key="trades", required=REQUIRED, error=TradeFileError):
        trade = normalize_trade(row, where)
        if trade["tradeId"] in seen:
            raise TradeFileError(f"{where}: duplicate tradeId {trade['tradeId']}")
        seen.add(trade["tradeId"])
        trades.append(trade)
    return trades


def _digits(phone: str | None) -> str:
    return "".join(c for c in phone or "" if c.isdigit())[-10:]


def _same_client(trade: Mapping[str, Any], meta: Mapping[str, Any]) -> bool:
    code = str(meta.get("clientCode") or "").strip()
    if code and code == trade["clientCode"]:
        return True
    tp, cp = _digits(trade.get("phone")), _digits(meta.get("phone"))
    return bool(tp) and tp == cp


def map_trades(trades: Sequence[Mapping[str, Any]], calls: Sequence[Mapping[str, Any]],
               window_minutes: float = 30) -> TradeMapping:
    """Assign each trade to the nearest-in-time call of the same client within the window."""
    result = TradeMapping(by_file={str(c["fileId"]): [] for c in calls})
    starts: dict[str, datetime | None] = {}
    for c in calls:
        raw = (c.get("metadata") or {}).get("callStart")
        try:
            starts[str(c["fileId"])] = parse_time(str(raw)) if raw else None
        except ValueError:
            starts[str(c["fileId"])] = None  # a call without a usable start cannot be mapped
    window = window_minutes * 60
    for raw_trade in trades:
        trade = normalize_trade(raw_trade, f"trade {raw_trade.get('tradeId', '?')}")
        t = parse_time(trade["tradeTime"])
        candidates: list[tuple[float, str]] = []
        for c in calls:
            fid, start = str(c["fileId"]), starts[str(c["fileId"])]
            if start is None or not _same_client(trade, c.get("metadata") or {}):
                continue
            gap = abs((t - start).total_seconds())
            if gap <= window:
                candidates.append((gap, fid))
        if not candidates:
            result.unmapped_trades.append(trade)
            continue
        candidates.sort()
        chosen = candidates[0][1]
        result.by_file[chosen].append(trade)
        if len(candidates) > 1:
            result.ambiguous.append({"tradeId": trade["tradeId"], "fileId": chosen,
                                     "candidates": [fid for _, fid in candidates]})
    result.calls_without_trades = [fid for fid, ts in result.by_file.items() if not ts]
    return result
