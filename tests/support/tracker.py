"""Driving the tracker in tests: run it in a thread, submit batches and commands, wait for a status."""

from __future__ import annotations

import threading
import time
from typing import Any

from sqlalchemy import Engine, text

from cofi.devtools.pipeline import produce
from cofi.pipeline import events
from cofi.pipeline.codec import get_codec
from cofi.pipeline.topics import Topics
from cofi.settings import Settings
from services.tracker.service import Tracker

FINAL = ("Completed", "Failed", "Cancelled", "Rejected")


class RunningTracker:
    def __init__(self, settings: Settings, group: str | None = None) -> None:
        self.tracker = Tracker(settings, group=group, serve_metrics=False)
        self.thread = threading.Thread(target=self.tracker.run, daemon=True)

    def __enter__(self) -> Tracker:
        self.thread.start()
        return self.tracker

    def __exit__(self, *exc: object) -> None:
        self.tracker.stopping.set()
        self.thread.join(timeout=30)


def batch_start(batch_id: int, n: int, *, skip: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    return {"eventId": events.new_event_id(), "batchId": batch_id, "submittedAt": events.now(),
            "files": [{"file": f"/calls/b{batch_id}/call{i:05d}.wav", "metadata": {"clientCode": f"C{i % 7}"}}
                      for i in range(n)], "skip": skip or [], **extra}


def submit(settings: Settings, start: dict[str, Any]) -> None:
    produce(settings, Topics(settings.topic_prefix).batch_start,
            [(str(start["batchId"]), get_codec().encode("BatchStart", start))])


def control(settings: Settings, batch_id: int, action: str, **extra: Any) -> None:
    rec = {"eventId": events.new_event_id(), "batchId": batch_id, "action": action, "requestedAt": events.now(),
           **extra}
    produce(settings, Topics(settings.topic_prefix).batch_control,
            [(str(batch_id), get_codec().encode("BatchControl", rec))])


def wait_status(db: Engine, batch_id: int, statuses: tuple[str, ...] = FINAL, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    row = None
    while time.monotonic() < deadline:
        with db.connect() as c:
            row = c.execute(text("SELECT * FROM batchStatus WHERE id = :b"), {"b": batch_id}).mappings().first()
        if row is not None and row["status"] in statuses:
            return dict(row)
        time.sleep(0.3)
    raise AssertionError(f"batch {batch_id} not in {statuses} after {timeout}s: {row}")


def dump(db: Engine) -> dict[str, list]:
    """Every tracker table, rows in key order: two dumps are equal when nothing changed."""
    tables = {"fileDistribution": "batchId, fileId", "batchStatus": "id", "processing_logs": "id",
              "batchExecutionLog": "id", "auditResult": "batchId, fileId", "webhookOutbox": "id",
              "batchFileCounts": "batchId, name"}
    with db.connect() as c:
        return {t: [tuple(r) for r in c.execute(text(f"SELECT * FROM {t} ORDER BY {o}"))] for t, o in tables.items()}
