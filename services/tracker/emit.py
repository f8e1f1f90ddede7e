"""Events the tracker emits: a file's FileEvent sent to the first stage it still needs."""

from __future__ import annotations

from typing import Any

from cofi.pipeline import events
from cofi.pipeline.codec import Codec
from cofi.pipeline.topics import DONE, STAGES, Topics
from cofi.pipeline.transactions import Outgoing


def tracker_event_id(file_id: str, generation: int, stage: str) -> str:
    """Deterministic and marked `trk-`: the tracker tells its own emissions from stage output."""
    return f"trk-{file_id}-g{generation}-{stage}"


def first_undone(plan: list[str], flags: dict[str, int]) -> str:
    for s in plan:
        if not flags.get(s):
            return s
    return DONE


def emission(codec: Codec, topics: Topics, event: dict[str, Any], stage: str, generation: int) -> Outgoing:
    """`event` re-aimed at `stage`: results of that stage and later ones cleared."""
    later = STAGES[STAGES.index(stage):] if stage in STAGES else ()
    results = {s: (None if s in later else event["results"].get(s)) for s in STAGES}
    out = {**event, "results": results, "generation": generation, "emittedAt": events.now(),
           "eventId": tracker_event_id(event["fileId"], generation, stage)}
    return Outgoing(topics.stage(stage), event["fileId"], codec.encode("FileEvent", out))
