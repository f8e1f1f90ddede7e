"""How the CLI writes: one command event produced to Kafka and acknowledged, or one clear error."""

from __future__ import annotations

from cofi.errors import EXIT_UNREACHABLE, CliError, KafkaUnavailable
from cofi.ops.cli.readmodel import first_line
from cofi.pipeline.kafka import ConnectErrors, make_producer
from cofi.settings import Settings

KAFKA_TIMEOUT_S = 5.0


def _kafka_reason(exc: Exception) -> str:
    err = exc.args[0] if exc.args else None
    return err.str() if hasattr(err, "str") else first_line(exc)


def send_event(settings: Settings, topic: str, key: str, value: bytes) -> None:
    """Produce one event and wait for the broker's acknowledgement; CliError(3) if it cannot."""
    from confluent_kafka import KafkaException

    errors = ConnectErrors(settings)
    producer = make_producer(settings, None, **{"log_level": 0, "message.timeout.ms": 15_000, "error_cb": errors})
    where = settings.kafka_bootstrap_servers
    try:
        topics = producer.list_topics(timeout=KAFKA_TIMEOUT_S).topics
    except KafkaException as exc:
        raise KafkaUnavailable(f"Kafka at {where} did not answer within {KAFKA_TIMEOUT_S:.0f}s "
                               f"({errors.reason(producer) or _kafka_reason(exc)}); start it with `make up` "
                               "or set KAFKA_BOOTSTRAP_SERVERS") from None
    if topic not in topics:
        acl = (f" (or the ACLs do not let principal {settings.kafka_sasl_username!r} see it)"
               if settings.kafka_sasl_username else "")
        raise CliError(f"topic {topic} does not exist on Kafka at {where}{acl}; "
                       "create the topics with `python -m cofi.ops.admin init` (part of `make up`)", EXIT_UNREACHABLE)
    errors: list[str] = []
    producer.produce(topic, key=key.encode(), value=value,
                     on_delivery=lambda err, _msg: errors.append(str(err)) if err else None)
    left = producer.flush(20)
    if left or errors:
        raise CliError(f"Kafka at {where} did not acknowledge the event on {topic}: "
                       f"{errors[0] if errors else 'timed out'}", EXIT_UNREACHABLE)
