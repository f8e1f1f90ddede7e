"""The database's raw limit for the tracker's writes: a plain batched INSERT/UPDATE loop of the same rows.

Given a finished batch, write its final rows again into a fresh database the plainest way: the
fileDistribution rows inserted (as intake does), then one pass per topic a file crosses (every stage's
topic and `stage.done`) setting its flag, status and stored event (one multi-row INSERT ... ON DUPLICATE KEY
UPDATE per chunk, as fast as MySQL updates many rows), with that stage's processing_logs rows and
auditResult columns, `chunk` files per transaction; then the batchExecutionLog rows. No reads, no state
machine, no Kafka: what the tracker's rows/s is compared with (bench/throughput.py).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.engine import make_url

from cofi.db import migrate
from cofi.pipeline.stages import DONE, REGISTRY

TABLES = ("fileDistribution", "processing_logs", "auditResult", "batchExecutionLog")


@dataclass
class PlainLoop:
    rows: int  # rows stored in TABLES at the end
    seconds: float
    transactions: int

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds


def _all(conn: Connection, sql: str, **params: Any) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute(text(sql), params).mappings()]


def _insert(conn: Connection, table: str, rows: list[dict[str, Any]], upsert: tuple[str, ...] = ()) -> None:
    if not rows:
        return
    cols = list(rows[0])
    sql = f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join(':' + c for c in cols)})"
    if upsert:
        sql += " ON DUPLICATE KEY UPDATE " + ", ".join(f"{c} = VALUES({c})" for c in upsert)
    conn.execute(text(sql), rows)


def plain_loop(source: Engine, server_url: str, batch_id: int, chunk: int) -> PlainLoop:
    """Write `batch_id`'s final rows from `source` into a scratch database (dropped after), timed."""
    with source.connect() as c:
        files = _all(c, "SELECT batchId, fileId, file, metadata, lastEvent, worker FROM fileDistribution "
                        "WHERE batchId = :b ORDER BY id", b=batch_id)
        plogs = _all(c, "SELECT eventId, batch_id, file, stage_name, status, error, duration, worker "
                        "FROM processing_logs WHERE batch_id = :b", b=str(batch_id))
        audits = {r["fileId"]: r for r in _all(c, "SELECT * FROM auditResult WHERE batchId = :b", b=batch_id)}
        xlogs = _all(c, "SELECT batchId, stage, eventType, file, details, dedupKey FROM batchExecutionLog "
                        "WHERE batchId = :b", b=batch_id)
        plan = str(c.execute(text("SELECT stages FROM batchStatus WHERE id = :b"), {"b": batch_id}).scalar()).split(",")
    by_stage: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for p in plogs:
        by_stage.setdefault((p["stage_name"], p["file"]), []).append(p)
    name = f"cofi_test_plain{uuid.uuid4().hex[:8]}"
    server = create_engine(server_url)
    with server.begin() as c:
        c.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"))
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    db = create_engine(url, isolation_level="READ COMMITTED")
    try:
        migrate(url)
        txns = 0
        t0 = time.monotonic()
        chunks = [files[i:i + chunk] for i in range(0, len(files), chunk)]
        for part in chunks:
            with db.begin() as c:
                _insert(c, "fileDistribution", [{**{k: f[k] for k in ("batchId", "fileId", "file", "metadata")},
                                                 "lastEvent": f["lastEvent"], "status": "Pending"} for f in part])
            txns += 1
        for spec in [*(r for r in REGISTRY if r.name in plan), None]:  # each topic the files crossed, then stage.done
            for part in chunks:
                with db.begin() as c:  # multi-row upserts: MySQL's fastest plain way to update many rows
                    flag = {spec.done_column: 1} if spec else {}
                    _insert(c, "fileDistribution", [
                        {"batchId": f["batchId"], "fileId": f["fileId"], "file": f["file"],
                         "status": "InProgress" if spec else "Completed", "currentStage": spec.name if spec else DONE,
                         "lastEvent": f["lastEvent"], "worker": f["worker"], **flag} for f in part],
                        upsert=("status", "currentStage", "lastEvent", "worker", *flag))
                    if spec is not None:
                        _insert(c, "processing_logs", [p for f in part for p in by_stage.get((spec.name, f["file"]), [])])
                        cols = spec.result.AUDIT_COLUMNS
                        rows = [{"batchId": f["batchId"], "fileId": f["fileId"], "file": f["file"],
                                 **{k: audits[f["fileId"]][k] for k in cols}} for f in part if f["fileId"] in audits]
                        if cols:
                            _insert(c, "auditResult", rows, upsert=cols)
                txns += 1
        with db.begin() as c:
            _insert(c, "batchExecutionLog", xlogs)
        txns += 1
        seconds = time.monotonic() - t0
        with db.connect() as c:
            stored = sum(int(c.execute(text(f"SELECT COUNT(*) FROM {t}")).scalar() or 0) for t in TABLES)
        return PlainLoop(rows=stored, seconds=seconds, transactions=txns)
    finally:
        db.dispose()
        with server.begin() as c:
            c.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
        server.dispose()


def stored_rows(db: Engine, batch_id: int) -> int:
    """Rows of the batch in TABLES (what PlainLoop.rows counts for the same batch)."""
    with db.connect() as c:
        return sum(int(c.execute(text(f"SELECT COUNT(*) FROM {t} WHERE {col} = :b"), {"b": b}).scalar() or 0)
                   for t, col, b in (("fileDistribution", "batchId", batch_id),
                                     ("processing_logs", "batch_id", str(batch_id)),
                                     ("auditResult", "batchId", batch_id), ("batchExecutionLog", "batchId", batch_id)))
