"""Read-only queries behind the batch pages (the tracker is the only writer of these tables).

Polled fragments stay cheap on 10,000-file batches: the list sums done flags only for
batches still running, and a batch page reads per-stage counts with one grouped query.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, String, and_, case, cast, func, select, text

from cofi import db
from cofi.ops import monitoring
from services.console.actions import STAGES

FINAL = frozenset({"Completed", "Failed", "Cancelled", "Rejected"})
STATUSES = ("InProgress", "Completed", "Failed", "Cancelled", "Rejected", "Pending")
LIST_LIMIT = 100
FILES_PAGE = 100


@dataclass
class BatchFilter:
    status: str = ""
    batch: str = ""  # id prefix
    submitted_by: str = ""  # substring


@dataclass
class BatchRow:
    id: int
    status: str
    total: int
    completed: int
    failed: int
    submitted_by: str
    created_at: datetime | None
    completed_at: datetime | None
    stage_status: dict[str, str]
    done: dict[str, int] = field(default_factory=dict)  # per-stage done counts (running batches only)

    @property
    def final(self) -> bool:
        return self.status in FINAL


def list_batches(conn: Connection, flt: BatchFilter, limit: int = LIST_LIMIT) -> list[BatchRow]:
    bs = db.batch_status
    submitted = func.json_unquote(func.json_extract(bs.c.config, "$.submittedBy"))
    query = select(bs.c.id, bs.c.status, bs.c.totalFiles, bs.c.completedFiles, bs.c.failedFiles,
                   bs.c.createdAt, bs.c.completedAt, submitted.label("submittedBy"),
                   *(bs.c[c] for c in db.STAGE_STATUS_COLUMNS))
    if flt.status:
        query = query.where(bs.c.status == flt.status)
    if flt.batch.strip().isdigit():
        query = query.where(cast(bs.c.id, String).like(f"{flt.batch.strip()}%"))
    if flt.submitted_by.strip():
        query = query.where(submitted.like(f"%{flt.submitted_by.strip()}%"))
    rows = [BatchRow(r.id, r.status, r.totalFiles, r.completedFiles, r.failedFiles, r.submittedBy or "",
                     r.createdAt, r.completedAt, {s: r[c] for s, c in zip(STAGES, db.STAGE_STATUS_COLUMNS, strict=True)})
            for r in conn.execute(query.order_by(bs.c.createdAt.desc(), bs.c.id.desc()).limit(limit)).mappings()]
    running = [b.id for b in rows if not b.final]
    if running:
        fd = db.file_distribution
        sums = conn.execute(select(fd.c.batchId, *(func.coalesce(func.sum(fd.c[c]), 0) for c in db.DONE_COLUMNS))
                            .where(fd.c.batchId.in_(running)).group_by(fd.c.batchId)).all()
        by_id = {r[0]: r[1:] for r in sums}
        for b in rows:
            if b.id in by_id:
                b.done = {s: int(n) for s, n in zip(STAGES, by_id[b.id], strict=True)}
    return rows


@dataclass
class Throughput:
    stage: str
    files: int
    per_s: float  # over the stage's active span
    last_minute: int


def throughput(conn: Connection, batch_id: int) -> dict[str, Throughput]:
    """Successful files per stage: overall rate between the first and last success, and in the last minute."""
    pl = db.processing_logs
    recent = func.sum(case((pl.c.created_at > func.date_sub(func.now(3), text("INTERVAL 60 SECOND")), 1), else_=0))
    rows = conn.execute(select(pl.c.stage_name, func.count(), func.min(pl.c.created_at), func.max(pl.c.created_at),
                               recent)
                        .where(pl.c.batch_id == str(batch_id), pl.c.status == "success")
                        .group_by(pl.c.stage_name)).all()
    out: dict[str, Throughput] = {}
    for stage, n, first, last, last_min in rows:
        span = (last - first).total_seconds() if first and last else 0.0
        out[stage] = Throughput(stage, int(n), round(n / span, 2) if span > 0 else 0.0, int(last_min or 0))
    return out


def monitoring_tables(conn: Connection, batch_id: int) -> list[monitoring.QueryResult]:
    """The seed's "Monitor These Metrics" and "Support" queries, run unchanged."""
    return [monitoring.run_query(conn, q, batch_id) for q in monitoring.ALL_QUERIES]


def failures(conn: Connection, batch_id: int, limit: int = 50) -> list[dict[str, Any]]:
    """Latest failed stage outcomes with the error, the stage and the file's id (for its page)."""
    pl, fd = db.processing_logs, db.file_distribution
    query = (select(pl.c.file, pl.c.stage_name, pl.c.error, pl.c.created_at, pl.c.worker, fd.c.fileId)
             .select_from(pl.outerjoin(fd, and_(fd.c.batchId == batch_id, fd.c.file == pl.c.file)))
             .where(pl.c.batch_id == str(batch_id), pl.c.status == "failed")
             .order_by(pl.c.created_at.desc(), pl.c.id.desc()).limit(limit))
    return [dict(r) for r in conn.execute(query).mappings()]


def files_page(conn: Connection, batch_id: int, page: int = 0, status: str = "",
               verdict: str = "") -> tuple[list[dict[str, Any]], int]:
    """One page of the batch's files with their verdict (only those with `status` / `verdict` when given),
    and the number of matching files."""
    fd, ar = db.file_distribution, db.audit_result
    joined = fd.outerjoin(ar, and_(ar.c.batchId == fd.c.batchId, ar.c.fileId == fd.c.fileId))
    where = ([fd.c.batchId == batch_id] + ([fd.c.status == status] if status else [])
             + ([ar.c.verdict == verdict] if verdict else []))
    total = conn.execute(select(func.count()).select_from(joined).where(*where)).scalar_one()
    query = (select(fd.c.fileId, fd.c.file, fd.c.status, fd.c.currentStage, fd.c.failedStage, fd.c.worker,
                    ar.c.language, ar.c.verdict, ar.c.score)
             .select_from(joined)
             .where(*where).order_by(fd.c.file).limit(FILES_PAGE).offset(max(page, 0) * FILES_PAGE))
    return [dict(r) for r in conn.execute(query).mappings()], int(total)


def batch_config(conn: Connection, batch_id: int) -> dict[str, Any]:
    raw = conn.execute(select(db.batch_status.c.config).where(db.batch_status.c.id == batch_id)).scalar()
    if isinstance(raw, str | bytes):
        raw = json.loads(raw)
    return raw or {}
