"""Pure rules for batch progress: per-stage status and the batchExecutionLog rows they imply.

Kept free of I/O so the seed's logging rules are tested directly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from cofi.pipeline.stages import STAGES

PENDING, IN_PROGRESS, COMPLETED, FAILED, SKIPPED = "Pending", "InProgress", "Completed", "Failed", "Skipped"
FINAL_BATCH = {"Completed", "Failed", "Cancelled", "Rejected"}


@dataclass
class Aggregates:
    """Counts over one batch's fileDistribution rows (kept per batch in batchFileCounts)."""

    total: int
    done: dict[str, int]
    failed_at: dict[str, int]
    completed: int
    failed: int
    cancelled: int

    @classmethod
    def from_counts(cls, counts: dict[str, int]) -> Aggregates:
        """From a batch's summed per-file counts (`filestate.counts_of`)."""
        return cls(total=counts.get("total", 0), done={s: counts.get(f"done:{s}", 0) for s in STAGES},
                   failed_at={s: counts.get(f"failed:{s}", 0) for s in STAGES}, completed=counts.get("completed", 0),
                   failed=counts.get("failed", 0), cancelled=counts.get("cancelled", 0))

    def counts(self) -> dict[str, int]:
        """The inverse of `from_counts`."""
        return {"total": self.total, **{f"done:{s}": n for s, n in self.done.items()},
                **{f"failed:{s}": n for s, n in self.failed_at.items()}, "completed": self.completed,
                "failed": self.failed, "cancelled": self.cancelled}


@dataclass
class LogRow:
    batchId: int
    stage: str | None
    eventType: str
    dedupKey: str
    file: str | None = None
    details: str | None = None


@dataclass
class BatchView:
    """What the tracker knows of a batch before applying one poll's aggregates."""

    batch_id: int
    plan: list[str]
    status: str
    stage_status: dict[str, str]
    round: int
    progress_logged: dict[str, int] = field(default_factory=dict)
    entered: set[str] = field(default_factory=set)


@dataclass
class BatchUpdate:
    status: str
    stage_status: dict[str, str]
    completed_files: int
    failed_files: int
    finished: bool
    logs: list[LogRow]
    progress_logged: dict[str, int]


def _details(**kw: Any) -> str:
    return json.dumps(kw, separators=(",", ":"))


def evaluate(view: BatchView, agg: Aggregates, progress_interval: int) -> BatchUpdate:
    """Derive stage statuses and the stage_start / progress / stage_complete / batch_complete rows.

    A stage is complete when every file that could reach it (not cancelled, not failed in an
    earlier stage) is done or failed in it, and the stages before it are complete.
    """
    b, r = view.batch_id, view.round
    logs: list[LogRow] = []
    statuses = dict(view.stage_status)
    progress = dict(view.progress_logged)
    failed_before = 0
    previous_complete = True
    all_complete = True
    cancelled = view.status == "Cancelled"
    for stage in STAGES:
        if stage not in view.plan:
            statuses[stage] = SKIPPED
            continue
        done, failed = agg.done.get(stage, 0), agg.failed_at.get(stage, 0)
        can_reach = agg.total - agg.cancelled - failed_before
        started = done + failed > 0 or stage in view.entered or view.stage_status.get(stage) != PENDING
        complete = previous_complete and agg.total > 0 and done + failed >= can_reach and not cancelled
        old = view.stage_status.get(stage, PENDING)
        if complete:
            new = COMPLETED if done > 0 else FAILED
        elif started:
            new = IN_PROGRESS
        else:
            new = PENDING
        if old == PENDING and new != PENDING:
            logs.append(LogRow(b, stage, "stage_start", f"{b}:{stage}:stage_start:r{r}"))
        if progress_interval > 1:
            step = progress_interval
            for n in range(progress.get(stage, 0) + step, done + 1, step):
                logs.append(LogRow(b, stage, "progress", f"{b}:{stage}:progress:{n}:r{r}",
                                   details=_details(filesDone=n, total=agg.total)))
                progress[stage] = n
        if complete and old not in (COMPLETED, FAILED):
            logs.append(LogRow(b, stage, "stage_complete", f"{b}:{stage}:stage_complete:r{r}",
                               details=_details(done=done, failed=failed, reached=can_reach)))
        if cancelled and old in (COMPLETED, FAILED):
            new = old  # a cancel stops what is left; it does not undo finished stages
        statuses[stage] = new
        previous_complete = complete
        all_complete = all_complete and complete
        failed_before += failed

    if cancelled:
        status = "Cancelled"
    elif all_complete and view.plan:
        status = "Completed" if agg.completed > 0 or agg.total == 0 else "Failed"
    elif any(s != PENDING for s in statuses.values() if s != SKIPPED):
        status = "InProgress"
    else:
        status = view.status if view.status in FINAL_BATCH else "InProgress"
    finished = status in ("Completed", "Failed") and view.status not in ("Completed", "Failed")
    if finished:
        logs.append(LogRow(b, None, "batch_complete", f"{b}:batch_complete:r{r}",
                           details=_details(status=status, completed=agg.completed, failed=agg.failed,
                                            total=agg.total)))
    return BatchUpdate(status=status, stage_status=statuses, completed_files=agg.completed,
                       failed_files=agg.failed, finished=finished, logs=logs, progress_logged=progress)
