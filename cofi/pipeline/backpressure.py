"""Backpressure: a stage takes no new files while STAGE_MAX_AHEAD files wait in the stages after it.

Without it the fast stages race through a 100,000-file batch while the slow ones (STT, the LLM) are
still at its start: verdicts come in a burst at the end instead of at a steady rate from the first
minutes, a batch cancelled half-way has had every file cleaned and trimmed for nothing, and on a shared
node the fast stages take the CPU the slow ones need. With it a file enters a stage about when one
leaves the stages after it, so the time per 10,000 files stays flat and the ETA means something.

The backlog is read from Kafka, not from the tracker (the stages never depend on it): for every later
stage, its topic's last stable offsets minus its consumer group's committed offsets. A thread reads it
every STAGE_AHEAD_CHECK_S. When it cannot (broker down, no ACL), the stage is not held: backpressure
slows a pipeline, it never stops one. The last stage is never held, so a running pipeline always drains;
a later stage with no worker at all holds the ones before it once STAGE_MAX_AHEAD files wait for it.
The tracker's backlog is not counted: a database outage (maintenance, a failover) must not idle the GPU
stages; their results wait in Kafka until the tracker records them. Offsets count messages, and a
transaction's commit marker takes one too: after a slow stage that commits every file, about double.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from cofi.pipeline.kafka import client_config
from cofi.pipeline.stages import later_stages
from cofi.pipeline.topics import Topics
from cofi.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class Gate:
    """Hold at `limit` files waiting ahead, release at half of it (so a stage does not flap on every check)."""

    limit: int
    held: bool = False

    def update(self, waiting: int | None) -> bool:
        """The new state for a measured backlog (None: could not be measured)."""
        if self.limit <= 0 or waiting is None:
            self.held = False
        elif waiting >= self.limit:
            self.held = True
        elif waiting <= self.limit // 2:
            self.held = False
        return self.held


def files_waiting(ends: dict[Any, int], starts: dict[Any, int], committed: dict[Any, int]) -> int:
    """Messages not yet committed by their consumer group, summed over partitions. A partition the group
    never committed counts from its first retained offset (where `auto.offset.reset=earliest` starts)."""
    total = 0
    for tp, end in ends.items():
        done = max(committed.get(tp, -1), starts.get(tp, 0))
        total += max(0, end - done)
    return total


@dataclass
class Backlog:
    """The last measurement: files waiting per later stage, None while it cannot be read."""

    per_stage: dict[str, int] | None = None
    reason: str = ""
    checks: int = field(default=0)

    @property
    def total(self) -> int | None:
        return None if self.per_stage is None else sum(self.per_stage.values())

    def busiest(self) -> str:
        """'stt (1,234 files)': the later stage with the most files waiting, for logs and /healthz."""
        waiting = self.per_stage
        if not waiting:
            return ""
        name = max(waiting, key=waiting.__getitem__)
        return f"{name} ({waiting[name]:,} files)"


class Downstream:
    """Measures the later stages' backlog in a background thread and says whether this stage is held."""

    def __init__(self, settings: Settings, stage: str) -> None:
        self.settings = settings
        self.stage = stage
        self.topics = Topics(settings.topic_prefix)
        self.later = later_stages(stage)
        self.gate = Gate(settings.stage_max_ahead if self.later else 0)
        self.last = Backlog()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="backpressure", daemon=True)
        self._admin: Any = None

    @property
    def enabled(self) -> bool:
        return self.gate.limit > 0

    @property
    def held(self) -> bool:
        return self.gate.held

    def start(self) -> None:
        if self.enabled:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def check(self) -> Backlog:
        """One measurement and the gate's new state (the thread calls it; tests call it directly)."""
        was = self.gate.held
        try:
            self.last = Backlog(self._measure(), checks=self.last.checks + 1)
        except Exception as exc:  # noqa: BLE001 - a failed measurement releases the stage, never stops it
            if self.last.per_stage is not None or not self.last.reason:
                log.warning("%s: cannot read the backlog of the stages after it (%s); not held meanwhile",
                            self.stage, exc)
            self.last = Backlog(None, reason=str(exc), checks=self.last.checks + 1)
        held = self.gate.update(self.last.total)
        if held != was:
            if held:
                log.info("%s: held: %s files wait in the stages after it (STAGE_MAX_AHEAD=%d), most at %s",
                         self.stage, f"{self.last.total:,}", self.gate.limit, self.last.busiest())
            else:
                log.info("%s: released: %s files wait after it", self.stage,
                         "?" if self.last.total is None else f"{self.last.total:,}")
        return self.last

    def _run(self) -> None:
        while not self._stop.is_set():
            self.check()
            self._stop.wait(self.settings.stage_ahead_check_s)

    def _client(self) -> Any:
        from confluent_kafka.admin import AdminClient

        if self._admin is None:
            self._admin = AdminClient(client_config(self.settings, **{
                "log_level": 3, "logger": logging.getLogger("cofi.pipeline.backpressure.rdkafka")}))
        return self._admin

    def _measure(self) -> dict[str, int]:
        from confluent_kafka import ConsumerGroupTopicPartitions, IsolationLevel, TopicPartition
        from confluent_kafka.admin import OffsetSpec

        admin, timeout = self._client(), max(2.0, 3 * self.settings.stage_ahead_check_s)
        names = {s: self.topics.stage(s) for s in self.later}
        meta = admin.list_topics(timeout=timeout).topics
        unseen = [t for t in names.values() if t not in meta]
        if unseen:  # not counted as empty: a stage it cannot see might be full
            raise LookupError(f"topic(s) {', '.join(unseen)} not visible (not created, or no DESCRIBE ACL)")
        parts = {s: [TopicPartition(t, p) for p in sorted(meta[t].partitions)] for s, t in names.items()}
        every = [tp for tps in parts.values() for tp in tps]
        if not every:
            return {}
        ends_f = admin.list_offsets({tp: OffsetSpec.latest() for tp in every},
                                    isolation_level=IsolationLevel.READ_COMMITTED, request_timeout=timeout)
        starts_f = admin.list_offsets({tp: OffsetSpec.earliest() for tp in every}, request_timeout=timeout)
        groups_f = {s: admin.list_consumer_group_offsets(
            [ConsumerGroupTopicPartitions(f"{self.settings.topic_prefix}-{s}", tps)], request_timeout=timeout)
            for s, tps in parts.items()}

        def key(tp: Any) -> tuple[str, int]:
            return tp.topic, tp.partition

        ends = {key(tp): f.result(timeout).offset for tp, f in ends_f.items()}
        starts = {key(tp): f.result(timeout).offset for tp, f in starts_f.items()}
        out: dict[str, int] = {}
        for s, by_group in groups_f.items():
            committed = {key(tp): tp.offset for f in by_group.values() for tp in f.result(timeout).topic_partitions}
            mine = {key(tp) for tp in parts[s]}
            out[s] = files_waiting({k: v for k, v in ends.items() if k in mine}, starts, committed)
        return out
