"""LOOP_STALL_EXIT_S: a service whose main loop hangs writes its stacks and exits for its supervisor to
restart it; a loop that moves, or waits for a broker that is down, is never stopped."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer
from prometheus_client import CollectorRegistry

from cofi.pipeline.metrics import Heartbeat
from cofi.pipeline.service import ServiceLoop
from cofi.pipeline.transactions import TransactionalSender
from cofi.pipeline.watchdog import EXIT_STALLED, LoopWatchdog
from cofi.settings import Settings


def test_a_stale_heartbeat_writes_every_stack_then_exits(tmp_path: Path) -> None:
    beat, exits = Heartbeat(), list[int]()
    with (tmp_path / "log").open("w+") as log:
        dog = LoopWatchdog(beat, 5.0, "lid", exit=exits.append, stream=log)
        assert not dog.check() and exits == []
        beat.last -= 6.0
        assert dog.check()
        log.seek(0)
        stacks = log.read()
    assert exits == [EXIT_STALLED]
    assert "test_a_stale_heartbeat_writes_every_stack_then_exits" in stacks  # this thread's frame


def test_zero_disables_it() -> None:
    beat, exits = Heartbeat(), list[int]()
    beat.last -= 10_000
    dog = LoopWatchdog(beat, 0, "lid", exit=exits.append).start()
    assert not dog.enabled and not dog.check() and exits == []


class _Hangs(ServiceLoop):
    """A service whose third step never returns (until the watchdog's exit lets it go)."""

    def __init__(self, settings: Settings, topic: str) -> None:
        super().__init__(settings, who="hangs", group=f"{topic}-g", transactional_id=f"{topic}-tx",
                         registry=CollectorRegistry(), metrics_port=0, serve_metrics=False)
        self.topic, self.steps, self.released = topic, 0, threading.Event()

    def subscribe(self, consumer: Consumer) -> None:
        consumer.subscribe([self.topic])

    def step(self) -> None:
        self.steps += 1
        if self.steps == 3:
            self.wait_here_forever()
        else:
            time.sleep(0.05)

    def wait_here_forever(self) -> None:
        self.released.wait(60)
        self.stopping.set()


@pytest.mark.integration
def test_a_service_stuck_in_its_loop_exits_with_the_stuck_frame_on_record(settings: Settings, tmp_path: Path) -> None:
    svc = _Hangs(settings.model_copy(update={"loop_stall_exit_s": 2.0}), f"{settings.topic_prefix}-hangs")
    exits: list[int] = []

    def exit_(code: int) -> None:  # os._exit in a service; here: record it and let the loop go
        exits.append(code)
        svc.released.set()

    with (tmp_path / "log").open("w+") as log:
        svc.watchdog.exit, svc.watchdog.stream = exit_, log
        began = time.monotonic()
        thread = threading.Thread(target=svc.run, daemon=True)
        thread.start()
        thread.join(60)
        log.seek(0)
        stacks = log.read()
    assert not thread.is_alive() and exits == [EXIT_STALLED]
    assert time.monotonic() - began >= 2.0
    assert "wait_here_forever" in stacks, stacks
    assert not svc.watchdog._thread.is_alive(), "a closed service's watchdog must stop with it"


def test_waiting_for_an_unreachable_broker_counts_as_alive() -> None:
    """connect() retries while Kafka is down (that can last): each attempt beats the heartbeat."""
    stopping, beats = threading.Event(), list[float]()

    def alive() -> None:
        beats.append(time.monotonic())
        if len(beats) == 2:
            stopping.set()  # after this attempt

    s = Settings(kafka_bootstrap_servers="127.0.0.1:9", kafka_connect_timeout_s=0.3)
    sender = TransactionalSender(s, "watchdog-tx", "test", stopping, alive=alive)
    guard = threading.Timer(15, stopping.set)  # a connect() that never beats fails below instead of hanging
    guard.start()
    try:
        assert sender.connect() is False
    finally:
        guard.cancel()
    assert len(beats) == 2 and sender.producer is None
