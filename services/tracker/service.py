"""The tracker: the only writer of the database.

Consumes every topic. Per poll: decode, apply every event in ONE database transaction
(idempotent writes), then one Kafka transaction with the events it emits (batch intake,
resume, reaudit) and the consumed offsets. A crash between the two replays the poll; the
database ignores what it already has and the emission happens once, because an uncommitted
Kafka transaction is invisible. What one event does to its file is `filestate`'s pure rules.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, Message
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError, OperationalError

from cofi.db import make_engine
from cofi.errors import DecodeError
from cofi.pipeline.codec import Codec, get_codec
from cofi.pipeline.kafka import instance_name
from cofi.pipeline.service import ServiceLoop, first_offsets
from cofi.pipeline.stages import DONE
from cofi.pipeline.topics import Topics
from cofi.pipeline.transactions import Outgoing, offsets_after
from cofi.settings import Settings
from services.tracker import store
from services.tracker.filestate import LogRules, on_file_event, on_file_failed, orphan_failure
from services.tracker.intake import Intake
from services.tracker.progress import BatchView, LogRow, evaluate
from services.tracker.recovery import Recovery
from services.tracker.webhooks import WebhookSender

log = logging.getLogger(__name__)


@dataclass
class Decoded:
    msg: Message
    kind: str  # start | control | file | failed
    record: dict[str, Any] | None
    stage: str | None = None  # the stage topic the FileEvent arrived on


class TrackerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.events = Counter("cofi_tracker_events", "Events applied by kind", ["kind"], registry=self.registry)
        self.write_seconds = Histogram("cofi_tracker_write_seconds", "DB transaction time per poll",
                                       registry=self.registry)
        self.db_errors = Counter("cofi_tracker_db_errors", "DB errors (poll retried)", registry=self.registry)
        self.batches_open = Gauge("cofi_tracker_open_batches", "Batches not finished", registry=self.registry)


class Tracker(ServiceLoop):
    def __init__(self, settings: Settings, *, group: str | None = None, codec: Codec | None = None,
                 serve_metrics: bool = True) -> None:
        self.metrics = TrackerMetrics()
        group = group or f"{settings.topic_prefix}-tracker"
        super().__init__(settings, who="tracker", group=group, transactional_id=f"{group}-{instance_name(settings)}",
                         registry=self.metrics.registry, metrics_port=settings.metrics_port_for("tracker"),
                         serve_metrics=serve_metrics)
        self.codec = codec or get_codec()
        self.topics = Topics(settings.topic_prefix)
        self.db = make_engine(settings.database_url)
        self.log_rules = LogRules(file_start=settings.log_file_start_events,
                                  per_file=settings.progress_update_interval <= 1)
        self.progress_cache: dict[tuple[int, int], dict[str, int]] = {}
        self.consumed_total = 0
        self.last_message_at = time.monotonic()
        self.intake = Intake(settings, self.codec, self.topics, self.group)
        self.recovery = Recovery(settings, self.codec, self.topics, self.group)
        self.webhooks = WebhookSender(self.db)

    # ---- the service loop's hooks ---------------------------------------------------------------

    def consumer_options(self) -> dict[str, Any]:
        # Small fetches per partition, so a poll mixes every topic and partition (a file's events
        # of several stages meet in one transaction, and progress advances evenly) instead of
        # draining one partition of one topic at a time.
        return {"max.partition.fetch.bytes": 65536}

    def subscribe(self, consumer: Consumer) -> None:
        consumer.subscribe(self.topics.all(), on_revoke=lambda c, p: self.progress_cache.clear())

    def health_detail(self) -> tuple[bool, dict[str, Any]]:
        return True, {"service": "tracker", "group": self.group}

    def on_start(self) -> None:
        self.webhooks.start()
        log.info("tracker: group=%s db=%s", self.group, self.settings.database_url.split("@")[-1])

    def step(self) -> None:
        self.poll_once()

    def before_close(self) -> None:
        self.webhooks.stop()

    def after_close(self) -> None:
        self.db.dispose()

    # ---- one poll --------------------------------------------------------------

    def poll_once(self, max_messages: int = 2000, timeout: float = 0.5) -> int:
        assert self.consumer is not None
        msgs = self.usable(self.consumer.consume(max_messages, timeout))
        if not msgs:
            return 0
        self.consumed_total += len(msgs)
        self.last_message_at = time.monotonic()
        decoded = [self._decode(m) for m in msgs]
        try:
            started = time.monotonic()
            with self.db.begin() as conn:
                emissions = self.apply(conn, decoded)
            self.metrics.write_seconds.observe(time.monotonic() - started)
        except (OperationalError, DBAPIError) as exc:
            # The DB is down or lost the connection: nothing was committed; re-read the poll.
            self.metrics.db_errors.inc()
            log.error("tracker: database error, retrying the poll in 2s: %s", str(exc).splitlines()[0])
            self.progress_cache.clear()  # it may count progress rows of the rolled-back transaction
            self.seek(first_offsets(msgs))
            self.stopping.wait(2)
            return 0
        self._commit_kafka(msgs, emissions)
        self.webhooks.wake()
        return len(msgs)

    def _decode(self, m: Message) -> Decoded:
        topic = m.topic()
        kinds = {self.topics.batch_start: ("start", "BatchStart"), self.topics.batch_control: ("control", "BatchControl"),
                 self.topics.failed: ("failed", "FileFailed")}
        kind, name = kinds.get(topic, ("file", "FileEvent"))
        try:
            record = self.codec.decode_as(name, m.value())
        except DecodeError as exc:
            # A stage worker turns its own undecodable input into a FileFailed; here we only note it.
            log.warning("tracker: undecodable %s at %s[%d]@%d: %s", name, topic, m.partition(), m.offset(), exc)
            record = None
        return Decoded(m, kind, record, self.topics.stage_of(topic))

    def _commit_kafka(self, msgs: list[Message], emissions: list[Outgoing]) -> None:
        """The poll's emissions and offsets in one Kafka transaction, after the DB commit.
        Aborted: re-read the poll (the DB part is idempotent, the emissions were never visible)."""
        assert self.consumer is not None
        offsets = offsets_after((m.topic(), m.partition(), m.offset()) for m in msgs)
        if not self.sender.commit(emissions, offsets, self.consumer.consumer_group_metadata()):
            self.seek(first_offsets(msgs))

    # ---- applying events ---------------------------------------------------------

    def apply(self, conn: Connection, decoded: list[Decoded]) -> list[Outgoing]:
        """Apply one poll's events inside the caller's DB transaction; return events to emit."""
        emissions: list[Outgoing] = []
        touched: set[int] = set()
        entered: dict[int, set[str]] = {}
        for d in decoded:
            if d.record is None:
                continue
            self.metrics.events.labels(d.kind).inc()
            if d.kind == "start":
                emissions += self.intake.handle(conn, d.record, touched)
            elif d.kind == "control":
                emissions += self.recovery.handle(conn, d.record, touched, self.progress_cache)
        files = [d for d in decoded if d.record is not None and d.kind in ("file", "failed")]
        if files:
            self._apply_files(conn, files, touched, entered)
        self._update_batches(conn, touched, entered)
        return emissions

    def _apply_files(self, conn: Connection, items: list[Decoded], touched: set[int],
                     entered: dict[int, set[str]]) -> None:
        keys = {(d.record["batchId"], d.record["fileId"]) for d in items if d.record.get("fileId")}
        rows = store.load_files(conn, keys)
        batches = store.load_batches(conn, {b for b, _ in keys})
        plogs: list[dict[str, Any]] = []
        xlogs: list[LogRow] = []
        audits: list[dict[str, Any]] = []
        for d in items:
            r = d.record
            if d.kind == "failed" and (r["batchId"] < 0 or not r.get("fileId")):
                plogs.append(orphan_failure(r))
                continue
            key = (r["batchId"], r["fileId"])
            batch, row = batches.get(r["batchId"]), rows.get(key)
            if batch is None or row is None:
                log.warning("tracker: event for unknown file %s of batch %s ignored", r.get("file"), r["batchId"])
                continue
            if r.get("generation", 0) < row.generation or batch.status == "Cancelled":
                continue  # superseded by a resume/reaudit, or cancelled
            touched.add(row.batchId)
            if d.kind == "failed":
                rows[key], writes = on_file_failed(row, r)
            else:
                rows[key], writes = on_file_event(row, r, d.msg.value(), d.stage or DONE, self.log_rules)
            if writes.entered is not None:
                entered.setdefault(row.batchId, set()).add(writes.entered)
            plogs += writes.processing_logs
            xlogs += writes.exec_logs
            if writes.audit is not None:
                audits.append(writes.audit)
        store.save_files(conn, [r for r in rows.values() if r.dirty])
        store.insert_processing_logs(conn, plogs)
        store.insert_exec_logs(conn, xlogs)
        store.upsert_audit(conn, audits)

    def _update_batches(self, conn: Connection, touched: set[int], entered: dict[int, set[str]]) -> None:
        if not touched:
            return
        batches = store.load_batches(conn, touched)
        open_count = 0
        for b in batches.values():
            if b.status in ("Rejected",):
                continue
            round_ = int(b.config.get("round", 0))
            interval = max(1, self.settings.progress_update_interval)
            cache_key = (b.id, round_)
            if cache_key not in self.progress_cache:
                counts = store.progress_logged(conn, b.id, round_)
                self.progress_cache[cache_key] = {s: n * interval for s, n in counts.items()}
            view = BatchView(batch_id=b.id, plan=b.stages, status=b.status, stage_status=b.stage_status,
                             round=round_, progress_logged=self.progress_cache[cache_key],
                             entered=entered.get(b.id, set()))
            upd = evaluate(view, store.batch_counts(conn, b.id), interval)
            store.insert_exec_logs(conn, upd.logs)
            store.update_batch(conn, b.id, status=upd.status, stage_status=upd.stage_status,
                               completed=upd.completed_files, failed=upd.failed_files, finished=upd.finished)
            self.progress_cache[cache_key] = upd.progress_logged
            if upd.finished and b.callback:
                store.insert_webhook(conn, b.id, f"batch_complete:r{round_}", b.callback, {
                    "batchId": b.id, "status": upd.status, "completedFiles": upd.completed_files,
                    "failedFiles": upd.failed_files, "totalFiles": b.totalFiles})
            if upd.status not in ("Completed", "Failed", "Cancelled"):
                open_count += 1
        self.metrics.batches_open.set(open_count)

