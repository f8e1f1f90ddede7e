"""Batch control events (cancel / resume / reaudit) as seen by stage workers.

Workers only need to know which batches are cancelled, so they stop spending engine time
on them; the tracker acts on every control event.
"""

from __future__ import annotations

import logging
import threading

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from cofi.errors import DecodeError
from cofi.pipeline.codec import Codec
from cofi.pipeline.kafka import consumer_config
from cofi.pipeline.topics import Topics
from cofi.settings import Settings

log = logging.getLogger(__name__)


class CancelWatcher:
    """Reads the whole control topic (assigned, no group commits) in a background thread."""

    def __init__(self, settings: Settings, codec: Codec) -> None:
        self.settings = settings
        self.codec = codec
        self.topic = Topics(settings.topic_prefix).batch_control
        self.cancelled: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cancel-watcher", daemon=True)

    def is_cancelled(self, batch_id: int) -> bool:
        return batch_id in self.cancelled

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def apply(self, record: dict) -> None:
        if record["action"] == "cancel":
            self.cancelled.add(record["batchId"])
        else:  # resume / reaudit lift a cancel
            self.cancelled.discard(record["batchId"])

    def _run(self) -> None:
        consumer: Consumer | None = None
        while not self._stop.is_set() and consumer is None:
            c = Consumer(consumer_config(self.settings, f"{self.settings.topic_prefix}-control-watch"))
            try:
                meta = c.list_topics(self.topic, timeout=2)
                parts = meta.topics[self.topic].partitions
                c.assign([TopicPartition(self.topic, p, 0) for p in parts] or [TopicPartition(self.topic, 0, 0)])
                consumer = c
            except (KafkaException, KeyError) as exc:
                c.close()  # a fresh client next time; this one would keep reconnecting in the background
                log.warning("control topic %s not readable yet (%s); retrying", self.topic, exc)
                self._stop.wait(5)
        while not self._stop.is_set() and consumer is not None:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() != KafkaError._PARTITION_EOF:
                    log.debug("control consumer: %s", msg.error())
                continue
            try:
                self.apply(self.codec.decode_as("BatchControl", msg.value()))
            except DecodeError as exc:
                log.warning("undecodable control event at offset %d: %s", msg.offset(), exc)
        if consumer is not None:
            consumer.close()
