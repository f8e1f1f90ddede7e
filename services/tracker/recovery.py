"""Recovery from the done flags: resume, reaudit and cancel (BatchControl events).

Resume re-emits only unfinished files, each to the first stage of its plan whose done flag
is 0, with a bumped generation so anything still in flight from before is ignored.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from sqlalchemy import Connection

from cofi.errors import DecodeError
from cofi.pipeline.codec import Codec
from cofi.pipeline.stages import REAUDIT_STAGES, stage
from cofi.pipeline.topics import Topics
from cofi.pipeline.transactions import Outgoing
from services.tracker import store
from services.tracker.emit import emission
from services.tracker.filestate import on_reaudit, on_resume, processing_log
from services.tracker.progress import LogRow

log = logging.getLogger(__name__)

CONTROL_LOG_TYPES = {"resume": "batch_resumed", "reaudit": "batch_reaudit", "cancel": "batch_cancelled"}


def resume_files(conn: Connection, codec: Codec, topics: Topics, batch: store.BatchRow, *,
                 bump: bool = True, max_bytes: int | None = None) -> list[Outgoing]:
    out: list[Outgoing] = []
    changed: list[store.FileRow] = []
    for row in store.unfinished_files(conn, batch.id):
        resumed, target = on_resume(row, batch.stages, bump=bump)
        if target is not None:
            if row.lastEvent is None:
                log.error("tracker: %s of batch %s has no stored event; cannot resume it", row.file, batch.id)
                continue
            try:
                event = codec.decode_as("FileEvent", row.lastEvent)
            except DecodeError as exc:
                log.error("tracker: stored event of %s unreadable (%s); cannot resume it", row.file, exc)
                continue
            em = emission(codec, topics, event, target, resumed.generation, max_bytes=max_bytes)
            out.append(em)
            resumed.lastEvent = em.value
        changed.append(resumed)
    store.save_files(conn, changed)
    if out or changed:
        store.set_batch_fields(conn, batch.id, status="InProgress", completedAt=None)
    log.info("tracker: batch %s: %d unfinished files re-emitted", batch.id, len(out))
    return out


class Recovery:
    def __init__(self, settings: Any, codec: Codec, topics: Topics, group: str) -> None:
        self.settings = settings
        self.codec = codec
        self.topics = topics
        self.group = group

    def handle(self, conn: Connection, control: dict[str, Any], touched: set[int],
               progress_cache: dict[tuple[int, int], dict[str, int]]) -> list[Outgoing]:
        batch_id, action, event_id = control["batchId"], control["action"], control["eventId"]
        batch = store.load_batches(conn, [batch_id]).get(batch_id)
        if batch is None or batch.status == "Rejected":
            log.warning("tracker: %s for unknown or rejected batch %s ignored", action, batch_id)
            return []
        events_seen = batch.config.setdefault("events", {})
        seen = events_seen.get(event_id)
        if seen is not None and seen != self.group:
            return []  # replay of history by another consumer group
        events_seen[event_id] = self.group
        touched.add(batch_id)
        log_row = LogRow(batch_id, None, CONTROL_LOG_TYPES[action], f"{batch_id}:{action}:{event_id}",
                         details=json.dumps({"fromStage": control.get("fromStage"),
                                             "rules": control.get("rules") is not None}))
        if action == "cancel":
            store.save_batch_config(conn, batch_id, batch.config)
            if batch.status in ("Completed", "Failed"):
                log_row.details = json.dumps({"ignored": f"batch already {batch.status}"})
                store.insert_exec_logs(conn, [log_row])
                return []
            store.set_batch_fields(conn, batch_id, status="Cancelled")
            store.cancel_files(conn, batch_id)
            store.insert_exec_logs(conn, [log_row])
            return []
        if action == "resume":
            store.save_batch_config(conn, batch_id, batch.config)
            if batch.status == "Cancelled":
                store.uncancel_files(conn, batch_id)
            store.insert_exec_logs(conn, [log_row])
            return resume_files(conn, self.codec, self.topics, batch, bump=seen is None,
                                max_bytes=self.settings.max_event_bytes)
        return self._reaudit(conn, batch, control, log_row, progress_cache, replay=seen is not None)

    def _reaudit(self, conn: Connection, batch: store.BatchRow, control: dict[str, Any], log_row: LogRow,
                 progress_cache: dict[tuple[int, int], dict[str, int]], replay: bool) -> list[Outgoing]:
        start = control.get("fromStage") or REAUDIT_STAGES[0]
        llm_stages = [s for s in batch.stages if stage(s).reaudit]
        if start not in llm_stages:
            log_row.eventType = "reaudit_rejected"
            log_row.details = json.dumps({"reason": f"stage {start} is not an LLM stage of this batch "
                                                    f"(plan: {','.join(batch.stages)}; re-auditable: "
                                                    f"{','.join(REAUDIT_STAGES)})"})
            store.save_batch_config(conn, batch.id, batch.config)
            store.insert_exec_logs(conn, [log_row])
            return []
        reset = llm_stages[llm_stages.index(start):]
        if not replay:
            batch.config["round"] = int(batch.config.get("round", 0)) + 1
        for key in ("rules", "questionnaire"):
            if control.get(key) is not None:
                batch.config[key] = control[key]
        store.save_batch_config(conn, batch.id, batch.config)
        store.insert_exec_logs(conn, [log_row])
        progress_cache.pop((batch.id, int(batch.config["round"])), None)
        out: list[Outgoing] = []
        rows = []
        before = batch.stages[:batch.stages.index(start)]
        unreadable = []
        for row in store.files_with_transcript(conn, batch.id):
            if row.lastEvent is None or not all(row.flags.get(s) for s in before):
                continue  # e.g. redact not done: its audit would read (and quote) the unredacted transcript
            try:
                event = self.codec.decode_as("FileEvent", row.lastEvent)
            except DecodeError as exc:  # one damaged row must not stop the reaudit of the others
                log.error("tracker: stored event of %s unreadable (%s); cannot reaudit it", row.file, exc)
                unreadable.append(processing_log(f"trk-reaudit-{row.fileId}-r{batch.config['round']}", batch.id,
                                                 row.file, start, "failed", f"not re-audited: its stored event is "
                                                 f"unreadable ({exc})", 0, None))
                continue
            event["rules"] = batch.config.get("rules")
            event["questionnaire"] = batch.config.get("questionnaire")
            row, target = on_reaudit(row, reset, bump=not replay)
            em = emission(self.codec, self.topics, event, target, row.generation,
                          max_bytes=self.settings.max_event_bytes)
            out.append(em)
            row.lastEvent = em.value
            rows.append(row)
        store.save_files(conn, rows)
        store.insert_processing_logs(conn, unreadable)
        store.clear_audit(conn, batch.id, [r.fileId for r in rows],
                          [c for s in reset for c in stage(s).result.AUDIT_COLUMNS])
        fields: dict[str, Any] = {store.STATUS_COL[s]: "Pending" for s in reset}
        store.set_batch_fields(conn, batch.id, status="InProgress", completedAt=None, **fields)
        log.info("tracker: batch %s reaudit from %s: %d files", batch.id, start, len(out))
        return out
