"""Helpers for pipeline tests on the real broker: run stage workers in threads, feed events, and count
what comes out with a read_committed consumer. (Processes: `cofi.devtools.pipeline`.)"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from tenacity import retry, retry_if_exception, stop_after_delay, wait_fixed

from cofi.devtools.pipeline import produce
from cofi.pipeline import events
from cofi.pipeline.codec import get_codec
from cofi.pipeline.engine import Engine
from cofi.pipeline.kafka import consumer_config, make_consumer
from cofi.pipeline.passthrough import PassthroughEngine
from cofi.pipeline.stages import empty_results
from cofi.pipeline.topics import Topics
from cofi.pipeline.worker import StageWorker
from cofi.settings import Settings


def file_event(i: int, plan: list[str], batch_id: int = 1, **extra: Any) -> dict[str, Any]:
    return {"eventId": events.new_event_id(), "batchId": batch_id, "fileId": f"f{i:05d}", "file": f"call{i:05d}.wav",
            "audioPath": f"/calls/call{i:05d}.wav", "currentAudio": f"/calls/call{i:05d}.wav", "stages": plan,
            "emittedAt": events.now(), "results": empty_results(), **extra}


def produce_events(settings: Settings, stage: str, evs: list[dict[str, Any]]) -> int:
    codec = get_codec()
    return produce(settings, Topics(settings.topic_prefix).stage(stage),
                   ((e["fileId"], codec.encode("FileEvent", e)) for e in evs))


class Collector:
    """Reads topics from the beginning with read_committed, in a background thread."""

    def __init__(self, settings: Settings, topics: list[str]) -> None:
        self.consumer = Consumer(consumer_config(settings, f"collector-{uuid.uuid4().hex[:8]}"))
        self.consumer.subscribe(topics)
        self.messages: list[tuple[str, bytes]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            m = self.consumer.poll(0.2)
            if m is not None and m.error() is None:
                self.messages.append((m.topic(), m.value()))
        self.consumer.close()

    def on(self, topic: str) -> list[bytes]:
        return [v for t, v in list(self.messages) if t == topic]

    def wait(self, predicate: Callable[[], bool], timeout: float = 60.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.2)
        return predicate()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


_LEADER_MOVING = {KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE,
                  KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._TIMED_OUT}


def _leader_moving(exc: BaseException) -> bool:
    """A partition just created (or just moved) has no leader the broker knows of for a moment: asked
    then, the broker answers NOT_LEADER_FOR_PARTITION, which says "ask again", not "no messages"."""
    return isinstance(exc, KafkaException) and exc.args[0].code() in _LEADER_MOVING


@retry(retry=retry_if_exception(_leader_moving), stop=stop_after_delay(30), wait=wait_fixed(0.5), reraise=True)
def message_count(settings: Settings, topic: str) -> int:
    """Messages on a topic, all partitions (its end offsets: aborted and committed alike)."""
    consumer = make_consumer(settings, f"count-{uuid.uuid4().hex[:8]}")
    try:
        parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        return sum(consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in parts)
    finally:
        consumer.close()


def decode_all(name: str, values: list[bytes]) -> list[dict[str, Any]]:
    codec = get_codec()
    return [codec.decode_as(name, v) for v in values]


def counts_by_file(values: list[bytes]) -> Counter[str]:
    return Counter(e["fileId"] for e in decode_all("FileEvent", values))


class ThreadedWorkers:
    """Stage workers in threads of this process (fast; for logic tests)."""

    def __init__(self, settings: Settings, stages: list[str], engines: dict[str, Engine] | None = None) -> None:
        engines = engines or {}
        self.workers = [StageWorker(s, engines.get(s) or PassthroughEngine(s), settings) for s in stages]
        self.threads = [threading.Thread(target=w.run, daemon=True) for w in self.workers]

    def __enter__(self) -> ThreadedWorkers:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for w in self.workers:
            w.stopping.set()
        for t in self.threads:
            t.join(timeout=30)
