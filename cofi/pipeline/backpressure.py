"""Backpressure: a stage takes no new files while a stage it hands files to has STAGE_MAX_AHEAD waiting.

Without it the fast stages race through a 100,000-file batch while the slow ones (STT, the LLM) are
still at its start: verdicts come in a burst at the end instead of at a steady rate from the first
minutes, a batch cancelled half-way has had every file cleaned and trimmed for nothing, and on a shared
node the fast stages take the CPU the slow ones need. With it a stage goes at the pace of the slowest
one after it, the time per 10,000 files stays flat and the ETA means something.

What is measured: for each stage this one writes to (the next ones up to the first mandatory one), the
files on its topic that its consumer group has not committed (high watermarks minus committed
offsets), read from Kafka every STAGE_AHEAD_CHECK_S by a thread; the stage is held while the fullest of
them has STAGE_MAX_AHEAD and released at half of it. The wait propagates stage by stage (a slow STT
fills its topic, holds LID, whose topic fills and holds IVR, ...), so at most about STAGE_MAX_AHEAD
files wait per stage, whatever the number of stages (a sum over every later stage would count the
files every healthy stage has in flight and hold a pipeline that is not slow anywhere).

- It never stops a pipeline: when the offsets cannot be read (broker down, no ACL) the stage is
  released; the last stage hands files to the tracker only, which is not counted (a database outage
  must not idle the GPU stages: their results wait in Kafka until the tracker records them), so a
  running pipeline always drains. A stage with no worker at all holds the one before it once its topic
  has STAGE_MAX_AHEAD files; the log and /healthz say which.
- Offsets count messages, and a transaction's commit marker takes one too: after a slow stage that
  commits every file, about double the files.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

from cofi.pipeline.kafka import consumer_config
from cofi.pipeline.stages import STAGES, next_stages
from cofi.pipeline.topics import Topics
from cofi.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class Gate:
    """Hold at `limit` files waiting, release at half of it (so a stage does not flap on every check)."""

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
    """The last measurement: files waiting per next stage, None while it cannot be read."""

    per_stage: dict[str, int] | None = None
    reason: str = ""

    @property
    def fullest(self) -> int | None:
        """The most files waiting at one of the next stages (what holds the stage)."""
        return None if self.per_stage is None else max(self.per_stage.values(), default=0)

    def busiest(self) -> str:
        """'stt (1,234 files)': the next stage with the most files waiting, for logs."""
        waiting = self.per_stage
        if not waiting:
            return ""
        name = max(waiting, key=waiting.__getitem__)
        return f"{name} ({waiting[name]:,} files)"


class Downstream:
    """Measures the next stages' backlog in a background thread and says whether this stage is held."""

    def __init__(self, settings: Settings, stage: str) -> None:
        self.settings = settings
        self.stage = stage
        self.topics = Topics(settings.topic_prefix)
        self.next = [s for s in next_stages(stage) if s in STAGES]  # not DONE: the tracker is not counted
        self.gate = Gate(settings.stage_max_ahead if self.next else 0)
        self.last = Backlog()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="backpressure", daemon=True)
        self._readers: dict[str, Any] = {}  # consumer group -> a consumer that only reads its offsets
        self._sent = self._sent_at_check = 0  # files committed to the next stages: in all, at the last measurement
        # The worker thread (sent) and this one (check) both move the gate: a measurement and the count it
        # includes change together, or a commit between them is counted twice and the stage held early.
        self._lock = threading.Lock()

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
        if not self._thread.is_alive():  # still inside a call (a broker gone): the process exit frees them
            for reader in self._readers.values():
                reader.close()
            self._readers.clear()

    def sent(self, files: int) -> None:
        """The worker committed `files` more to the next stages: between two measurements they count as
        waiting (an upper bound), so a fast stage stops at the limit, not a whole check interval past it."""
        with self._lock:
            self._sent += files
            if self.last.per_stage is None or self.gate.held or not self.gate.update(self._estimate()):
                return
            estimate, busiest = self._estimate(), self.last.busiest()
        log.info("%s: held: about %s files wait at %s (STAGE_MAX_AHEAD=%d)", self.stage, f"{estimate:,}",
                 busiest or "the next stage", self.gate.limit)

    def _estimate(self) -> int:
        return (self.last.fullest or 0) + self._sent - self._sent_at_check

    def check(self) -> Backlog:
        """One measurement and the gate's new state (the thread calls it; tests call it directly)."""
        sent_before = self._sent  # what is sent during the measurement is added to it
        try:
            measured = Backlog(self._measure())
        except Exception as exc:  # noqa: BLE001 - a failed measurement releases the stage, never stops it
            if self.last.per_stage is not None or not self.last.reason:
                log.warning("%s: cannot read the backlog of the next stages (%s); not held meanwhile",
                            self.stage, exc)
            measured = Backlog(None, reason=str(exc))
        else:
            if self.last.per_stage is None and self.last.reason:
                log.info("%s: the backlog of the next stages is readable again", self.stage)
        with self._lock:
            was = self.gate.held
            self.last = measured
            self._sent_at_check = sent_before
            held = self.gate.update(None if measured.per_stage is None else self._estimate())
        if held != was:
            if held:
                log.info("%s: held: files wait at %s (STAGE_MAX_AHEAD=%d)", self.stage, self.last.busiest(),
                         self.gate.limit)
            else:
                log.info("%s: released: %s", self.stage, self.last.busiest() or self.last.reason)
        return self.last

    def _run(self) -> None:
        while not self._stop.is_set():
            self.check()
            self._stop.wait(self.settings.stage_ahead_check_s)

    def _reader(self, group: str) -> Any:
        """A consumer of `group` that never subscribes (so never joins it) and never commits: it only reads
        the group's committed offsets, the topics' watermarks and metadata. (The AdminClient's
        list_consumer_group_offsets crashed a stage with SIGSEGV while the broker was down: a known
        confluent-kafka bug on its error path, issue #1982; these consumer calls are the ones the worker
        itself relies on.)"""
        from confluent_kafka import Consumer

        if group not in self._readers:
            self._readers[group] = Consumer(consumer_config(self.settings, group, **{
                "log_level": 3, "logger": logging.getLogger("cofi.pipeline.backpressure.rdkafka")}))
        return self._readers[group]

    def _measure(self) -> dict[str, int]:
        from confluent_kafka import KafkaException, TopicPartition

        timeout = max(2.0, 3 * self.settings.stage_ahead_check_s)
        groups = {s: f"{self.settings.topic_prefix}-{s}" for s in self.next}
        names = {s: self.topics.stage(s) for s in self.next}
        first = self._reader(groups[self.next[0]])
        meta = first.list_topics(timeout=timeout).topics
        unseen = [t for t in names.values() if t not in meta]
        if unseen:  # not counted as empty: a stage it cannot see might be full
            raise LookupError(f"topic(s) {', '.join(unseen)} not visible (not created, or no DESCRIBE ACL)")
        out: dict[str, int] = {}
        for s, topic in names.items():
            tps = [TopicPartition(topic, p) for p in sorted(meta[topic].partitions)]
            marks = {(tp.topic, tp.partition): first.get_watermark_offsets(tp, timeout=timeout, cached=False)
                     for tp in tps}
            committed = {}
            for tp in self._reader(groups[s]).committed(tps, timeout=timeout):
                if tp.error is not None:
                    raise KafkaException(tp.error)
                committed[(tp.topic, tp.partition)] = tp.offset
            out[s] = files_waiting({k: hi for k, (_, hi) in marks.items()}, {k: lo for k, (lo, _) in marks.items()},
                                   committed)
        return out
