"""The tracker: the only writer of the database.

Consumes every topic. Per poll: decode, apply every event in ONE database transaction
(idempotent writes), then one Kafka transaction with the events it emits (batch intake,
resume, reaudit) and the consumed offsets. A crash between the two replays the poll; the
database ignores what it already has and the emission happens once, because an uncommitted
Kafka transaction is invisible. What one event does to its file is `filestate`'s pure rules.

Each message is applied in isolation: when a poll fails for anything but an unusable database, it is
applied again message by message (a savepoint each), and a message that still fails is set aside
(`unapplied`: dead-letter topic, reason on its batch or file). Only an unusable database (down,
read-only, not migrated) rewinds the whole poll and retries; /healthz says so meanwhile.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from confluent_kafka import Consumer, Message
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from sqlalchemy import Connection

from cofi.db import engine_for, verdict_counts
from cofi.pipeline.codec import Codec, get_codec
from cofi.pipeline.kafka import instance_name
from cofi.pipeline.service import ServiceLoop, first_offsets
from cofi.pipeline.stages import DONE
from cofi.pipeline.topics import Topics
from cofi.pipeline.transactions import Outgoing, offsets_after
from cofi.settings import Settings
from services.tracker import store
from services.tracker.dberrors import database_unusable
from services.tracker.filestate import LogRules, charged_stage, on_file_event, on_file_failed, orphan_failure
from services.tracker.inbox import Decoded, decode
from services.tracker.intake import Intake
from services.tracker.progress import BatchView, LogRow, evaluate
from services.tracker.recovery import Recovery
from services.tracker.sweeper import Sweeper
from services.tracker.unapplied import Unapplied, dead_letter
from services.tracker.webhooks import WebhookSender

log = logging.getLogger(__name__)


class TrackerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.events = Counter("cofi_tracker_events", "Events applied by kind", ["kind"], registry=self.registry)
        self.write_seconds = Histogram("cofi_tracker_write_seconds", "DB transaction time per poll",
                                       registry=self.registry)
        self.db_errors = Counter("cofi_tracker_db_errors", "DB errors (poll retried)", registry=self.registry)
        self.dead_letters = Counter("cofi_tracker_dead_letters", "Messages set aside (not applicable), by kind",
                                    ["kind"], registry=self.registry)
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
        self.db = engine_for(settings, "tracker")
        self.log_rules = LogRules(file_start=settings.log_file_start_events,
                                  per_file=settings.progress_update_interval <= 1)
        self.progress_cache: dict[tuple[int, int], dict[str, int]] = {}
        self.consumed_total = 0
        self.last_message_at = time.monotonic()
        self.intake = Intake(settings, self.codec, self.topics, self.group)
        self.recovery = Recovery(settings, self.codec, self.topics, self.group)
        self.unapplied = Unapplied(self.group)
        self.sweeper = Sweeper(settings, self.db)
        self.webhooks = WebhookSender(self.db, settings)
        self.db_down: tuple[float, str] | None = None  # since when (monotonic) and why the database is unusable

    # ---- the service loop's hooks ---------------------------------------------------------------

    def consumer_options(self) -> dict[str, Any]:
        # Small fetches per partition, so a poll mixes every topic and partition (a file's events
        # of several stages meet in one transaction, and progress advances evenly) instead of
        # draining one partition of one topic at a time.
        return {"max.partition.fetch.bytes": 65536}

    def subscribe(self, consumer: Consumer) -> None:
        consumer.subscribe(self.topics.tracked(), on_revoke=lambda c, p: self.progress_cache.clear())

    def health_detail(self) -> tuple[bool, dict[str, Any]]:
        """Unhealthy while the database is unusable (every poll is retried) or every broker is unreachable."""
        detail: dict[str, Any] = {"service": "tracker", "group": self.group, "database": "ok", "kafka": "ok",
                                  "consumed": self.consumed_total,
                                  "lastMessageAgoS": round(time.monotonic() - self.last_message_at, 1)}
        if self.db_down is not None:
            detail["database"] = f"unusable for {time.monotonic() - self.db_down[0]:.0f}s: {self.db_down[1]}"
        if self.sender.outage.is_set():
            detail["kafka"] = "every broker unreachable"
        return self.db_down is None and not self.sender.outage.is_set(), detail

    def on_start(self) -> None:
        self.webhooks.start()
        log.info("tracker: group=%s db=%s", self.group, self.settings.database_url.split("@")[-1])

    def step(self) -> None:
        self.poll_once()
        self.sweeper.maybe_sweep(self._sweep)

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
        decoded = [decode(self.codec, self.topics, m) for m in msgs]
        try:
            started = time.monotonic()
            emissions = self._apply_poll(decoded)
            self.metrics.write_seconds.observe(time.monotonic() - started)
        except Exception as exc:
            if not database_unusable(exc):
                raise
            # Down, read-only, not migrated, connection lost: nothing was committed; re-read the poll.
            why = _first_line(exc)
            self.db_down = self.db_down or (time.monotonic(), why)
            self.metrics.db_errors.inc()
            log.error("tracker: database error, retrying the poll in 2s: %s", why)
            self.progress_cache.clear()  # it may count progress rows of the rolled-back transaction
            self.seek(first_offsets(msgs))
            self.stopping.wait(2)
            return 0
        self.db_down = None
        self._commit_kafka(msgs, emissions)
        self.webhooks.wake()
        return len(msgs)

    def _apply_poll(self, decoded: list[Decoded]) -> list[Outgoing]:
        """The poll in one transaction; if anything but an unusable database fails it, again in halves (a
        savepoint each, split until the failing messages stand alone), setting aside those that fail alone.
        One bad message among n costs about 2 log2(n) partial applies, not n single ones."""
        try:
            with self.db.begin() as conn:
                out = self.apply(conn, [d for d in decoded if d.error is None])
                return out + [self._set_aside(conn, d, d.error) for d in decoded if d.error is not None]
        except Exception as exc:
            if database_unusable(exc):
                raise
            log.warning("tracker: a message of this poll cannot be applied (%s: %s); isolating it",
                        type(exc).__name__, _first_line(exc))
        self.progress_cache.clear()
        with self.db.begin() as conn:
            out = [self._set_aside(conn, d, d.error) for d in decoded if d.error is not None]
            return out + self._apply_isolating(conn, [d for d in decoded if d.error is None])

    def _apply_isolating(self, conn: Connection, items: list[Decoded]) -> list[Outgoing]:
        if not items:
            return []
        try:
            with conn.begin_nested():
                return self.apply(conn, items)
        except Exception as exc:
            if database_unusable(exc):
                raise
            self.progress_cache.clear()  # it may count progress rows of the rolled-back savepoint
            if len(items) == 1:
                return [self._set_aside(conn, items[0], f"{type(exc).__name__}: {_first_line(exc)}")]
        half = len(items) // 2
        return self._apply_isolating(conn, items[:half]) + self._apply_isolating(conn, items[half:])

    def _set_aside(self, conn: Connection, d: Decoded, reason: str) -> Outgoing:
        """Record why `d` was not applied (its batch or file gets the reason); its dead letter."""
        self.metrics.dead_letters.labels(d.kind).inc()
        try:
            with conn.begin_nested():
                touched = self.unapplied.record(conn, d, reason)
                self._update_batches(conn, touched, {})
        except Exception as exc:
            if database_unusable(exc):
                raise
            self.progress_cache.clear()
            log.exception("tracker: cannot write why %s at %s was not applied", d.kind, d.where)
        return dead_letter(self.topics, d, reason, self.settings.max_event_bytes)

    def _sweep(self, conn: Connection, touched: set[int]) -> None:
        self._update_batches(conn, touched, {})

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
            self._apply_files(conn, self._find_batches(conn, files), touched, entered)
        self._update_batches(conn, touched, entered)
        return emissions

    def _find_batches(self, conn: Connection, items: list[Decoded]) -> list[Decoded]:
        """A FileFailed whose event did not decode names its file by the key only: find its batch."""
        lost = {d.record["fileId"] for d in items if d.kind == "failed" and d.record["batchId"] < 0
                and d.record.get("fileId")}
        found = store.batches_of_files(conn, lost) if lost else {}
        for d in items:
            if d.kind == "failed" and d.record["batchId"] < 0 and d.record.get("fileId") in found:
                d.record, d.by_key = {**d.record, "batchId": found[d.record["fileId"]]}, True
        return items

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
            if (r.get("generation", 0) < row.generation and not d.by_key) or batch.status == "Cancelled":
                continue  # superseded by a resume/reaudit, or cancelled
            touched.add(row.batchId)
            if d.kind == "failed":
                if d.by_key and row.status in ("Completed", "Cancelled"):
                    continue  # an unreadable duplicate of a finished file: nothing left to fail
                if d.by_key:
                    r = {**r, "stage": charged_stage(row, r["stage"])}
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
                    "failedFiles": upd.failed_files, "totalFiles": b.totalFiles,
                    "verdicts": verdict_counts(conn, b.id)})
            if upd.status not in ("Completed", "Failed", "Cancelled"):
                open_count += 1
        self.metrics.batches_open.set(open_count)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:500] if text else ""
