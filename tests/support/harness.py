"""Helpers for pipeline tests on the real broker: run stage workers and the tracker in threads or
processes, feed events, and count what comes out with a read_committed consumer."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer

from cofi.pipeline import events
from cofi.pipeline.codec import get_codec
from cofi.pipeline.engine import Engine
from cofi.pipeline.kafka import consumer_config, make_producer
from cofi.pipeline.passthrough import PassthroughEngine
from cofi.pipeline.topics import Topics
from cofi.pipeline.worker import StageWorker
from cofi.settings import Settings

REPO = Path(__file__).resolve().parent.parent


def file_event(i: int, plan: list[str], batch_id: int = 1, **extra: Any) -> dict[str, Any]:
    return {"eventId": events.new_event_id(), "batchId": batch_id, "fileId": f"f{i:05d}", "file": f"call{i:05d}.wav",
            "audioPath": f"/calls/call{i:05d}.wav", "currentAudio": f"/calls/call{i:05d}.wav", "stages": plan,
            "emittedAt": events.now(), "results": events.empty_results(), **extra}


def produce(settings: Settings, topic: str, values: Iterable[tuple[str | None, bytes]]) -> int:
    p = make_producer(settings)
    n = 0
    for key, value in values:
        p.produce(topic, key=key, value=value)
        n += 1
        if n % 1000 == 0:
            p.poll(0)
    assert p.flush(30) == 0
    return n


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


def service_env(settings: Settings, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers, "DATABASE_URL": settings.database_url,
        "TOPIC_PREFIX": settings.topic_prefix, "ARTIFACT_ROOT": str(settings.artifact_root),
        "METRICS_PORT": "0", "COMMIT_EVERY_MESSAGES": str(settings.commit_every_messages),
        "COMMIT_EVERY_MS": str(settings.commit_every_ms), "SESSION_TIMEOUT_MS": str(settings.session_timeout_ms),
        "RETRY_BACKOFF_MS": str(settings.retry_backoff_ms), "PYTHONPATH": str(REPO),
        "LOG_FILE_START_EVENTS": str(settings.log_file_start_events).lower(),
        "PROGRESS_UPDATE_INTERVAL": str(settings.progress_update_interval),
    })
    env.update(extra)
    return env


class ServiceProcess:
    """`python -m services.<name>` as a real process, for kill -9 tests."""

    def __init__(self, name: str, settings: Settings, log_dir: Path, **env: str) -> None:
        self.name = name
        self.env = service_env(settings, **env)
        self.log_path = log_dir / f"{name}-{uuid.uuid4().hex[:6]}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ServiceProcess:
        self.log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([sys.executable, "-m", f"services.{self.name}"], cwd=REPO, env=self.env,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        return self

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def terminate(self, timeout: float = 60) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)
        if hasattr(self, "log"):
            self.log.close()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")
