"""The stuck-file sweeper: files of a batch that has seen no event for STUCK_FILE_AFTER_S fail as stuck.

The last net under the stage workers' own deadlines: a file whose event was lost (a topic deleted or
expired, a worker bug) would otherwise keep its batch InProgress forever. A batch is judged as a whole
(no file of it moved for that long), so files merely queued behind others of a busy stage are not failed
while the stage works through the batch. A late event still heals a swept file (a failure stands only
against events of earlier stages). Times are the database's, so clocks of tracker hosts do not matter.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from sqlalchemy import Connection, Engine, text

from cofi.pipeline.stages import STAGES
from services.tracker import store
from services.tracker.filestate import on_file_failed

log = logging.getLogger(__name__)

STUCK = "StuckFile"


def stuck_batches(conn: Connection, after_s: float) -> list[int]:
    """InProgress batches with unfinished files and no file updated for `after_s` seconds."""
    return [int(b) for (b,) in conn.execute(text(
        "SELECT f.batchId FROM fileDistribution f JOIN batchStatus b ON b.id = f.batchId "
        "WHERE b.status = 'InProgress' GROUP BY f.batchId "
        "HAVING MAX(f.updatedAt) < CURRENT_TIMESTAMP(3) - INTERVAL :s SECOND "
        "AND SUM(f.status IN ('Pending', 'InProgress')) > 0"), {"s": after_s})]


def sweep_batch(conn: Connection, batch: store.BatchRow, after_s: float) -> int:
    """Fail the batch's unfinished files at the stage they are in; how many."""
    rows = [r for r in store.unfinished_files(conn, batch.id) if r.status in ("Pending", "InProgress")]
    failed, plogs, xlogs = [], [], []
    for row in rows:
        at = row.currentStage if row.currentStage in STAGES else (batch.stages or list(STAGES))[0]
        row, writes = on_file_failed(row, {
            "eventId": f"sweep-{row.fileId}-g{row.generation}", "stage": at, "errorType": STUCK,
            "message": f"no event for this file's batch in {after_s:.0f}s (STUCK_FILE_AFTER_S) while the file was "
                       f"at {at}: its event was lost or its stage is not running; `cofi resume` sends it again",
            "worker": "tracker", "durationMs": 0, "attempts": 0})
        failed.append(row)
        plogs += writes.processing_logs
        xlogs += writes.exec_logs
    store.save_files(conn, failed)
    store.insert_processing_logs(conn, plogs)
    store.insert_exec_logs(conn, xlogs)
    return len(failed)


class Sweeper:
    """Runs `sweep` every SWEEP_INTERVAL_S from the tracker's loop, in its own transaction."""

    def __init__(self, settings: object, db: Engine) -> None:
        self.after_s = float(settings.stuck_file_after_s)  # type: ignore[attr-defined]
        self.every_s = float(settings.sweep_interval_s)  # type: ignore[attr-defined]
        self.db = db
        self.next_at = time.monotonic() + self.every_s

    def maybe_sweep(self, evaluate: Callable[[Connection, set[int]], None]) -> int:
        """Sweep when due; `evaluate(conn, batch ids)` updates the batches' progress. Files failed."""
        if self.after_s <= 0 or time.monotonic() < self.next_at:
            return 0
        self.next_at = time.monotonic() + self.every_s
        swept = 0
        try:
            with self.db.begin() as conn:
                ids = stuck_batches(conn, self.after_s)
                for batch in store.load_batches(conn, ids).values():
                    n = sweep_batch(conn, batch, self.after_s)
                    log.warning("tracker: batch %s had no event for %.0fs: %d unfinished files failed as stuck",
                                batch.id, self.after_s, n)
                    swept += n
                evaluate(conn, set(ids))
        except Exception:  # noqa: BLE001 - a failed sweep is tried again next time; the poll loop goes on
            log.exception("tracker: sweep for stuck files failed; trying again in %.0fs", self.every_s)
            return 0
        return swept
