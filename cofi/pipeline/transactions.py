"""The transactional producer every consume-process-produce loop uses (stage workers, tracker).

One transaction per batch: the outputs and the consumed offsets, committed together or not at all.
Connecting retries while Kafka is unreachable; a producer that lived through a broker outage is
replaced, because librdkafka may hang in its next transaction (see `send_offsets_bounded`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from confluent_kafka import KafkaError, KafkaException, Producer, TopicPartition

from cofi.errors import TransactionStuck
from cofi.pipeline.kafka import producer_config
from cofi.settings import Settings

log = logging.getLogger(__name__)

TXN_OFFSETS_TIMEOUT_S = 15.0
COMMIT_TIMEOUT_S = 120.0
# Fatal errors a new producer would not cure: another instance owns the transactional.id (it fenced this
# one; renewing would fence it back), or the principal may not use it. Other fatal errors renew the producer.
STOP_CODES = frozenset({KafkaError._FENCED, KafkaError.PRODUCER_FENCED, KafkaError.INVALID_PRODUCER_EPOCH,
                        KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED})


@dataclass(slots=True)
class Outgoing:
    """One record to produce inside the batch's transaction."""

    topic: str
    key: str | bytes | None
    value: bytes
    headers: list[tuple[str, bytes]] | None = None  # dead letters carry their reason here


def offsets_after(positions: Iterable[tuple[str, int, int]]) -> dict[tuple[str, int], int]:
    """(topic, partition, offset) of consumed messages -> the offset to commit per partition."""
    out: dict[tuple[str, int], int] = {}
    for topic, partition, offset in positions:
        out[(topic, partition)] = max(out.get((topic, partition), -1), offset + 1)
    return out


def send_offsets_bounded(producer: Producer, offsets: list[TopicPartition], group_metadata: object,
                         timeout_s: float = TXN_OFFSETS_TIMEOUT_S) -> None:
    """`send_offsets_to_transaction` that cannot block forever.

    librdkafka (2.16 included) ignores this call's timeout when the group coordinator goes away
    mid-call and may never return, even once the broker is back (confluentinc/librdkafka#5456,
    #5511): a broker restart froze every worker. The call runs on a daemon thread; past the timeout
    the caller gets TransactionStuck and replaces the producer (a new one with the same
    transactional.id fences the stuck one and aborts its transaction).
    """
    outcome: list[BaseException | None] = []

    def call() -> None:
        try:
            producer.send_offsets_to_transaction(offsets, group_metadata, timeout_s)
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            outcome.append(exc)

    thread = threading.Thread(target=call, name="send-offsets", daemon=True)
    thread.start()
    thread.join(timeout_s + 5)
    if not outcome:
        raise TransactionStuck(f"send_offsets_to_transaction did not return within {timeout_s + 5:.0f}s")
    if outcome[0] is not None:
        raise outcome[0]


class TransactionalSender:
    """A transactional producer with a stable `transactional.id`, owned by one loop."""

    def __init__(self, settings: Settings, transactional_id: str, who: str, stopping: threading.Event,
                 alive: Callable[[], None] = lambda: None) -> None:
        self.settings = settings
        self.alive = alive  # called on each connection attempt: waiting for a broker that is down is not a hang
        self.transactional_id = transactional_id
        self.who = who
        self.stopping = stopping
        self.outage = threading.Event()
        self.producer: Producer | None = None

    def error_cb(self, err: KafkaError) -> None:
        """For the loop's consumer: remember that every broker was unreachable."""
        if err.code() == KafkaError._ALL_BROKERS_DOWN:
            self.outage.set()

    def connect(self) -> bool:
        """init_transactions, retrying with backoff while Kafka is unreachable; False when stopped first."""
        delay = 1.0
        while not self.stopping.is_set():
            self.alive()
            try:
                producer = Producer(producer_config(self.settings, self.transactional_id))
                producer.init_transactions(self.settings.kafka_connect_timeout_s)
                self.producer = producer
                return True
            except KafkaException as exc:
                log.error("%s: cannot reach Kafka at %s (%s); retrying in %.0fs",
                          self.who, self.settings.kafka_bootstrap_servers, exc.args[0], delay)
                self.stopping.wait(delay)
                delay = min(delay * 2, 30.0)
        return False

    def renew(self, why: str) -> None:
        """A new producer with the same transactional.id fences the old one and aborts its transaction."""
        log.warning("%s: %s; starting a new transactional producer", self.who, why)
        self.outage.clear()
        self.producer = None
        self.connect()

    def renew_after_outage(self) -> bool:
        """Renew the producer when the consumer saw every broker down; True when it did."""
        if not self.outage.is_set():
            return False
        self.renew("every broker was unreachable")
        return True

    def commit(self, outputs: Iterable[Outgoing], offsets: dict[tuple[str, int], int],
               group_metadata: object) -> bool:
        """One transaction with `outputs` and `offsets`. False when it was aborted (the caller re-reads
        the batch); a fatal error of STOP_CODES (fenced by another instance) stops the loop and raises, any
        other fatal error replaces the producer and re-reads the batch."""
        assert self.producer is not None
        try:
            self.producer.begin_transaction()
            for out in outputs:
                self._produce(out)
            send_offsets_bounded(self.producer, [TopicPartition(t, p, o) for (t, p), o in offsets.items()],
                                 group_metadata)
            self.producer.commit_transaction(COMMIT_TIMEOUT_S)
            return True
        except TransactionStuck as exc:
            self.renew(f"{exc}, the batch will be re-read")
            return False
        except BufferError as exc:
            log.warning("%s: transaction aborted, the batch will be re-read: %s", self.who, exc)
            self._abort()
            return False
        except KafkaException as exc:
            err = exc.args[0]
            if getattr(err, "fatal", lambda: False)():
                self._unusable(exc)
                return False
            log.warning("%s: transaction aborted, the batch will be re-read: %s", self.who, err)
            self._abort()
            return False

    def _abort(self) -> None:
        assert self.producer is not None
        try:
            self.producer.abort_transaction(30)
        except KafkaException as exc:  # the producer cannot begin another transaction until this one ends
            self._unusable(exc)

    def _unusable(self, exc: KafkaException) -> None:
        """After a fatal error, or a failed abort: stop by raising `exc` for STOP_CODES, else replace the
        producer (e.g. INVALID_TXN_STATE when the transaction coordinator died with the transaction open and
        its successor aborted it: this producer is unusable, a new one is not)."""
        err = exc.args[0]
        if getattr(err, "code", lambda: None)() in STOP_CODES:
            log.error("%s: fatal producer error (another instance with transactional.id %s, or no right to it?): "
                      "%s", self.who, self.transactional_id, err)
            self.stopping.set()
            raise exc
        self.stopping.wait(1.0)  # no hot loop if it keeps happening
        self.renew(f"producer unusable ({err}); the batch will be re-read")

    def _produce(self, out: Outgoing) -> None:
        """Produce one record, waiting for room in the local queue at most PRODUCE_QUEUE_TIMEOUT_S (then
        BufferError: the transaction is aborted and re-read, instead of a loop that never ends)."""
        assert self.producer is not None
        deadline = time.monotonic() + self.settings.produce_queue_timeout_s
        while True:
            try:
                self.producer.produce(out.topic, key=out.key, value=out.value, headers=out.headers)
                return
            except BufferError:
                if time.monotonic() > deadline or self.stopping.is_set():
                    raise BufferError(f"the producer queue stayed full for {self.settings.produce_queue_timeout_s:.0f}s "
                                      f"(broker slow or down?) producing to {out.topic}") from None
                self.producer.poll(0.1)

    def close(self) -> None:
        if self.producer is not None:
            try:
                self.producer.flush(10)
            except KafkaException as exc:  # a producer left fatal by a broker failure: nothing to flush
                log.warning("%s: closing the producer: %s", self.who, exc.args[0])
            self.producer = None
