"""Exactly-once checks on a finished batch: its tables and every topic it went through (tests, bench/chaos)."""

from __future__ import annotations

import os
import time
from collections import Counter
from typing import Any

from confluent_kafka import Consumer, KafkaError, Message, TopicPartition
from sqlalchemy import Engine, text

from cofi.errors import DecodeError
from cofi.pipeline.codec import get_codec
from cofi.pipeline.kafka import consumer_config
from cofi.pipeline.stages import REGISTRY
from cofi.pipeline.stages import stage as stage_of
from cofi.pipeline.topics import Topics
from cofi.settings import Settings

# ---- reading the database -------------------------------------------------------------------------


def rows(db: Engine, sql: str, **params: Any) -> list[tuple]:
    with db.connect() as c:
        return [tuple(r) for r in c.execute(text(sql), params)]


def scalar(db: Engine, sql: str, **params: Any) -> Any:
    with db.connect() as c:
        return c.execute(text(sql), params).scalar()


def batch_row(db: Engine, batch_id: int) -> dict[str, Any] | None:
    with db.connect() as c:
        r = c.execute(text("SELECT * FROM batchStatus WHERE id = :b"), {"b": batch_id}).mappings().first()
    return dict(r) if r else None


# ---- reading topics -------------------------------------------------------------------------------

def read_topic(settings: Settings, topic: str, timeout: float = 60) -> list[bytes]:
    """Every committed message's value of a topic (read_committed, from the start to the end of each partition)."""
    return [m.value() for m in read_messages(settings, topic, timeout)]


def read_messages(settings: Settings, topic: str, timeout: float = 60) -> list[Message]:
    """Every committed message of a topic (key, value, headers), from the start to the end of each partition."""
    consumer = Consumer(consumer_config(settings, f"reader-{os.getpid()}-{time.monotonic_ns()}",
                                        **{"enable.partition.eof": True}))
    try:
        meta = consumer.list_topics(topic, timeout=10).topics[topic]
        parts = [TopicPartition(topic, p, 0) for p in meta.partitions]
        consumer.assign(parts)
        eof: set[int] = set()
        out: list[Message] = []
        deadline = time.monotonic() + timeout
        while len(eof) < len(parts):
            if time.monotonic() > deadline:
                raise AssertionError(f"{topic}: end not reached in {timeout:.0f}s (partitions at end: {sorted(eof)})")
            m = consumer.poll(0.5)
            if m is None:
                continue
            if m.error() is not None:
                if m.error().code() == KafkaError._PARTITION_EOF:
                    eof.add(m.partition())
                    continue
                raise AssertionError(f"{topic}: {m.error()}")
            out.append(m)
        return out
    finally:
        consumer.close()


def file_counts(settings: Settings, topic: str) -> Counter[str]:
    """Events per file id on a stage topic (messages that do not decode, hostile ones, are not counted)."""
    codec = get_codec()
    counts: Counter[str] = Counter()
    for v in read_topic(settings, topic):
        try:
            counts[codec.decode_as("FileEvent", v)["fileId"]] += 1
        except DecodeError:
            continue
    return counts


def failures_of(settings: Settings, file_ids: set[str]) -> list[dict[str, Any]]:
    """FileFailed events on the failed topic naming one of these files."""
    codec = get_codec()
    out = []
    for v in read_topic(settings, Topics(settings.topic_prefix).failed):
        try:
            record = codec.decode_as("FileFailed", v)
        except DecodeError:
            continue
        if record.get("fileId") in file_ids:
            out.append(record)
    return out


# ---- the exactly-once checks ----------------------------------------------------------------------

def _plan(row: dict[str, Any]) -> list[str]:
    """The batch's stage plan as stored in batchStatus.stages, in registry order."""
    names = set((row.get("stages") or "").split(","))
    return [s.name for s in REGISTRY if s.name in names]


def _expected_log_rows(settings: Settings, n: int, plan: list[str]) -> dict[tuple[str | None, str], int]:
    want: dict[tuple[str | None, str], int] = {(None, "batch_complete"): 1}
    interval = settings.progress_update_interval
    for s in (stage_of(name) for name in plan):
        want.update({(s.name, "stage_start"): 1, (s.name, "stage_complete"): 1})
        if settings.log_file_start_events:
            want[(s.name, "file_start")] = n
        if interval <= 1:
            want[(s.name, "file_complete")] = n
        elif n >= interval:
            want[(s.name, "progress")] = n // interval
    return want


def _table_problems(settings: Settings, db: Engine, batch_id: int, n: int, plan: list[str]) -> list[str]:
    problems: list[str] = []
    row = batch_row(db, batch_id)
    if row is None:
        return [f"no batchStatus row for {batch_id}"]
    if (row["status"], row["totalFiles"], row["completedFiles"], row["failedFiles"]) != ("Completed", n, n, 0):
        problems.append(f"batchStatus: status={row['status']} total={row['totalFiles']} "
                        f"completed={row['completedFiles']} failed={row['failedFiles']}")
    problems += [f"batchStatus.{s.status_column} = {row[s.status_column]}" for s in REGISTRY
                 if row[s.status_column] != ("Completed" if s.name in plan else "Skipped")]
    flags = rows(db, "SELECT COUNT(*), " + ", ".join(f"COALESCE(SUM({s.done_column}), 0)" for s in REGISTRY)
                 + ", COALESCE(SUM(status = 'Completed'), 0) FROM fileDistribution WHERE batchId = :b", b=batch_id)[0]
    want_flags = [n, *(n if s.name in plan else 0 for s in REGISTRY), n]
    if [int(v) for v in flags] != want_flags:
        problems.append(f"fileDistribution rows/flags/completed: {[int(v) for v in flags]}, want {want_flags}")
    per = rows(db, "SELECT stage_name, status, COUNT(*), COUNT(DISTINCT file) FROM processing_logs "
                   "WHERE batch_id = :b GROUP BY stage_name, status", b=str(batch_id))
    if {(s, st, int(c), int(d)) for s, st, c, d in per} != {(s, "success", n, n) for s in plan}:
        problems.append(f"processing_logs (stage, status, rows, files): {sorted(per)}")
    log_counts = {(s, e): int(c) for s, e, c in rows(
        db, "SELECT stage, eventType, COUNT(*) FROM batchExecutionLog WHERE batchId = :b GROUP BY 1, 2", b=batch_id)}
    want_log = _expected_log_rows(settings, n, plan)
    if log_counts != want_log:
        diff = {k: (log_counts.get(k), want_log.get(k)) for k in set(log_counts) | set(want_log)
                if log_counts.get(k) != want_log.get(k)}
        problems.append(f"batchExecutionLog counts (got, want): {diff}")
    counts = {k: int(v) for k, v in rows(db, "SELECT name, n FROM batchFileCounts WHERE batchId = :b AND n <> 0",
                                          b=batch_id)}
    want_counts = {"total": n, "completed": n, **{f"done:{s}": n for s in plan}}
    if counts != want_counts:
        problems.append(f"batchFileCounts: {counts}, want {want_counts}")
    audits = scalar(db, "SELECT COUNT(*) FROM auditResult WHERE batchId = :b AND verdict IS NOT NULL", b=batch_id)
    if audits != n:
        problems.append(f"auditResult rows with a verdict: {audits}, want {n}")
    return problems


def exactly_once_problems(settings: Settings, db: Engine, batch_id: int, n: int,
                          plan: list[str] | None = None) -> list[str]:
    """Everything that is not "each file once per stage, every flag set, every row once"; [] when all is right.

    For a batch of n files through `plan` (default: the batch's own plan, batchStatus.stages: every stage
    but the opt-in ones unless the batch asked for them), no file failing; the batchExecutionLog rows
    expected follow `settings.log_file_start_events` and `settings.progress_update_interval`. Only this
    batch's events are counted, so other batches may share the topics.
    """
    if plan is None:
        plan = _plan(batch_row(db, batch_id) or {})
    problems = _table_problems(settings, db, batch_id, n, plan)
    if problems and problems[0].startswith("no batchStatus row"):
        return problems
    topics = Topics(settings.topic_prefix)
    file_ids = {r[0] for r in rows(db, "SELECT fileId FROM fileDistribution WHERE batchId = :b", b=batch_id)}
    for topic in [*(topics.stage(s) for s in plan), topics.done]:
        counts = Counter({f: c for f, c in file_counts(settings, topic).items() if f in file_ids})  # this batch's
        dups = {f: c for f, c in counts.items() if c != 1}
        missing = file_ids - set(counts)
        if dups or missing or len(counts) != n:
            problems.append(f"{topic}: {len(counts)} files, {len(dups)} duplicated (e.g. {list(dups.items())[:3]}), "
                            f"{len(missing)} missing")
    failed = failures_of(settings, file_ids)
    if failed:
        problems.append(f"{topics.failed}: {len(failed)} events of this batch, want none")
    return problems


def stage_state(db: Engine, batch_id: int, name: str) -> tuple[str | None, int]:
    """(batchStatus.<stage>Status, number of files whose <stage>Done = 1)."""
    stage = stage_of(name)
    status = scalar(db, f"SELECT {stage.status_column} FROM batchStatus WHERE id = :b", b=batch_id)
    done = scalar(db, f"SELECT COALESCE(SUM({stage.done_column}), 0) FROM fileDistribution WHERE batchId = :b",
                  b=batch_id)
    return status, int(done or 0)
