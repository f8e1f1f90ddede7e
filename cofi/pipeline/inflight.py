"""The messages a stage worker has in flight, and which of them a transaction may commit.

A file still running long after the others of its micro-batch finished must not hold them back: the
finished files are committed and the running one is carried into the next micro-batch. Offsets are
committed per partition, so only a partition's finished prefix (in offset order) can go; the rest of
that partition is carried with the file that blocks it, and the partition stays paused meanwhile.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import Future
from dataclasses import dataclass, field

from confluent_kafka import Message

from cofi.pipeline.transactions import Outgoing

Partition = tuple[str, int]


@dataclass
class Handled:
    """What one input message became."""

    msg: Message
    outputs: list[Outgoing] = field(default_factory=list)
    outcome: str = "success"


@dataclass(eq=False)
class InFlight:
    """One message being handled: its engine call's future, or the failure it got at its deadline."""

    msg: Message
    future: Future[Handled]
    overdue: Handled | None = None

    @property
    def partition(self) -> Partition:
        return self.msg.topic(), self.msg.partition()

    @property
    def done(self) -> bool:
        return self.overdue is not None or self.future.done()

    def result(self) -> Handled:
        return self.overdue or self.future.result()


def split_committable(items: list[InFlight]) -> tuple[list[InFlight], list[InFlight]]:
    """(what may be committed now: each partition's finished prefix by offset, what is carried: the rest)."""
    blocked: dict[Partition, int] = {}  # partition -> offset of its first unfinished message
    for item in items:
        if not item.done:
            p, offset = item.partition, item.msg.offset()
            blocked[p] = min(blocked.get(p, offset), offset)
    ready = [i for i in items if i.partition not in blocked or i.msg.offset() < blocked[i.partition]]
    carried = [i for i in items if i.partition in blocked and i.msg.offset() >= blocked[i.partition]]
    return ready, carried


def partitions(items: Iterable[InFlight]) -> set[Partition]:
    return {i.partition for i in items}
