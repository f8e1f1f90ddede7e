"""What the CLI reads from the tracker's tables (it never writes them): a batch's progress per stage and
its per-file results. An unreachable or unmigrated database is one clear CliError."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import InterfaceError, OperationalError, ProgrammingError

from cofi import db
from cofi.db import verdict_counts
from cofi.errors import EXIT_INVALID, EXIT_UNREACHABLE, CliError
from cofi.pipeline.stages import REGISTRY
from cofi.settings import Settings

JSON_RESULT_COLUMNS = ("answers", "normalizedAnswers", "ruleResults", "tradeChecks", "reasons")
MYSQL_NO_SUCH_TABLE = 1146


def first_line(exc: BaseException | None) -> str:
    """A driver error as one readable line (`error 2003: Can't connect ...`)."""
    args = getattr(exc, "args", ())
    text = f"error {args[0]}: {args[1]}" if len(args) == 2 and isinstance(args[0], int) else str(exc or "")
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__


class Db:
    """Read-only access that reports an unreachable or unmigrated database in one line."""

    def __init__(self, settings: Settings) -> None:
        url = make_url(db.role_url(settings, "reader"))
        self.where = f"{url.host or 'localhost'}:{url.port or 3306}/{url.database or ''}"
        self.engine: Engine = db.engine_for(settings, "reader", connect_args={"connect_timeout": 5})

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        try:
            with self.engine.connect() as conn:
                yield conn
        except (OperationalError, InterfaceError) as exc:
            raise CliError(f"database at {self.where} is unreachable ({first_line(exc.orig)}); "
                           "start it with `make up` or set DATABASE_URL", EXIT_UNREACHABLE) from None
        except ProgrammingError as exc:
            if getattr(exc.orig, "args", [None])[0] == MYSQL_NO_SUCH_TABLE:
                raise CliError(f"database at {self.where} has no cofi tables ({first_line(exc.orig)}); "
                               "run `python -m cofi.ops.admin init` (part of `make up`)", EXIT_UNREACHABLE) from None
            raise

    def close(self) -> None:
        self.engine.dispose()


@contextmanager
def database(settings: Settings) -> Iterator[Db]:
    handle = Db(settings)
    try:
        yield handle
    finally:
        handle.close()


@contextmanager
def reading(settings: Settings) -> Iterator[Connection]:
    """One read-only connection for one command."""
    with database(settings) as handle, handle.connect() as conn:
        yield conn


# ---- batch progress --------------------------------------------------------------------------------

@dataclass
class StageView:
    stage: str
    status: str
    done: int
    failed: int
    reach: int


@dataclass
class BatchView:
    batch_id: int
    row: dict[str, Any] | None
    total: int
    stages: list[StageView]
    file_status: dict[str, int]
    verdicts: dict[str, int] = field(default_factory=dict)  # files per verdict, VERDICTS first

    @property
    def status(self) -> str | None:
        return self.row["status"] if self.row else None


def load_batch_view(conn: Connection, batch_id: int) -> BatchView:
    """batchStatus row plus per-stage done/failed counts from fileDistribution."""
    bs, fd = db.batch_status, db.file_distribution
    found = conn.execute(select(bs).where(bs.c.id == batch_id)).mappings().first()
    sums = conn.execute(select(func.count(), *(func.coalesce(func.sum(fd.c[s.done_column]), 0) for s in REGISTRY))
                        .where(fd.c.batchId == batch_id)).one()
    failed_at = dict(conn.execute(select(fd.c.failedStage, func.count()).where(fd.c.batchId == batch_id,
                                                                                fd.c.failedStage.is_not(None))
                                  .group_by(fd.c.failedStage)).all())
    file_status = dict(conn.execute(select(fd.c.status, func.count()).where(fd.c.batchId == batch_id)
                                    .group_by(fd.c.status)).all())
    total = int(sums[0])
    row = dict(found) if found else None
    stages: list[StageView] = []
    lost = file_status.get("Cancelled", 0)
    for i, spec in enumerate(REGISTRY):
        status = row[spec.status_column] if row else "Pending"
        done, failed = int(sums[i + 1]), int(failed_at.get(spec.name, 0))
        stages.append(StageView(spec.name, status, done, failed, max(total - lost, 0)))
        lost += failed
    return BatchView(batch_id, row, max(total, int(row["totalFiles"]) if row else 0), stages, file_status,
                     verdict_counts(conn, batch_id))


def row_stamp(settings: Settings, batch_id: int) -> datetime | None:
    """The batch row's updatedAt now (None: no row yet), to tell the tracker's reaction from the old state."""
    bs = db.batch_status
    with reading(settings) as conn:
        return conn.execute(select(bs.c.updatedAt).where(bs.c.id == batch_id)).scalar()


def submission_verdict(conn: Connection, batch_id: int, event_id: str) -> tuple[bool, str] | None:
    """What the tracker made of one BatchStart: (True, "") taken in, (False, reason) refused, None not yet.

    One statement, so one read view: a refused new batch's row also names the event (its config), and two
    reads could miss the refusal, then see the row the same commit wrote, and call it taken."""
    refused, config = conn.execute(text(
        "SELECT (SELECT details FROM batchExecutionLog WHERE dedupKey = :k), "
        "(SELECT config FROM batchStatus WHERE id = :b)"), {"k": f"{batch_id}:rejected:{event_id}", "b": batch_id}).one()
    if refused is not None:
        details = decode_json(refused)
        return False, str(details.get("reason", refused) if isinstance(details, dict) else refused)
    config = decode_json(config)
    events = config.get("events") if isinstance(config, dict) else None
    return (True, "") if isinstance(events, dict) and event_id in events else None


def await_verdict(settings: Settings, batch_id: int, event_id: str, timeout_s: float = 30.0) -> None:
    """Wait (a while) for the tracker to take in or refuse this submission; CliError(2) with its reason
    when refused, so a submitter whose batch id was taken hears it instead of watching another batch."""
    deadline = time.monotonic() + timeout_s
    with database(settings) as handle:
        while time.monotonic() < deadline:
            with handle.connect() as conn:
                verdict = submission_verdict(conn, batch_id, event_id)
            if verdict is not None:
                if not verdict[0]:
                    raise CliError(f"batch {batch_id}: the tracker refused this submission: {verdict[1]}", EXIT_INVALID)
                return
            time.sleep(0.5)


# ---- per-file results ------------------------------------------------------------------------------

def decode_json(value: Any) -> Any:
    """A JSON column as data (MySQL returns JSON as text; anything unparsable stays as it is)."""
    if isinstance(value, str | bytes):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def load_results(conn: Connection, batch_id: int, verdicts: Sequence[str] = ()) -> list[dict[str, Any]]:
    """One dict per file: fileDistribution joined with auditResult, JSON columns decoded; only the files
    with one of `verdicts` when given (the calls a QA team works through: review, critical_fail)."""
    fd, ar = db.file_distribution, db.audit_result
    query = (select(fd.c.file, fd.c.status, fd.c.failedStage, ar.c.language, ar.c.verdict, ar.c.score,
                    *(ar.c[c] for c in JSON_RESULT_COLUMNS), ar.c.transcriptPath)
             .select_from(fd.outerjoin(ar, (ar.c.batchId == fd.c.batchId) & (ar.c.fileId == fd.c.fileId)))
             .where(fd.c.batchId == batch_id).order_by(fd.c.file))
    if verdicts:
        query = query.where(ar.c.verdict.in_(list(verdicts)))
    out = []
    for row in conn.execute(query).mappings():
        item = dict(row)
        for c in JSON_RESULT_COLUMNS:
            item[c] = decode_json(item[c])
        out.append(item)
    return out
