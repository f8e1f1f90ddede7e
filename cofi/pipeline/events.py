"""Builders for the events every service emits, so ids and timestamps are made one way."""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from datetime import datetime, timezone
from typing import Any

from cofi.errors import EventTooLarge
from cofi.pipeline.batchcheck import shown
from cofi.pipeline.codec import Codec

log = logging.getLogger(__name__)

#: FileEvent.emitter (schema v3): who emitted it, so the tracker never guesses from topics or ids
EMITTER_STAGE = "stage"  # a stage worker; FileEvent.completedStage names the stage it completed
EMITTER_TRACKER = "tracker"  # intake, resume, reaudit: the file is (re)sent to a stage, nothing completed
#: a FileFailed / dead letter keeps the original message up to this size, else a summary of it
ORIGINAL_MAX_BYTES = 64 * 1024


def now() -> datetime:
    return datetime.now(timezone.utc)


def new_event_id() -> str:
    return uuid.uuid4().hex


def file_id(batch_id: int, file: str) -> str:
    """Stable id of a file within a batch: the Kafka key, so retries land on one partition."""
    return hashlib.sha1(f"{batch_id}/{file}".encode()).hexdigest()[:20]


def checked_size(value: bytes, limit: int, what: str) -> bytes:
    """`value`, or EventTooLarge naming what it is and both sizes (a broker would refuse it, or take it and
    let it slow every consumer; the file or batch fails with the reason instead)."""
    if len(value) > limit:
        raise EventTooLarge(f"{what} is {len(value):,} bytes, over MAX_EVENT_BYTES={limit:,} "
                            "(questionnaire, rules, trades and results together)")
    return value


def original_or_summary(raw: bytes, event: dict[str, Any] | None = None, limit: int = ORIGINAL_MAX_BYTES) -> bytes:
    """The original message when small; else a JSON summary (size, sha256, ids). The message itself stays
    in its topic at originalTopic/Partition/Offset: a failure event must never be too large to send."""
    if len(raw) <= limit:
        return raw
    summary: dict[str, Any] = {"summary": "original message too large to copy", "bytes": len(raw),
                               "sha256": hashlib.sha256(raw).hexdigest()}
    if event:
        summary.update({k: event.get(k) for k in ("batchId", "fileId", "file", "stages", "generation")})
    return json.dumps(summary, default=str).encode()


def file_failed(*, stage: str, error_type: str, message: str, attempts: int, worker: str,
                topic: str, partition: int, offset: int, raw: bytes, event: dict[str, Any] | None,
                engine: str = "", duration_ms: int = 0, permanent: bool = True,
                file_id: str | None = None) -> dict[str, Any]:
    """A FileFailed; without a decoded `event` the batch id is -1 and `file_id` (the message key) lets the
    tracker find the file and its batch."""
    return {
        "eventId": new_event_id(),
        "batchId": event["batchId"] if event else -1,
        "fileId": event["fileId"] if event else file_id,
        "file": event["file"] if event else None,
        "stage": stage,
        "errorType": error_type,
        "message": shown(message)[:4000],
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
        "originalEvent": original_or_summary(raw or b"", event),
    }


def encode_failed(codec: Codec, failed: dict[str, Any]) -> bytes:
    """A FileFailed's bytes; should its text not encode, with that text in ASCII: a failure always goes out."""
    try:
        return codec.encode("FileFailed", failed)
    except Exception:  # noqa: BLE001 - whatever fastavro refuses, the file must still fail
        log.exception("FileFailed of %s does not encode; sending it with ASCII text", failed.get("fileId"))
        return codec.encode("FileFailed", {**failed, "message": ascii(failed["message"])[:4000],
                                           "file": ascii(failed["file"]) if failed.get("file") else None})
