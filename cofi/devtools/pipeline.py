"""The whole pipeline as real processes, for fault tests and benchmarks (tests/, bench/).

Nothing here fakes a part: every service is `python -m services.<name>` on the real broker and
database, with `passthrough` engines unless told otherwise.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from cofi.pipeline.kafka import make_producer
from cofi.pipeline.stages import STAGES, services
from cofi.settings import Settings

REPO = Path(__file__).resolve().parents[2]
SERVICES: tuple[str, ...] = tuple(name for name, _, _ in services())  # the tracker, then every stage


def end_process(proc: subprocess.Popen, timeout: float = 20) -> None:
    """SIGTERM a helper server (s3proxy, the LLM server), SIGKILL it if it has not gone after `timeout` s."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def free_port() -> int:
    """A TCP port on 127.0.0.1 nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, detail: Callable[[], str] = lambda: "",
             every: float = 0.1) -> Any:
    """Poll until `predicate()` is truthy; fail with `what` and `detail()` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        got = predicate()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout:.0f}s. {detail()}")
        time.sleep(every)


def produce(settings: Settings, topic: str, values: Iterable[tuple[str | None, bytes]]) -> int:
    """Plain (non-transactional) produce of (key, value) pairs, flushed; the count sent."""
    p = make_producer(settings)
    n = 0
    for key, value in values:
        p.produce(topic, key=key, value=value)
        n += 1
        if n % 1000 == 0:
            p.poll(0)
    assert p.flush(30) == 0
    return n


@contextmanager
def scratch(settings: Settings, server_url: str) -> Iterator[Settings]:
    """`settings` on a database of their own (created on `server_url`, migrated) and topics of their own
    (under their prefix), both removed afterwards: one benchmark run."""
    from cofi.db import migrate
    from cofi.ops.admin import delete_topics, ensure_topics

    server = create_engine(server_url)
    name = f"cofi_test_{settings.topic_prefix}"
    with server.begin() as c:
        c.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"))
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    s = settings.model_copy(update={"database_url": url})
    try:
        migrate(url)
        ensure_topics(s)
        yield s
    finally:
        delete_topics(s)
        with server.begin() as c:
            c.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
        server.dispose()


def service_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment a service process needs to see `settings` (broker, database, topics, ...)."""
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
    env.update(security_env(settings))
    env.update(extra)
    return env


def security_env(settings: Settings) -> dict[str, str]:
    """The security settings a child process needs (never the parent's own Kafka credentials: each
    service logs in as its own principal, see `principal_env`)."""
    env = {"KAFKA_SECURITY_PROTOCOL": settings.kafka_security_protocol,
           "KAFKA_SASL_MECHANISM": settings.kafka_sasl_mechanism,
           "KAFKA_SSL_ENDPOINT_IDENTIFICATION": settings.kafka_ssl_endpoint_identification}
    if settings.kafka_ssl_ca_location is not None:
        env["KAFKA_SSL_CA_LOCATION"] = str(settings.kafka_ssl_ca_location)
    if settings.audio_roots:
        env["AUDIO_ROOTS"] = json.dumps([str(r) for r in settings.audio_roots])
    return env


def principal_env(secrets_dir: Path | None, principal: str) -> dict[str, str]:
    """KAFKA_SASL_USERNAME/_PASSWORD_FILE of `principal` from a folder of `<name>.password` files."""
    if secrets_dir is None:
        return {}
    return {"KAFKA_SASL_USERNAME": principal, "KAFKA_SASL_PASSWORD_FILE": str(secrets_dir / f"{principal}.password")}


class ServiceProcess:
    """`python -m services.<name>` as a real process (stdout and stderr to a log file), for kill -9 tests."""

    def __init__(self, name: str, settings: Settings, log_dir: Path, module: str | None = None, **env: str) -> None:
        self.name = name
        self.argv = ["-m", module, name] if module else ["-m", f"services.{name}"]
        self.env = service_env(settings, **env)
        self.log_path = log_dir / f"{name}-{uuid.uuid4().hex[:6]}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ServiceProcess:
        self.log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([sys.executable, *self.argv], cwd=REPO, env=self.env,
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


class Pipeline:
    """The tracker and every stage service, each `python -m services.<name>` with passthrough engines.

    Every start of a service gets its own WORKER_ID (`<name>-<n>`, so processing_logs tell which
    process did a file) and keeps one WORKER_INSTANCE (so a restart fences and aborts the killed
    process's open Kafka transaction at once instead of after its timeout).
    """

    def __init__(self, settings: Settings, log_dir: Path, extra_env: dict[str, dict[str, str]] | None = None,
                 kafka_secrets: Path | None = None, modules: dict[str, str] | None = None,
                 **common_env: str) -> None:
        self.settings = settings
        self.kafka_secrets = kafka_secrets  # <principal>.password files: each service logs in as itself
        self.modules = modules or {}  # service -> module run as `python -m <module> <service>` instead
        self.log_dir = log_dir
        self.extra_env = extra_env or {}
        self.common_env = {**{f"{s.upper()}_ENGINE": "passthrough" for s in STAGES}, **common_env}
        self.procs: dict[str, ServiceProcess] = {}
        self.starts: Counter[str] = Counter()
        self.retired: list[ServiceProcess] = []

    def worker_id(self, name: str, start: int | None = None) -> str:
        return f"{name}-{self.starts[name] if start is None else start}"

    def start(self, *names: str, **env: str) -> Pipeline:
        for name in names or SERVICES:
            self.starts[name] += 1
            proc_env = {**principal_env(self.kafka_secrets, name), **self.common_env, **self.extra_env.get(name, {}), **env,
                        "WORKER_INSTANCE": f"{name}-i", "WORKER_ID": self.worker_id(name)}
            self.procs[name] = ServiceProcess(name, self.settings, self.log_dir, self.modules.get(name),
                                              **proc_env).start()
        return self

    def kill(self, name: str) -> None:
        """SIGKILL: no drain, no commit, an open transaction left behind."""
        proc = self.procs.pop(name)
        proc.kill()
        proc.stop()
        self.retired.append(proc)

    def restart(self, name: str, **env: str) -> None:
        self.start(name, **env)

    def worker(self, stage: str, start: int | None = None) -> str:
        """The `worker` value in processing_logs of the given start of a stage service."""
        return f"{stage}@{self.worker_id(stage, start)}"

    def pids(self) -> dict[str, int]:
        """The process id of every current service."""
        return {n: p.proc.pid for n, p in self.procs.items() if p.proc is not None}

    def exited(self) -> dict[str, int]:
        """Services whose process ended on its own (a crash), with the exit code."""
        return {n: p.proc.returncode for n, p in self.procs.items()
                if p.proc is not None and p.proc.poll() is not None}

    def wait_started(self, timeout: float = 60) -> None:
        """Until every current process has installed its SIGTERM handler (it logs its run line after)."""
        def started() -> bool:
            return all(p.proc is not None and (p.proc.poll() is not None or any(
                mark in p.output() for mark in (": engine=", "tracker: group="))) for p in self.procs.values())

        wait_for(started, timeout, "every service started", lambda: self.logs())

    def terminate_all(self, timeout: float = 60) -> dict[str, int]:
        """SIGTERM everyone (they drain and commit); exit codes by service."""
        self.wait_started()
        codes = {}
        for p in self.procs.values():
            if p.proc is not None and p.proc.poll() is None:
                p.proc.terminate()
        for name, p in self.procs.items():
            assert p.proc is not None
            try:
                codes[name] = p.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                codes[name] = -999
        return codes

    def stop(self) -> None:
        for p in [*self.procs.values(), *self.retired]:
            p.stop()

    def output(self, name: str) -> str:
        """Everything every process of this service wrote, restarts included."""
        return "\n".join(p.output() for p in [*self.retired, *self.procs.values()] if p.name == name)

    def stacks_and_logs(self) -> str:
        """The logs after every live service wrote its threads' stacks (SIGUSR1): the detail of a batch
        that did not finish shows where a stuck service waits."""
        for p in self.procs.values():
            if p.proc is not None and p.proc.poll() is None:
                p.proc.send_signal(signal.SIGUSR1)
        time.sleep(1)
        return self.logs(tail=8000)

    def logs(self, name: str | None = None, tail: int = 3000) -> str:
        procs = [p for p in [*self.retired, *self.procs.values()] if name is None or p.name == name]
        return "\n".join(f"--- {p.log_path.name}\n{p.output()[-tail:]}" for p in procs)

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
