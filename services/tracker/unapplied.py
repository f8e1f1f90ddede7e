"""What the tracker does with a message it cannot apply (undecodable, from an unknown schema, or one whose
rows the database refuses): the message goes to the dead-letter topic as it came, with the reason in its
headers, and the reason goes where operators look, without touching anything else:

- a BatchStart: its batch (id from the record, else from the message key) gets a `Rejected` row with the
  reason, unless the id is a running batch's (then only a `batch_rejected` batchExecutionLog row);
- a BatchControl: a `control_rejected` row and the batch's `reason`;
- a FileEvent or FileFailed: its file (from the record, else its key, the file id) fails at its stage with
  the reason in processing_logs and a `file_error` row, so its batch can still finish.

Deterministic ids (from the message's topic, partition and offset) keep all of it idempotent on replay.
"""

from __future__ import annotations

import hashlib
import json
import logging

from sqlalchemy import Connection, text

from cofi.pipeline.batchcheck import MAX_BIGINT, shown
from cofi.pipeline.events import original_or_summary
from cofi.pipeline.stages import STAGES
from cofi.pipeline.topics import Topics
from cofi.pipeline.transactions import Outgoing
from services.tracker import store
from services.tracker.filestate import charged_stage, on_file_failed
from services.tracker.inbox import Decoded
from services.tracker.progress import LogRow

log = logging.getLogger(__name__)

UNAPPLIED = "UnappliedEvent"  # FileFailed.errorType-like name of a file failed by the tracker
MAX_REASON = 2000


def dead_letter(topics: Topics, d: Decoded, reason: str, max_bytes: int) -> Outgoing:
    """The message as it came (a summary when over `max_bytes`), the reason and its origin in headers."""
    m = d.msg
    headers = [("cofi.reason", shown(reason)[:MAX_REASON].encode()), ("cofi.kind", d.kind.encode()),
               ("cofi.topic", m.topic().encode()), ("cofi.partition", str(m.partition()).encode()),
               ("cofi.offset", str(m.offset()).encode())]
    return Outgoing(topics.dead_letter, m.key(), original_or_summary(m.value() or b"", d.record, max_bytes), headers)


def _origin_id(d: Decoded) -> str:
    """A stable id for this message (its place in the log), for rows keyed by event id."""
    return hashlib.sha1(d.where.encode()).hexdigest()[:32]


class Unapplied:
    def __init__(self, group: str) -> None:
        self.group = group

    def record(self, conn: Connection, d: Decoded, reason: str) -> set[int]:
        """Write the reason where it belongs; the batches whose progress must be evaluated again."""
        reason = shown(reason)[:MAX_REASON]
        log.error("tracker: %s at %s not applied: %s", d.kind, d.where, reason)
        if d.kind in ("start", "control"):
            self._batch(conn, d, reason)
            return set()
        return self._file(conn, d, reason)

    def _batch_id(self, d: Decoded) -> int | None:
        value = (d.record or {}).get("batchId")
        if isinstance(value, int):
            return value
        try:  # BatchStart and BatchControl are keyed by batch id
            value = int(d.key or "")
        except ValueError:
            return None
        return value if 0 < value <= MAX_BIGINT else None

    def _batch(self, conn: Connection, d: Decoded, reason: str) -> None:
        batch_id = self._batch_id(d)
        if batch_id is None:
            log.error("tracker: %s at %s names no batch (key %r): kept on the dead-letter topic only",
                      d.kind, d.where, d.key)
            return
        event = (d.record or {}).get("eventId") or f"at-{_origin_id(d)}"
        existing = store.load_batches(conn, [batch_id]).get(batch_id)
        details = json.dumps({"reason": reason, "eventId": event, "at": d.where})
        if d.kind == "start":
            if existing is None or existing.status == "Rejected":
                store.insert_batch(conn, store.BatchRow(
                    id=batch_id, status="Rejected", stage_status=dict.fromkeys(STAGES, "Pending"), stages=[],
                    totalFiles=0, contentHash=None, callback=None, config={"events": {event: self.group}}),
                    reason=reason)
            store.insert_exec_logs(conn, [LogRow(batch_id, None, "batch_rejected", f"{batch_id}:rejected:{event}",
                                                 details=details)])
            return
        if existing is None:
            return
        action = (d.record or {}).get("action") or "a command"
        store.insert_exec_logs(conn, [LogRow(batch_id, None, "control_rejected", f"{batch_id}:control_rejected:{event}",
                                             details=details)])
        conn.execute(text("UPDATE batchStatus SET reason = :r WHERE id = :b"),
                     {"r": f"{action} could not be applied: {reason}", "b": batch_id})

    def _file(self, conn: Connection, d: Decoded, reason: str) -> set[int]:
        rec = d.record or {}
        file_id = rec.get("fileId") or d.key
        batch_id = rec.get("batchId") if isinstance(rec.get("batchId"), int) and rec["batchId"] >= 0 else None
        if batch_id is None and file_id:
            batch_id = store.batches_of_files(conn, [file_id]).get(file_id)
        row = store.load_files(conn, [(batch_id, file_id)]).get((batch_id, file_id)) if batch_id is not None else None
        batch = store.load_batches(conn, [batch_id]).get(batch_id) if row is not None else None
        if row is None or batch is None:
            log.error("tracker: %s at %s names no known file (key %r): kept on the dead-letter topic only",
                      d.kind, d.where, d.key)
            return set()
        if row.status in ("Completed", "Cancelled") or batch.status == "Cancelled":
            return set()  # nothing left to fail: the file (or batch) is done
        at = rec["stage"] if d.kind == "failed" and d.record is not None else charged_stage(row, d.stage)
        failure = {"eventId": f"trk-x-{_origin_id(d)}", "stage": at, "errorType": UNAPPLIED,
                   "message": f"{reason} (at {d.where})", "worker": "tracker", "durationMs": 0, "attempts": 0}
        row, writes = on_file_failed(row, failure)
        store.save_files(conn, [row])
        store.insert_processing_logs(conn, writes.processing_logs)
        store.insert_exec_logs(conn, writes.exec_logs)
        return {batch_id}
