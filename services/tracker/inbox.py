"""What the tracker read: one message decoded as the type its topic carries, or why it could not be."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from confluent_kafka import Message

from cofi.errors import DecodeError
from cofi.pipeline.codec import Codec
from cofi.pipeline.topics import Topics


@dataclass
class Decoded:
    msg: Message
    kind: str  # start | control | file | failed
    record: dict[str, Any] | None
    stage: str | None = None  # the stage topic the FileEvent arrived on
    error: str | None = None  # why it did not decode (record is None then)
    by_key: bool = False  # a FileFailed whose batch was found from its key (its event did not decode)

    @property
    def where(self) -> str:
        return f"{self.msg.topic()}[{self.msg.partition()}]@{self.msg.offset()}"

    @property
    def key(self) -> str | None:
        raw = self.msg.key()
        return raw.decode("utf-8", "replace") if raw else None


KINDS = {"start": "BatchStart", "control": "BatchControl", "failed": "FileFailed", "file": "FileEvent"}


def decode(codec: Codec, topics: Topics, m: Message) -> Decoded:
    topic = m.topic()
    kind = {topics.batch_start: "start", topics.batch_control: "control", topics.failed: "failed"}.get(topic, "file")
    try:
        return Decoded(m, kind, codec.decode_as(KINDS[kind], m.value()), topics.stage_of(topic))
    except DecodeError as exc:
        why = f"undecodable {KINDS[kind]}: {exc}"
        if "unknown schema fingerprint" in str(exc):
            why += " (written by a newer cofi than this tracker? upgrade the tracker, then send it again)"
        return Decoded(m, kind, None, topics.stage_of(topic), error=why)
