"""Kafka client configuration, made one way for workers, the tracker, the CLI and the admin tool.

Every client starts from `client_config`: the bootstrap servers and the security settings
(TLS, SASL), so no client can forget them.
"""

from __future__ import annotations

import logging
import socket
from typing import Any

from confluent_kafka import Consumer, KafkaError, Producer

from cofi.errors import AdminError
from cofi.settings import Settings

log = logging.getLogger(__name__)


def security_config(settings: Settings) -> dict[str, Any]:
    """librdkafka's security properties from KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_* and KAFKA_SSL_*."""
    protocol = settings.kafka_security_protocol
    conf: dict[str, Any] = {"security.protocol": protocol.lower()}
    if protocol.startswith("SASL"):
        password = settings.kafka_password()
        if not settings.kafka_sasl_username or not password:
            raise AdminError(f"KAFKA_SECURITY_PROTOCOL={protocol} needs KAFKA_SASL_USERNAME and "
                             "KAFKA_SASL_PASSWORD (or KAFKA_SASL_PASSWORD_FILE)")
        conf.update({"sasl.mechanism": settings.kafka_sasl_mechanism, "sasl.username": settings.kafka_sasl_username,
                     "sasl.password": password})
    if protocol.endswith("SSL"):
        conf["ssl.endpoint.identification.algorithm"] = settings.kafka_ssl_endpoint_identification
        files = {"ssl.ca.location": settings.kafka_ssl_ca_location,
                 "ssl.certificate.location": settings.kafka_ssl_certificate_location,
                 "ssl.key.location": settings.kafka_ssl_key_location}
        conf.update({k: str(v) for k, v in files.items() if v is not None})
        if settings.kafka_ssl_key_password is not None:
            conf["ssl.key.password"] = settings.kafka_ssl_key_password.get_secret_value()
    return conf


def client_config(settings: Settings, **extra: Any) -> dict[str, Any]:
    """What every Kafka client of cofi starts from: where the brokers are and how to reach them safely."""
    return {"bootstrap.servers": settings.kafka_bootstrap_servers, **security_config(settings), **extra}


def consumer_config(settings: Settings, group: str, **extra: Any) -> dict[str, Any]:
    conf = {
        **client_config(settings),
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
        **client_config(settings),
        "enable.idempotence": True,
        "acks": "all",  # with min.insync.replicas=2 on a cluster: a write survives the loss of its leader
        "compression.type": "lz4",
        "linger.ms": 5,
        "message.max.bytes": max(16 * 1024 * 1024, settings.max_event_bytes + 1024 * 1024),
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


class ConnectErrors:
    """librdkafka's error callback, kept, to say why a client could not connect: a refused login or
    certificate says so; a broker that hangs up on PLAINTEXT probably wants TLS/SASL."""

    def __init__(self, settings: Settings) -> None:
        self.protocol = settings.kafka_security_protocol
        self.errors: list[KafkaError] = []

    def __call__(self, err: KafkaError) -> None:
        self.errors.append(err)

    def reason(self, client: Any) -> str:
        """After a failed call: serve the pending callbacks and explain (empty when nothing to add)."""
        client.poll(0.2)
        for code in (KafkaError._AUTHENTICATION, KafkaError._SSL):
            found = [e for e in self.errors if e.code() == code]
            if found:
                return found[-1].str()
        if self.protocol == "PLAINTEXT" and any(e.code() == KafkaError._ALL_BROKERS_DOWN for e in self.errors):
            return ("every broker hung up or was unreachable over PLAINTEXT; if its listener wants TLS/SASL, "
                    "set KAFKA_SECURITY_PROTOCOL (SASL_SSL) and the KAFKA_SASL_*/KAFKA_SSL_* settings")
        return ""
