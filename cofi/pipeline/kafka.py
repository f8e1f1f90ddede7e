"""Kafka client configuration, made one way for workers, the tracker and the CLI."""

from __future__ import annotations

import logging
import socket
from typing import Any

from confluent_kafka import Consumer, Producer

from cofi.settings import Settings

log = logging.getLogger(__name__)


def consumer_config(settings: Settings, group: str, **extra: Any) -> dict[str, Any]:
    conf = {
        "bootstrap.servers": settings.kafka_bootstrap_servers,
        "group.id": group,
        "isolation.level": "read_committed",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "max.poll.interval.ms": settings.max_poll_interval_ms,
        "session.timeout.ms": settings.session_timeout_ms,
        "heartbeat.interval.ms": min(3000, settings.session_timeout_ms // 3),
        "client.id": f"{group}-{settings.worker_id}",
        # Prefetch is bounded (librdkafka's defaults: 64 MB and 100,000 messages per partition): a
        # stage handed a 100,000-file batch at once holds a fixed amount, not the batch.
        "queued.max.messages.kbytes": 16384,
        "queued.min.messages": 20000,
    }
    conf.update(extra)
    return conf


def producer_config(settings: Settings, transactional_id: str | None = None, **extra: Any) -> dict[str, Any]:
    conf: dict[str, Any] = {
        "bootstrap.servers": settings.kafka_bootstrap_servers,
        "enable.idempotence": True,
        "acks": "all",  # with min.insync.replicas=2 on a cluster: a write survives the loss of its leader
        "compression.type": "lz4",
        "linger.ms": 5,
        "message.max.bytes": 16 * 1024 * 1024,
        "client.id": f"cofi-{settings.worker_id}",
    }
    if transactional_id:
        conf["transactional.id"] = transactional_id
        conf["transaction.timeout.ms"] = settings.transaction_timeout_ms
    conf.update(extra)
    return conf


def make_consumer(settings: Settings, group: str, **extra: Any) -> Consumer:
    return Consumer(consumer_config(settings, group, **extra))


def make_producer(settings: Settings, transactional_id: str | None = None, **extra: Any) -> Producer:
    return Producer(producer_config(settings, transactional_id, **extra))


def instance_name(settings: Settings) -> str:
    return settings.worker_instance or socket.gethostname()
