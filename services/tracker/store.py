"""The tracker's SQL: bulk reads and idempotent bulk writes, one statement per table per poll.

PyMySQL turns `executemany` of `INSERT ... VALUES` into multi-row statements, so every write
here is one round trip per table however many files a poll carries.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, bindparam, text

from cofi.db import DONE_COLUMNS
from cofi.pipeline.stages import REGISTRY, STAGES
from services.tracker.filestate import FileRow, counts_delta, counts_of
from services.tracker.progress import Aggregates, LogRow

FLAG = {s.name: s.done_column for s in REGISTRY}
STATUS_COL = {s.name: s.status_column for s in REGISTRY}


@dataclass
class BatchRow:
    id: int
    status: str
    stage_status: dict[str, str]
    stages: list[str]
    totalFiles: int
    contentHash: str | None
    callback: str | None
    config: dict[str, Any] = field(default_factory=dict)


_STATE_COLS = ("batchId", "fileId", "file", *DONE_COLUMNS, "worker", "status", "currentStage", "failedStage",
               "error", "generation")
# Written when given, kept when NULL: events only read and write a file's state, never its metadata,
# and its stored event only when they are the furthest one (what resume and reaudit start from).
_KEPT_COLS = ("metadata", "lastEvent")
_FILE_COLS = (*_STATE_COLS, *_KEPT_COLS)
_UPSERT_FILES = (
    f"INSERT INTO fileDistribution ({', '.join(_FILE_COLS)}) VALUES ({', '.join(['%s'] * len(_FILE_COLS))}) "
    "ON DUPLICATE KEY UPDATE "
    + ", ".join([*(f"{c} = VALUES({c})" for c in _STATE_COLS[3:]), *(f"{c} = COALESCE(VALUES({c}), {c})"
                                                                     for c in _KEPT_COLS)]))


def load_files(conn: Connection, keys: Iterable[tuple[int, str]]) -> dict[tuple[int, str], FileRow]:
    """The state of these files (not their metadata or stored event: `save_files` keeps those)."""
    by_batch: dict[int, list[str]] = {}
    for b, f in keys:
        by_batch.setdefault(b, []).append(f)
    rows: dict[tuple[int, str], FileRow] = {}
    stmt = text(f"SELECT {', '.join(_STATE_COLS)} FROM fileDistribution WHERE batchId = :b AND fileId IN :ids"
                ).bindparams(bindparam("ids", expanding=True))
    for b, ids in by_batch.items():
        for i in range(0, len(ids), 1000):
            for r in conn.execute(stmt, {"b": b, "ids": ids[i:i + 1000]}).mappings():
                rows[(b, r["fileId"])] = _file_row(r)
    return rows


def unfinished_files(conn: Connection, batch_id: int) -> list[FileRow]:
    rows = conn.execute(text(f"SELECT {', '.join(_FILE_COLS)} FROM fileDistribution WHERE batchId = :b "
                             "AND status NOT IN ('Completed', 'Cancelled')"), {"b": batch_id}).mappings()
    return [_file_row(r) for r in rows]


def files_with_transcript(conn: Connection, batch_id: int) -> list[FileRow]:
    rows = conn.execute(text(f"SELECT {', '.join(_FILE_COLS)} FROM fileDistribution WHERE batchId = :b "
                             "AND sttDone = 1 AND status <> 'Cancelled'"), {"b": batch_id}).mappings()
    return [_file_row(r) for r in rows]


def _file_row(r: Any) -> FileRow:
    meta = r.get("metadata")
    row = FileRow(
        batchId=r["batchId"], fileId=r["fileId"], file=r["file"],
        flags={s: int(r[FLAG[s]] or 0) for s in STAGES}, status=r["status"], currentStage=r["currentStage"],
        failedStage=r["failedStage"], error=r["error"], generation=r["generation"], worker=r["worker"],
        lastEvent=r.get("lastEvent"), metadata=json.loads(meta) if isinstance(meta, str) else meta,
    )
    row.counted = counts_of(row)
    return row


def save_files(conn: Connection, rows: Sequence[FileRow]) -> None:
    """Upsert the rows' state (computed from a fresh read by the only writer), their metadata and stored
    event where set, and move their batches' counts by what changed, in the same transaction: a replayed
    event changes neither. Driver-level executemany of tuples: one multi-row statement per 500 rows."""
    if not rows:
        return
    deltas: dict[int, dict[str, int]] = {}
    for r in rows:
        per_batch = deltas.setdefault(r.batchId, {})
        for k, d in counts_delta(r).items():
            per_batch[k] = per_batch.get(k, 0) + d
        r.counted = counts_of(r)
    add_counts(conn, deltas)
    params = [(r.batchId, r.fileId, r.file, *(r.flags.get(s, 0) for s in STAGES), r.worker, r.status,
               r.currentStage, r.failedStage, r.error, r.generation,
               None if r.metadata is None else json.dumps(r.metadata, sort_keys=True), r.lastEvent) for r in rows]
    for i in range(0, len(params), 500):
        conn.exec_driver_sql(_UPSERT_FILES, params[i:i + 500])


_PLOG_COLS = ("eventId", "batch_id", "file", "stage_name", "status", "error", "duration", "worker")


def insert_processing_logs(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        conn.exec_driver_sql(f"INSERT IGNORE INTO processing_logs ({', '.join(_PLOG_COLS)}) "
                             f"VALUES ({', '.join(['%s'] * len(_PLOG_COLS))})",
                             [tuple(r[c] for c in _PLOG_COLS) for r in rows])


def insert_exec_logs(conn: Connection, rows: Sequence[LogRow]) -> None:
    if rows:
        conn.execute(text(
            "INSERT IGNORE INTO batchExecutionLog (batchId, stage, eventType, file, details, dedupKey) "
            "VALUES (:batchId, :stage, :eventType, :file, :details, :dedupKey)"),
            [r.__dict__ for r in rows])


def upsert_audit(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Each row sets only the columns its stage produced (others stay as they are): one statement per
    set of columns, so a row carries its stage's values and nothing else."""
    shapes: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for r in rows:
        shapes.setdefault(tuple(c for c in r if c not in ("batchId", "fileId", "file")), []).append(r)
    for cols, group in shapes.items():
        names = ("batchId", "fileId", "file", *cols)
        conn.exec_driver_sql(
            f"INSERT INTO auditResult ({', '.join(names)}) VALUES ({', '.join(['%s'] * len(names))}) "
            f"ON DUPLICATE KEY UPDATE {', '.join(f'{c} = COALESCE(VALUES({c}), {c})' for c in cols)}",
            [tuple(r[c] for c in names) for r in group])


def clear_audit(conn: Connection, batch_id: int, file_ids: Sequence[str], columns: Sequence[str]) -> None:
    if file_ids and columns:
        stmt = text(f"UPDATE auditResult SET {', '.join(f'{c} = NULL' for c in columns)} "
                    "WHERE batchId = :b AND fileId IN :ids").bindparams(bindparam("ids", expanding=True))
        for i in range(0, len(file_ids), 1000):
            conn.execute(stmt, {"b": batch_id, "ids": list(file_ids[i:i + 1000])})


def load_batches(conn: Connection, ids: Iterable[int]) -> dict[int, BatchRow]:
    ids = list(set(ids))
    if not ids:
        return {}
    stmt = text("SELECT * FROM batchStatus WHERE id IN :ids").bindparams(bindparam("ids", expanding=True))
    out = {}
    for r in conn.execute(stmt, {"ids": ids}).mappings():
        cfg = r["config"]
        out[r["id"]] = BatchRow(
            id=r["id"], status=r["status"], stage_status={s: r[STATUS_COL[s]] for s in STAGES},
            stages=[s for s in (r["stages"] or "").split(",") if s], totalFiles=r["totalFiles"],
            contentHash=r["contentHash"], callback=r["callback"],
            config=(json.loads(cfg) if isinstance(cfg, str) else cfg) or {})
    return out


def insert_batch(conn: Connection, b: BatchRow, *, reason: str | None = None) -> None:
    cols = {"id": b.id, "status": b.status, "stages": ",".join(b.stages), "totalFiles": b.totalFiles,
            "contentHash": b.contentHash, "callback": b.callback, "reason": reason,
            "config": json.dumps(b.config, sort_keys=True)}
    cols.update({STATUS_COL[s]: b.stage_status[s] for s in STAGES})
    names = ", ".join(cols)
    conn.execute(text(
        f"INSERT INTO batchStatus ({names}, startedAt) VALUES ({', '.join(':' + c for c in cols)}, "
        "CURRENT_TIMESTAMP(3)) ON DUPLICATE KEY UPDATE "
        + ", ".join(f"{c} = VALUES({c})" for c in cols if c != "id")), cols)


def update_batch(conn: Connection, batch_id: int, *, status: str, stage_status: dict[str, str],
                 completed: int, failed: int, finished: bool) -> None:
    sets = ", ".join(f"{STATUS_COL[s]} = :{STATUS_COL[s]}" for s in STAGES)
    completed_at = "COALESCE(completedAt, CURRENT_TIMESTAMP(3))" if finished or status in (
        "Completed", "Failed", "Cancelled") else "NULL"
    params = {"id": batch_id, "status": status, "completed": completed, "failed": failed}
    params.update({STATUS_COL[s]: stage_status[s] for s in STAGES})
    conn.execute(text(
        f"UPDATE batchStatus SET status = :status, {sets}, completedFiles = :completed, failedFiles = :failed, "
        f"completedAt = {completed_at} WHERE id = :id"), params)


def save_batch_config(conn: Connection, batch_id: int, config: dict[str, Any], reason: str | None = None) -> None:
    conn.execute(text("UPDATE batchStatus SET config = :c, reason = COALESCE(:r, reason) WHERE id = :id"),
                 {"c": json.dumps(config, sort_keys=True), "r": reason, "id": batch_id})


def set_batch_fields(conn: Connection, batch_id: int, **fields: Any) -> None:
    if fields:
        conn.execute(text(f"UPDATE batchStatus SET {', '.join(f'{k} = :{k}' for k in fields)} WHERE id = :id"),
                     {**fields, "id": batch_id})


def add_counts(conn: Connection, deltas: dict[int, dict[str, int]]) -> None:
    """batchFileCounts += deltas, one statement, rows in key order (a fixed lock order)."""
    params = [{"b": b, "k": k, "n": n} for b in sorted(deltas) for k, n in sorted(deltas[b].items()) if n]
    if params:
        conn.execute(text("INSERT INTO batchFileCounts (batchId, name, n) VALUES (:b, :k, :n) "
                          "ON DUPLICATE KEY UPDATE n = n + VALUES(n)"), params)


def batch_counts(conn: Connection, batch_id: int) -> Aggregates:
    """The batch's aggregates from its counts: a few rows, however many files it has. A batch without
    them (taken in before they existed) is counted once from fileDistribution."""
    counts = {r[0]: int(r[1]) for r in conn.execute(
        text("SELECT name, n FROM batchFileCounts WHERE batchId = :b"), {"b": batch_id})}
    return Aggregates.from_counts(counts) if "total" in counts else recount(conn, batch_id)


def recount(conn: Connection, batch_id: int) -> Aggregates:
    """Count the batch's files again from fileDistribution (after statements that change many rows at once)."""
    agg = aggregates(conn, batch_id)
    conn.execute(text("DELETE FROM batchFileCounts WHERE batchId = :b"), {"b": batch_id})
    add_counts(conn, {batch_id: agg.counts()})
    return agg


def aggregates(conn: Connection, batch_id: int) -> Aggregates:
    """The batch's aggregates by scanning its fileDistribution rows (recount; the tracker reads batch_counts)."""
    flags = ", ".join(f"COALESCE(SUM({FLAG[s]}), 0) AS d_{s}" for s in STAGES)
    fails = ", ".join(f"COALESCE(SUM(status = 'Failed' AND failedStage = '{s}'), 0) AS f_{s}" for s in STAGES)
    r = conn.execute(text(
        f"SELECT COUNT(*) AS total, {flags}, {fails}, COALESCE(SUM(status = 'Completed'), 0) AS completed, "
        "COALESCE(SUM(status = 'Failed'), 0) AS failed, COALESCE(SUM(status = 'Cancelled'), 0) AS cancelled "
        "FROM fileDistribution WHERE batchId = :b"), {"b": batch_id}).mappings().one()
    return Aggregates(total=int(r["total"]), done={s: int(r[f"d_{s}"]) for s in STAGES},
                      failed_at={s: int(r[f"f_{s}"]) for s in STAGES}, completed=int(r["completed"]),
                      failed=int(r["failed"]), cancelled=int(r["cancelled"]))


def progress_logged(conn: Connection, batch_id: int, round_: int) -> dict[str, int]:
    """Highest file count already logged as `progress` per stage in this round."""
    rows = conn.execute(text(
        "SELECT stage, COUNT(*) AS n FROM batchExecutionLog WHERE batchId = :b AND eventType = 'progress' "
        "AND dedupKey LIKE :suffix GROUP BY stage"), {"b": batch_id, "suffix": f"%:r{round_}"}).mappings()
    return {r["stage"]: int(r["n"]) for r in rows}


def insert_webhook(conn: Connection, batch_id: int, kind: str, url: str, payload: dict[str, Any]) -> None:
    conn.execute(text("INSERT IGNORE INTO webhookOutbox (batchId, kind, url, payload) VALUES (:b, :k, :u, :p)"),
                 {"b": batch_id, "k": kind, "u": url, "p": json.dumps(payload)})


def cancel_files(conn: Connection, batch_id: int) -> None:
    conn.execute(text("UPDATE fileDistribution SET status = 'Cancelled' WHERE batchId = :b "
                      "AND status NOT IN ('Completed', 'Failed')"), {"b": batch_id})
    recount(conn, batch_id)


def uncancel_files(conn: Connection, batch_id: int) -> None:
    """A resume of a cancelled batch: its cancelled files are pending again."""
    conn.execute(text("UPDATE fileDistribution SET status = 'Pending' WHERE batchId = :b AND status = 'Cancelled'"),
                 {"b": batch_id})
    recount(conn, batch_id)


def batches_of_files(conn: Connection, file_ids: Iterable[str]) -> dict[str, int]:
    """fileId -> batchId, for ids that name one file (an event that did not decode is known by its key only)."""
    ids = sorted(set(file_ids))
    found: dict[str, list[int]] = {}
    stmt = text("SELECT fileId, batchId FROM fileDistribution WHERE fileId IN :ids").bindparams(
        bindparam("ids", expanding=True))
    for i in range(0, len(ids), 1000):
        for file_id, batch_id in conn.execute(stmt, {"ids": ids[i:i + 1000]}):
            found.setdefault(file_id, []).append(batch_id)
    return {f: b[0] for f, b in found.items() if len(b) == 1}
