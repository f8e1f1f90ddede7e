"""What the tracker does per event must not grow with the batch.

Its per-batch counts (batchFileCounts) move with every saved file instead of a scan of the batch's
rows on every poll, and must always equal that scan: through failures, resume, reaudit, cancel. And no
query the tracker sends reads a whole table: every statement it ran is EXPLAINed on tables holding
other batches' rows too; a full table or index scan of a table that grows with batches fails the test.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from sqlalchemy import Engine, event, text

from cofi.devtools.checks import scalar
from cofi.pipeline import events
from cofi.pipeline.stages import STAGES
from cofi.settings import Settings
from services.tracker import store
from tests.support.engines import ScriptedEngine
from tests.support.harness import ThreadedWorkers
from tests.support.tracker import RunningTracker, batch_start, control, submit, wait_status

pytestmark = pytest.mark.integration

# Tables whose rows grow with batch size or with the number of batches: none may be read whole.
GUARDED = {"fileDistribution", "processing_logs", "batchExecutionLog", "batchFileCounts", "auditResult",
           "webhookOutbox", "batchStatus"}
FULL_SCANS = {"ALL", "index"}  # EXPLAIN access types that read every row (or every index entry)
OTHER_BATCH, FILLER = 990_000, 3000


def _fill_other_batches(db: Engine) -> None:
    """Rows of other batches, so the optimizer sees tables the size of real ones, not near-empty ones."""
    with db.begin() as c:
        c.execute(text("INSERT INTO fileDistribution (batchId, fileId, file, status) VALUES (:b, :f, :p, 'Completed')"),
                  [{"b": OTHER_BATCH + i % 30, "f": f"x{i}", "p": f"/old/{i}.wav"} for i in range(FILLER)])
        c.execute(text("INSERT INTO processing_logs (eventId, batch_id, file, stage_name, status) "
                       "VALUES (:e, :b, :p, 'lid', 'success')"),
                  [{"e": f"old{i}", "b": str(OTHER_BATCH + i % 30), "p": f"/old/{i}.wav"} for i in range(FILLER)])
        c.execute(text("INSERT INTO batchExecutionLog (batchId, stage, eventType, dedupKey) "
                       "VALUES (:b, 'lid', 'progress', :k)"),
                  [{"b": OTHER_BATCH + i % 30, "k": f"old:{i}:r0"} for i in range(FILLER)])
        c.execute(text("INSERT INTO batchFileCounts (batchId, name, n) VALUES (:b, :k, 1)"),
                  [{"b": OTHER_BATCH + i, "k": k} for i in range(300) for k in ("total", "completed", "done:lid")])
        c.execute(text("INSERT INTO auditResult (batchId, fileId, file) VALUES (:b, :f, :p)"),
                  [{"b": OTHER_BATCH + i % 30, "f": f"x{i}", "p": f"/old/{i}.wav"} for i in range(FILLER)])
        c.execute(text("INSERT INTO webhookOutbox (batchId, kind, url, payload, status) "
                       "VALUES (:b, 'batch_complete:r0', 'http://127.0.0.1:9/', '{}', 'sent')"),
                  [{"b": OTHER_BATCH + i} for i in range(FILLER)])
        c.execute(text("INSERT INTO batchStatus (id, status) VALUES (:b, 'Completed')"),
                  [{"b": OTHER_BATCH + i} for i in range(FILLER)])
        for t in GUARDED:
            c.execute(text(f"ANALYZE TABLE {t}"))


class Recorder:
    """Every statement the tracker's engine sends, with the parameters of its last run."""

    def __init__(self) -> None:
        self.statements: dict[str, Any] = {}

    def attach(self, running: RunningTracker) -> RunningTracker:
        event.listen(running.tracker.db, "before_cursor_execute", self._seen)
        return running

    def _seen(self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        self.statements[statement] = parameters[0] if executemany else parameters


def _full_scans(db: Engine, statements: dict[str, Any]) -> list[str]:
    found = []
    raw = db.raw_connection()
    try:
        cur = raw.cursor()
        for sql, params in statements.items():
            if not sql.lstrip().upper().startswith(("SELECT", "UPDATE", "DELETE")):
                continue  # INSERT ... VALUES reads nothing (duplicates are found through the unique key)
            cur.execute("EXPLAIN " + sql, params)
            cols = [d[0].lower() for d in cur.description]
            for row in cur.fetchall():
                plan = dict(zip(cols, row, strict=True))
                if plan.get("table") in GUARDED and plan.get("type") in FULL_SCANS:
                    found.append(f"{plan['table']}: type={plan['type']} rows={plan.get('rows')}\n    {sql[:300]}")
    finally:
        raw.close()
    return found


def _counts_agree(db: Engine, batch: int) -> None:
    assert scalar(db, "SELECT n FROM batchFileCounts WHERE batchId = :b AND name = 'total'", b=batch) is not None, \
        f"batch {batch}: the tracker kept no counts"
    with db.begin() as c:
        kept, scanned = store.batch_counts(c, batch), store.aggregates(c, batch)
    assert kept == scanned, f"batch {batch}: counts kept {kept} != counted from fileDistribution {scanned}"


def test_counts_follow_every_transition_and_no_query_scans_a_table(settings: Settings, db_engine: Engine) -> None:
    _fill_other_batches(db_engine)
    rec = Recorder()
    fids = sorted(events.file_id(801, f"/calls/b801/call{i:05d}.wav") for i in range(60))
    engines = {"ivr": ScriptedEngine("ivr", permanent=set(fids[:3])), "llm1": ScriptedEngine("llm1", permanent={fids[10]})}
    with rec.attach(RunningTracker(settings)), ThreadedWorkers(settings, list(STAGES), engines):
        submit(settings, batch_start(801, 60, callback="http://127.0.0.1:9/hook"))
        row = wait_status(db_engine, 801)
        assert (row["status"], row["completedFiles"], row["failedFiles"]) == ("Completed", 56, 4)
        _counts_agree(db_engine, 801)
        control(settings, 801, "reaudit", fromStage="llm1")
        wait_status(db_engine, 801, ("InProgress",), timeout=30)
        wait_status(db_engine, 801, ("Completed",))
        _counts_agree(db_engine, 801)
        control(settings, 801, "resume")  # the four failed files run again and fail again
        time.sleep(2)
        wait_status(db_engine, 801)
        _counts_agree(db_engine, 801)

    slow = ScriptedEngine("lid", sleep_s=0.1, slow=True)
    with rec.attach(RunningTracker(settings)), ThreadedWorkers(settings, list(STAGES), {"lid": slow}):
        submit(settings, batch_start(802, 40))
        deadline = time.monotonic() + 60
        while (scalar(db_engine, "SELECT SUM(lidDone) FROM fileDistribution WHERE batchId = 802") or 0) < 3:
            assert time.monotonic() < deadline, "lid never started on batch 802"
            time.sleep(0.1)
        control(settings, 802, "cancel")
        wait_status(db_engine, 802, ("Cancelled",), timeout=30)
        _counts_agree(db_engine, 802)
        control(settings, 802, "resume")
        assert wait_status(db_engine, 802, ("Completed",), timeout=120)["completedFiles"] == 40
        _counts_agree(db_engine, 802)

    sent = " ".join(rec.statements)
    for what in ("FROM batchFileCounts", "status NOT IN ('Completed', 'Cancelled')", "sttDone = 1",
                 "eventType = 'progress'", "SET status = 'Cancelled'", "FROM webhookOutbox", "UPDATE batchStatus"):
        assert what in sent, f"the scenario did not exercise the query with {what!r}"
    assert _full_scans(db_engine, {"SELECT COUNT(*) FROM processing_logs WHERE stage_name = %(s)s": {"s": "lid"}}), \
        "the check must see a full scan when there is one"
    scans = _full_scans(db_engine, rec.statements)
    print(f"\n{len(rec.statements)} distinct tracker statements, each EXPLAINed")
    assert scans == [], "tracker queries that read a whole table:\n" + "\n".join(scans)
