"""The scaffolding every consume-process-produce service shares (the stage worker and the tracker).

Signal handling, /metrics and /healthz, connecting while Kafka is unreachable, the run loop with
producer renewal after a broker outage, filtering consumer errors, rewinding after an abort, and
an orderly close. A subclass says what to subscribe to and what one step of work is.
"""

from __future__ import annotations

import faulthandler
import logging
import signal
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition
from prometheus_client import CollectorRegistry

from cofi.pipeline.kafka import consumer_config
from cofi.pipeline.metrics import HealthServer, Heartbeat
from cofi.pipeline.transactions import TransactionalSender
from cofi.pipeline.watchdog import LoopWatchdog
from cofi.settings import Settings

log = logging.getLogger(__name__)


def first_offsets(msgs: Iterable[Message]) -> dict[tuple[str, int], int]:
    """The lowest offset per (topic, partition) among `msgs`: where to re-read them from."""
    first: dict[tuple[str, int], int] = {}
    for m in msgs:
        key = (m.topic(), m.partition())
        first[key] = min(first.get(key, m.offset()), m.offset())
    return first


class ServiceLoop(ABC):
    """One service process's loop; `run()` until SIGTERM/SIGINT (or `stopping.set()`), then close."""

    def __init__(self, settings: Settings, *, who: str, group: str, transactional_id: str,
                 registry: CollectorRegistry, metrics_port: int, serve_metrics: bool = True) -> None:
        self.settings = settings
        self.who = who
        self.group = group
        self.registry = registry
        self.metrics_port = metrics_port
        self.serve_metrics = serve_metrics
        self.stopping = threading.Event()
        self.heartbeat = Heartbeat()
        self.sender = TransactionalSender(settings, transactional_id, who, self.stopping, alive=self.heartbeat.beat)
        self.watchdog = LoopWatchdog(self.heartbeat, settings.loop_stall_exit_s, who)
        self.consumer: Consumer | None = None
        self.health: HealthServer | None = None

    # ---- what a service says ------------------------------------------------------------------

    @abstractmethod
    def subscribe(self, consumer: Consumer) -> None:
        """Subscribe the new consumer to the service's topics."""

    @abstractmethod
    def step(self) -> None:
        """One unit of work: poll, process, commit."""

    def consumer_options(self) -> dict[str, Any]:
        return {}

    def health_detail(self) -> tuple[bool, dict[str, Any]]:
        """(ok, detail) beyond "the loop is alive and connected"."""
        return True, {}

    def on_start(self) -> None:
        """After /metrics is up, before connecting (start helper threads, log the configuration)."""

    def before_close(self) -> None:
        """Stop helper threads before the clients close."""

    def after_close(self) -> None:
        """Release what the service owns (engines, pools, database) after the clients closed."""

    # ---- lifecycle ----------------------------------------------------------------------------

    def install_signal_handlers(self) -> None:
        def stop(signum: int, _frame: object) -> None:
            log.info("%s: signal %d, finishing the current work and stopping", self.who, signum)
            self.stopping.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        # `kill -USR1 <pid>`: every thread's stack into the log, to see where a stuck service waits
        faulthandler.register(signal.SIGUSR1, all_threads=True)

    def _healthy(self) -> tuple[bool, dict[str, Any]]:
        ok, detail = self.health_detail()
        return ok and self.heartbeat.fresh() and self.consumer is not None, detail

    def _connect(self) -> None:
        """Init transactions (retrying while Kafka is unreachable), then the consumer."""
        if not self.sender.connect():
            return
        self.consumer = Consumer(consumer_config(self.settings, self.group, error_cb=self.sender.error_cb,
                                                 **self.consumer_options()))
        self.subscribe(self.consumer)

    def run(self) -> None:
        if self.serve_metrics:
            self.health = HealthServer(self.metrics_port, self.registry, self._healthy).start()
        self.on_start()
        self.heartbeat.beat()
        self.watchdog.start()
        try:
            self._connect()
            while not self.stopping.is_set():
                self.heartbeat.beat()
                if self.sender.renew_after_outage():
                    continue
                self.step()
        finally:
            self.close()

    def close(self) -> None:
        self.heartbeat.beat()  # closing is bounded too (SHUTDOWN_GRACE_S, client timeouts)
        self.before_close()
        if self.consumer is not None:
            try:
                self.consumer.close()
            except Exception:  # noqa: BLE001 - closing on the way out
                log.exception("%s: consumer close", self.who)
            self.consumer = None
        self.sender.close()
        self.after_close()
        if self.health is not None:
            self.health.stop()
        self.watchdog.stop()  # an in-process service (tests, the CLI) must not end its host later

    # ---- helpers for the step -----------------------------------------------------------------

    def usable(self, msgs: list[Message]) -> list[Message]:
        """Messages without an error; end-of-partition markers dropped, other errors logged."""
        ok = []
        for m in msgs:
            err = m.error()
            if err is None:
                ok.append(m)
            elif err.code() != KafkaError._PARTITION_EOF:
                log.warning("%s: consumer error: %s", self.who, err)
        return ok

    def seek(self, positions: dict[tuple[str, int], int]) -> None:
        """Re-read from these offsets (after an aborted transaction or a failed DB write)."""
        assert self.consumer is not None
        for (topic, partition), offset in positions.items():
            try:
                self.consumer.seek(TopicPartition(topic, partition, offset))
            except KafkaException as exc:
                log.warning("%s: seek %s[%d] failed (%s); the group re-reads after a rebalance",
                            self.who, topic, partition, exc)
