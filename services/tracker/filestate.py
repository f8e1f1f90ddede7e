"""The per-file state machine of the tracker, as pure functions.

A file's state is its fileDistribution row (`FileRow`). Each function takes the state and one
thing that happened to the file and returns the new state plus the rows to write; none of them
does I/O, so the rules are tested on their own (`tests/test_filestate.py`), including the one the
pipeline depends on: events of one file arrive from several topics in any order, and may be read
twice (replay after a crash), yet any interleaving and duplication ends in the same rows.

    tracker (intake/resume/reaudit) ─► FileEvent(emitter=tracker) on stage S: file entered S
    stage worker of S               ─► FileEvent(emitter=stage, completedStage=S) on the next topic:
                                       S done (flag, processing_logs success, file_complete, audit)
    stage worker of S               ─► FileFailed(stage=S): failed at S (processing_logs failed, file_error)

Status: InProgress while moving, Completed once an event reached `done`, Failed when a stage
failed; a failure stands against events of earlier stages read after it. Events written before
FileEvent v3 carry no `emitter`: the stage completed is inferred from the topic as it used to be.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

from cofi.pipeline.events import EMITTER_STAGE, EMITTER_TRACKER
from cofi.pipeline.stages import DONE, STAGES, audit_owner, order, stage
from services.tracker.progress import LogRow

PENDING, IN_PROGRESS, COMPLETED, FAILED, CANCELLED = "Pending", "InProgress", "Completed", "Failed", "Cancelled"
LEGACY_TRACKER_PREFIX = "trk-"  # event ids of the tracker's emissions before FileEvent v3


@dataclass
class FileRow:
    """One fileDistribution row: the state of a file."""

    batchId: int
    fileId: str
    file: str
    flags: dict[str, int]
    status: str = PENDING
    currentStage: str | None = None
    failedStage: str | None = None
    error: str | None = None
    generation: int = 0
    worker: str | None = None
    lastEvent: bytes | None = None
    metadata: dict[str, Any] | None = None
    dirty: bool = False
    # What the row added to its batch's counts when it was read (None: a new row). Saving a row adds
    # counts_of(row) - counted to the batch's counts, so no poll has to scan the batch's rows.
    counted: dict[str, int] | None = field(default=None, compare=False, repr=False)


def counts_of(row: FileRow) -> dict[str, int]:
    """What one file adds to its batch's counts: `total`, `done:<stage>` per flag set, its status
    (`completed`, `failed` + `failed:<stage>`, `cancelled`). Summed over a batch, they are the
    aggregates the progress rules need (`progress.Aggregates.from_counts`)."""
    out = {"total": 1, **{f"done:{s}": 1 for s, v in row.flags.items() if v}}
    if row.status == COMPLETED:
        out["completed"] = 1
    elif row.status == FAILED:
        out["failed"] = 1
        if row.failedStage:
            out[f"failed:{row.failedStage}"] = 1
    elif row.status == CANCELLED:
        out["cancelled"] = 1
    return out


def counts_delta(row: FileRow) -> dict[str, int]:
    """How saving `row` changes its batch's counts (non-zero entries only)."""
    now, before = counts_of(row), row.counted or {}
    return {k: d for k in now.keys() | before.keys() if (d := now.get(k, 0) - before.get(k, 0))}


@dataclass(frozen=True)
class LogRules:
    """The seed's logging settings as they shape one file's rows."""

    file_start: bool = True  # LOG_FILE_START_EVENTS
    per_file: bool = True  # PROGRESS_UPDATE_INTERVAL <= 1: a file_complete row per file


@dataclass
class Writes:
    """Rows one transition adds (all idempotent: processing_logs by eventId, batchExecutionLog by
    dedupKey, auditResult columns by stage), and the stage the file showed activity in."""

    processing_logs: list[dict[str, Any]] = field(default_factory=list)
    exec_logs: list[LogRow] = field(default_factory=list)
    audit: dict[str, Any] | None = None
    entered: str | None = None


@dataclass(frozen=True)
class Arrival:
    """What a FileEvent says: the stage whose topic it is on (DONE at the end) and the stage it completed."""

    entered: str
    completed: str | None


def arrival(record: dict[str, Any], topic_stage: str) -> Arrival:
    """Read the event's explicit transition; fall back to the topic for events written before v3."""
    emitter = record.get("emitter")
    if emitter == EMITTER_STAGE:
        return Arrival(topic_stage, record.get("completedStage"))
    if emitter == EMITTER_TRACKER or record["eventId"].startswith(LEGACY_TRACKER_PREFIX):
        return Arrival(topic_stage, None)
    plan = record["stages"]  # legacy stage output: the stage before the topic's in the plan finished
    idx = plan.index(topic_stage) if topic_stage in plan else len(plan)
    return Arrival(topic_stage, plan[idx - 1] if idx > 0 else None)


def processing_log(event_id: str, batch_id: int | str, file: str, stage_name: str, status: str,
                   error: str | None, duration_ms: int, worker: str | None) -> dict[str, Any]:
    return {"eventId": event_id, "batch_id": str(batch_id), "file": file, "stage_name": stage_name,
            "status": status, "error": error, "duration": (duration_ms or 0) / 1000.0, "worker": worker}


def on_file_event(row: FileRow, record: dict[str, Any], raw: bytes, topic_stage: str,
                  rules: LogRules) -> tuple[FileRow, Writes]:
    """A FileEvent of the row's generation arrived on `topic_stage`'s topic."""
    arr = arrival(record, topic_stage)
    row = replace(row, flags=dict(row.flags), dirty=True)
    w = Writes()
    if arr.entered != DONE:
        w.entered = arr.entered
        if rules.file_start:
            w.exec_logs.append(LogRow(row.batchId, arr.entered, "file_start", f"fs:{record['eventId']}", row.file))
    done = arr.completed
    raw_result = record["results"].get(done) if done is not None else None
    result = stage(done).result.model_validate(raw_result) if raw_result is not None else None
    if done is not None and not row.flags.get(done):
        row.flags[done] = 1
        w.processing_logs.append(processing_log(
            record["eventId"], row.batchId, row.file, done, "success", None,
            result.durationMs if result else 0, result.worker if result else None))
        if rules.per_file:
            w.exec_logs.append(LogRow(row.batchId, done, "file_complete", f"fc:{record['eventId']}", row.file))
        owner = audit_owner(record["stages"])  # a later stage of the plan may own a column (redact: transcript)
        columns = {c: v for c, v in (result.audit_columns() if result is not None else {}).items()
                   if owner.get(c, done) == done}
        if columns:
            w.audit = {"batchId": row.batchId, "fileId": row.fileId, "file": row.file, **columns}
    # A failure at this stage or later, read before this event, stands.
    failed_later = row.status == FAILED and order(row.failedStage or "") >= order(arr.entered)
    if row.currentStage is None or order(arr.entered) >= order(row.currentStage):
        row.currentStage, row.lastEvent = arr.entered, raw  # the furthest point decides
        if result is not None and not failed_later:
            row.worker = result.worker
    if not failed_later:
        row.status = COMPLETED if row.currentStage == DONE else IN_PROGRESS
        row.failedStage, row.error = None, None
    return row, w


def on_file_failed(row: FileRow, record: dict[str, Any]) -> tuple[FileRow, Writes]:
    """A FileFailed of the row's generation: the file failed at `record['stage']`."""
    failed_at = record["stage"]
    if row.status == FAILED and row.failedStage == failed_at:
        return row, Writes()  # read again
    w = Writes(entered=failed_at)
    error = f"{record['errorType']}: {record['message']}"[:8000]
    row = replace(row, flags=dict(row.flags), status=FAILED, failedStage=failed_at, error=error,
                  worker=record["worker"], dirty=True)
    w.processing_logs.append(processing_log(record["eventId"], row.batchId, row.file, failed_at, "failed", error,
                                            record["durationMs"], record["worker"]))
    w.exec_logs.append(LogRow(row.batchId, failed_at, "file_error", f"fe:{record['eventId']}", row.file,
                              json.dumps({"error": error, "attempts": record["attempts"]})))
    return row, w


def charged_stage(row: FileRow, claimed: str | None) -> str:
    """The stage a failure known only by the file's key is charged to (its event did not decode): the one
    claimed, but never past where the row says the file is, whose done flags the unread event did not set."""
    here = row.currentStage if row.currentStage in STAGES else None
    if claimed in STAGES and (here is None or order(claimed) <= order(here)):
        return claimed
    return here or (claimed if claimed in STAGES else STAGES[-1])


def orphan_failure(record: dict[str, Any]) -> dict[str, Any]:
    """processing_logs row of a FileFailed that names no file (the worker could not decode its input)."""
    where = f"(at {record['originalTopic']}[{record['originalPartition']}]@{record['originalOffset']})"
    return processing_log(record["eventId"], record["batchId"], record.get("file") or "<undecodable>",
                          record["stage"], "failed", f"{record['errorType']}: {record['message']} {where}",
                          record["durationMs"], record["worker"])


def first_undone(plan: list[str], flags: dict[str, int]) -> str:
    """The first stage of the plan whose done flag is 0 (DONE when there is none)."""
    return next((s for s in plan if not flags.get(s)), DONE)


def on_resume(row: FileRow, plan: list[str], *, bump: bool) -> tuple[FileRow, str | None]:
    """`cofi resume` (or a re-sent BatchStart) for an unfinished file: the new state and the stage to
    emit it to, None when every stage of its plan is already done (it is Completed)."""
    target = first_undone(plan, row.flags)
    if target == DONE:
        return replace(row, status=COMPLETED, failedStage=None, error=None, dirty=True), None
    return replace(row, generation=row.generation + (1 if bump else 0), status=IN_PROGRESS, failedStage=None,
                   error=None, currentStage=target, dirty=True), target


def on_reaudit(row: FileRow, reset: list[str], *, bump: bool) -> tuple[FileRow, str]:
    """`cofi reaudit` from `reset[0]`: those stages' flags cleared, the file sent back to `reset[0]`."""
    flags = {**row.flags, **dict.fromkeys(reset, 0)}
    return replace(row, flags=flags, generation=row.generation + (1 if bump else 0), status=IN_PROGRESS,
                   failedStage=None, error=None, currentStage=reset[0], dirty=True), reset[0]


def new_row(batch_id: int, file_id: str, file: str, first: str, metadata: dict[str, str]) -> FileRow:
    """A file taken in by intake, about to be emitted to its first stage."""
    return FileRow(batchId=batch_id, fileId=file_id, file=file, flags=dict.fromkeys(STAGES, 0), status=PENDING,
                   currentStage=first, metadata=metadata, dirty=True)
