"""The tracker: the only writer of the database.

Consumes every topic. Per poll: decode, apply every event in ONE database transaction
(idempotent writes), then one Kafka transaction with the events it emits (batch intake,
resume, reaudit) and the consumed offsets. A crash between the two replays the poll; the
database ignores what it already has and the emission happens once, because an uncommitted
Kafka transaction is invisible.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError, OperationalError

from cofi.db import make_engine
from cofi.pipeline.codec import Codec, DecodeError, get_codec
from cofi.pipeline.kafka import consumer_config, instance_name
from cofi.pipeline.metrics import HealthServer, Heartbeat
from cofi.pipeline.topics import DONE, STAGES, Topics
from cofi.pipeline.transactions import Outgoing, TransactionalSender, offsets_after
from cofi.settings import Settings
from services.tracker import store
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


class Tracker:
    def __init__(self, settings: Settings, *, group: str | None = None, codec: Codec | None = None,
                 serve_metrics: bool = True) -> None:
        self.settings = settings
        self.codec = codec or get_codec()
        self.topics = Topics(settings.topic_prefix)
        self.group = group or f"{settings.topic_prefix}-tracker"
        self.db = make_engine(settings.database_url)
        self.metrics = TrackerMetrics()
        self.heartbeat = Heartbeat()
        self.stopping = threading.Event()
        self.serve_metrics = serve_metrics
        self.consumer: Consumer | None = None
        self.sender = TransactionalSender(settings, f"{self.group}-{instance_name(settings)}", "tracker",
                                          self.stopping)
        self.progress_cache: dict[tuple[int, int], dict[str, int]] = {}
        self.consumed_total = 0
        self.last_message_at = time.monotonic()
        self.intake = Intake(settings, self.codec, self.topics, self.group)
        self.recovery = Recovery(settings, self.codec, self.topics, self.group)
        self.webhooks = WebhookSender(self.db)
        self.health: HealthServer | None = None

    # ---- lifecycle ----------------------------------------------------------

    def install_signal_handlers(self) -> None:
        def stop(signum: int, _frame: object) -> None:
            log.info("tracker: signal %d, stopping after the current poll", signum)
            self.stopping.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)

    def _healthy(self) -> tuple[bool, dict]:
        return self.heartbeat.fresh() and self.consumer is not None, {"service": "tracker", "group": self.group}

    def _connect(self) -> None:
        if not self.sender.connect():
            return
        self.consumer = Consumer(consumer_config(self.settings, self.group, error_cb=self.sender.error_cb))
        topics = [self.topics.batch_start, self.topics.batch_control, *(self.topics.stage(s) for s in STAGES),
                  self.topics.done, self.topics.failed]
        self.consumer.subscribe(topics, on_revoke=lambda c, p: self.progress_cache.clear())

    def run(self) -> None:
        if self.serve_metrics:
            self.health = HealthServer(self.settings.metrics_port_for("tracker"), self.metrics.registry,
                                       self._healthy).start()
        self.webhooks.start()
        self._connect()
        log.info("tracker: group=%s db=%s", self.group, self.settings.database_url.split("@")[-1])
        try:
            while not self.stopping.is_set():
                self.heartbeat.beat()
                if self.sender.renew_after_outage():
                    continue
                self.poll_once()
        finally:
            self.close()

    def close(self) -> None:
        self.webhooks.stop()
        if self.consumer is not None:
            self.consumer.close()
            self.consumer = None
        self.sender.close()
        if self.health is not None:
            self.health.stop()
        self.db.dispose()

    # ---- one poll --------------------------------------------------------------

    def poll_once(self, max_messages: int = 2000, timeout: float = 0.5) -> int:
        assert self.consumer is not None
        msgs = [m for m in self.consumer.consume(max_messages, timeout) if self._usable(m)]
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
            self._rewind(msgs)
            self.stopping.wait(2)
            return 0
        self._commit_kafka(msgs, emissions)
        self.webhooks.wake()
        return len(msgs)

    def _usable(self, m: Message) -> bool:
        err = m.error()
        if err is None:
            return True
        if err.code() != KafkaError._PARTITION_EOF:
            log.warning("tracker: consumer error: %s", err)
        return False

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
            self._rewind(msgs)

    def _rewind(self, msgs: list[Message]) -> None:
        assert self.consumer is not None
        first: dict[tuple[str, int], int] = {}
        for m in msgs:
            key = (m.topic(), m.partition())
            first[key] = min(first.get(key, m.offset()), m.offset())
        for (t, p), o in first.items():
            try:
                self.consumer.seek(TopicPartition(t, p, o))
            except KafkaException as exc:
                log.warning("tracker: seek %s[%d] failed (%s); the group will re-read after a rebalance", t, p, exc)

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
        file_start = self.settings.log_file_start_events
        per_file = self.settings.progress_update_interval <= 1
        for d in items:
            r = d.record
            if d.kind == "failed" and (r["batchId"] < 0 or not r.get("fileId")):
                plogs.append(_plog(r["eventId"], str(r["batchId"]), r.get("file") or "<undecodable>", r["stage"],
                                   "failed", f"{r['errorType']}: {r['message']} (at {r['originalTopic']}"
                                   f"[{r['originalPartition']}]@{r['originalOffset']})", r["durationMs"], r["worker"]))
                continue
            key = (r["batchId"], r["fileId"])
            batch = batches.get(r["batchId"])
            row = rows.get(key)
            if batch is None or row is None:
                log.warning("tracker: event for unknown file %s of batch %s ignored", r.get("file"), r["batchId"])
                continue
            if r.get("generation", 0) < row.generation or batch.status == "Cancelled":
                continue  # superseded by a resume/reaudit, or cancelled
            touched.add(row.batchId)
            if d.kind == "failed":
                stage = r["stage"]
                if row.status == "Failed" and row.failedStage == stage:
                    continue
                row.status, row.failedStage = "Failed", stage
                row.error = f"{r['errorType']}: {r['message']}"[:8000]
                row.worker = r["worker"]
                row.dirty = True
                entered.setdefault(row.batchId, set()).add(stage)
                plogs.append(_plog(r["eventId"], str(row.batchId), row.file, stage, "failed", row.error,
                                   r["durationMs"], r["worker"]))
                xlogs.append(LogRow(row.batchId, stage, "file_error", f"fe:{r['eventId']}", row.file,
                                    json.dumps({"error": row.error, "attempts": r["attempts"]})))
                continue
            arrived = d.stage or DONE
            plan = r["stages"]
            if arrived != DONE:
                entered.setdefault(row.batchId, set()).add(arrived)
                if file_start:
                    xlogs.append(LogRow(row.batchId, arrived, "file_start", f"fs:{r['eventId']}", row.file))
            finished = None
            if not r["eventId"].startswith("trk-"):
                idx = plan.index(arrived) if arrived in plan else len(plan)
                finished = plan[idx - 1] if idx > 0 else None
            if finished is not None:
                if row.flags.get(finished):
                    row.advance(arrived, d.msg.value())
                    continue  # already counted (a replay)
                res = r["results"].get(finished) or {}
                row.flags[finished] = 1
                row.worker = res.get("worker") or row.worker
                plogs.append(_plog(r["eventId"], str(row.batchId), row.file, finished, "success", None,
                                   res.get("durationMs", 0), res.get("worker")))
                if per_file:
                    xlogs.append(LogRow(row.batchId, finished, "file_complete", f"fc:{r['eventId']}", row.file))
                audit = _audit_columns(finished, res)
                if audit:
                    audits.append({"batchId": row.batchId, "fileId": row.fileId, "file": row.file, **audit})
            failed_later = row.status == "Failed" and store.ORDER.get(row.failedStage or "", -1) >= store.ORDER[arrived]
            row.advance(arrived, d.msg.value())
            if not failed_later:  # a failure further on, read earlier in this poll, stands
                # Events of one file arrive from several topics in any order: the furthest point decides.
                row.status = "Completed" if row.currentStage == DONE else "InProgress"
                row.failedStage, row.error = None, None
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
            upd = evaluate(view, store.aggregates(conn, b.id), interval)
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


def _plog(event_id: str, batch_id: str, file: str, stage: str, status: str, error: str | None,
          duration_ms: int, worker: str | None) -> dict[str, Any]:
    return {"eventId": event_id, "batch_id": batch_id, "file": file, "stage_name": stage, "status": status,
            "error": error, "duration": (duration_ms or 0) / 1000.0, "worker": worker}


def _audit_columns(stage: str, res: dict[str, Any]) -> dict[str, Any]:
    """The auditResult columns a finished stage fills."""
    if stage == "ivr":
        return {"ivrEndSec": res.get("ivrEndSec")}
    if stage == "lid":
        return {"language": res.get("language"), "languageProbability": res.get("probability")}
    if stage == "stt":
        return {"transcriptPath": res.get("transcriptPath"), "transcript": res.get("text"),
                "speech": json.dumps(res.get("speech"))}
    if stage == "llm1":
        return {"answers": json.dumps(res.get("answers", [])), "tradeChecks": json.dumps(res.get("tradeChecks", []))}
    if stage == "llm2":
        return {"normalizedAnswers": json.dumps(res.get("answers", [])), "ruleResults": json.dumps(res.get("rules", [])),
                "score": res.get("score"), "verdict": res.get("verdict"), "reasons": json.dumps(res.get("reasons", []))}
    return {}
