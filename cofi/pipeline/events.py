"""Builders for the events every service emits, so ids and timestamps are made one way."""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime, timezone
from typing import Any

#: FileEvent.emitter (schema v3): who emitted it, so the tracker never guesses from topics or ids
EMITTER_STAGE = "stage"  # a stage worker; FileEvent.completedStage names the stage it completed
EMITTER_TRACKER = "tracker"  # intake, resume, reaudit: the file is (re)sent to a stage, nothing completed


def now() -> datetime:
    return datetime.now(timezone.utc)


def new_event_id() -> str:
    return uuid.uuid4().hex


def file_id(batch_id: int, file: str) -> str:
    """Stable id of a file within a batch: the Kafka key, so retries land on one partition."""
    return hashlib.sha1(f"{batch_id}/{file}".encode()).hexdigest()[:20]


def file_failed(*, stage: str, error_type: str, message: str, attempts: int, worker: str,
                topic: str, partition: int, offset: int, raw: bytes, event: dict[str, Any] | None,
                engine: str = "", duration_ms: int = 0, permanent: bool = True) -> dict[str, Any]:
    return {
        "eventId": new_event_id(),
        "batchId": event["batchId"] if event else -1,
        "fileId": event["fileId"] if event else None,
        "file": event["file"] if event else None,
        "stage": stage,
        "errorType": error_type,
        "message": message[:4000],
        "permanent": permanent,
        "attempts": attempts,
        "worker": worker,
        "engine": engine,
        "durationMs": duration_ms,
        "generation": event.get("generation", 0) if event else 0,
        "failedAt": now(),
        "originalTopic": topic,
        "originalPartition": partition,
        "originalOffset": offset,
        "originalEvent": raw or b"",
    }
