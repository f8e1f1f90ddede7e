"""Events the tracker emits: a file's FileEvent sent to the first stage it still needs."""

from __future__ import annotations

from typing import Any

from cofi.pipeline import events
from cofi.pipeline.codec import Codec
from cofi.pipeline.stages import STAGES
from cofi.pipeline.topics import Topics
from cofi.pipeline.transactions import Outgoing


def tracker_event_id(file_id: str, generation: int, stage: str) -> str:
    """Deterministic, so a replayed intake or resume emits the same event id."""
    return f"trk-{file_id}-g{generation}-{stage}"


def emission(codec: Codec, topics: Topics, event: dict[str, Any], stage: str, generation: int, *,
             max_bytes: int | None = None) -> Outgoing:
    """`event` re-aimed at `stage`: results of that stage and later ones cleared; it says it comes
    from the tracker (nothing was completed). EventTooLarge when it would be over `max_bytes`."""
    later = STAGES[STAGES.index(stage):]
    results = {s: (None if s in later else event["results"].get(s)) for s in STAGES}
    out = {**event, "results": results, "generation": generation, "emittedAt": events.now(),
           "eventId": tracker_event_id(event["fileId"], generation, stage),
           "emitter": events.EMITTER_TRACKER, "completedStage": None}
    value = codec.encode("FileEvent", out)
    if max_bytes is not None:
        events.checked_size(value, max_bytes, f"the event of {event['file']} for {stage}")
    return Outgoing(topics.stage(stage), event["fileId"], value)
