"""Helpers for fault tests and bench/chaos.py: the whole pipeline as real processes, private
Kafka/MariaDB servers that a test may stop, and the exactly-once checks on topics and tables.

Nothing here fakes a part: processes are `python -m services.<name>`, servers come from
scripts/kafka.sh and scripts/mariadb.sh (KAFKA_DIR / MARIADB_DIR make them private).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaError, TopicPartition
from sqlalchemy import Engine, text

from cofi.pipeline.codec import get_codec
from cofi.pipeline.kafka import consumer_config
from cofi.pipeline.topics import STAGES, Topics
from cofi.settings import Settings
from tests.harness import REPO, ServiceProcess

SERVICES: tuple[str, ...] = ("tracker", *STAGES)
FLAG = {s: f"{s}Done" for s in STAGES}
STATUS = {s: f"{s}Status" for s in STAGES}


def free_port() -> int:
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


# ---- the pipeline as processes -------------------------------------------------------------------

class Pipeline:
    """The tracker and the six stage services, each `python -m services.<name>` with passthrough engines.

    Every start of a service gets its own WORKER_ID (`<name>-<n>`, so processing_logs tell which
    process did a file) and keeps one WORKER_INSTANCE (so a restart fences and aborts the killed
    process's open Kafka transaction at once instead of after its timeout).
    """

    def __init__(self, settings: Settings, log_dir: Path, extra_env: dict[str, dict[str, str]] | None = None,
                 **common_env: str) -> None:
        self.settings = settings
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
            proc_env = {**self.common_env, **self.extra_env.get(name, {}), **env,
                        "WORKER_INSTANCE": f"{name}-i", "WORKER_ID": self.worker_id(name)}
            self.procs[name] = ServiceProcess(name, self.settings, self.log_dir, **proc_env).start()
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

    def logs(self, name: str | None = None, tail: int = 3000) -> str:
        procs = [p for p in [*self.retired, *self.procs.values()] if name is None or p.name == name]
        return "\n".join(f"--- {p.log_path.name}\n{p.output()[-tail:]}" for p in procs)

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ---- reading the database -------------------------------------------------------------------------

def rows(db: Engine, sql: str, **params: Any) -> list[tuple]:
    with db.connect() as c:
        return [tuple(r) for r in c.execute(text(sql), params)]


def scalar(db: Engine, sql: str, **params: Any) -> Any:
    with db.connect() as c:
        return c.execute(text(sql), params).scalar()


def stage_state(db: Engine, batch_id: int, stage: str) -> tuple[str | None, int]:
    """(batchStatus.<stage>Status, number of files whose <stage>Done = 1)."""
    status = scalar(db, f"SELECT {STATUS[stage]} FROM batchStatus WHERE id = :b", b=batch_id)
    done = scalar(db, f"SELECT COALESCE(SUM({FLAG[stage]}), 0) FROM fileDistribution WHERE batchId = :b",
                  b=batch_id)
    return status, int(done or 0)


def done_files(db: Engine, batch_id: int, stage: str) -> set[str]:
    return {r[0] for r in rows(db, f"SELECT file FROM fileDistribution WHERE batchId = :b AND {FLAG[stage]} = 1",
                               b=batch_id)}


def batch_row(db: Engine, batch_id: int) -> dict[str, Any] | None:
    with db.connect() as c:
        r = c.execute(text("SELECT * FROM batchStatus WHERE id = :b"), {"b": batch_id}).mappings().first()
    return dict(r) if r else None


def wait_in_stage(db: Engine, batch_id: int, stage: str, n: int, at_least: int, timeout: float = 90,
                  detail: Callable[[], str] = lambda: "") -> int:
    """Block until the stage is InProgress with at_least <= done < n files; returns done."""
    def ready() -> int | None:
        status, done = stage_state(db, batch_id, stage)
        return done if status == "InProgress" and at_least <= done < n else None

    return wait_for(ready, timeout, f"{stage} InProgress with {at_least}..{n - 1} files done",
                    lambda: f"state {stage_state(db, batch_id, stage)}. {detail()}", every=0.05)


def wait_completed(db: Engine, batch_id: int, timeout: float, detail: Callable[[], str] = lambda: "") -> dict:
    def done() -> dict | None:
        row = batch_row(db, batch_id)
        return row if row is not None and row["status"] in ("Completed", "Failed", "Cancelled") else None

    return wait_for(done, timeout, f"batch {batch_id} finished", lambda: f"row {batch_row(db, batch_id)}. {detail()}",
                    every=0.3)


# ---- reading topics -------------------------------------------------------------------------------

def read_topic(settings: Settings, topic: str, timeout: float = 60) -> list[bytes]:
    """Every committed message of a topic (read_committed, from the start up to the end of each partition)."""
    consumer = Consumer(consumer_config(settings, f"reader-{os.getpid()}-{time.monotonic_ns()}",
                                        **{"enable.partition.eof": True}))
    try:
        meta = consumer.list_topics(topic, timeout=10).topics[topic]
        parts = [TopicPartition(topic, p, 0) for p in meta.partitions]
        consumer.assign(parts)
        eof: set[int] = set()
        out: list[bytes] = []
        deadline = time.monotonic() + timeout
        while len(eof) < len(parts):
            if time.monotonic() > deadline:
                raise AssertionError(f"{topic}: end not reached in {timeout:.0f}s (partitions at end: {sorted(eof)})")
            m = consumer.poll(0.5)
            if m is None:
                continue
            if m.error() is not None:
                if m.error().code() == KafkaError._PARTITION_EOF:
                    eof.add(m.partition())
                    continue
                raise AssertionError(f"{topic}: {m.error()}")
            out.append(m.value())
        return out
    finally:
        consumer.close()


def file_counts(settings: Settings, topic: str) -> Counter[str]:
    codec = get_codec()
    return Counter(codec.decode_as("FileEvent", v)["fileId"] for v in read_topic(settings, topic))


# ---- the exactly-once checks ----------------------------------------------------------------------

def exactly_once_problems(settings: Settings, db: Engine, batch_id: int, n: int) -> list[str]:
    """Everything that is not "each file once per stage, every flag set, every row once"; [] when all is right.

    For a batch of n files, every stage enabled, no file failing; the batchExecutionLog rows expected
    follow `settings.log_file_start_events` and `settings.progress_update_interval`.
    """
    problems: list[str] = []
    row = batch_row(db, batch_id)
    if row is None:
        return [f"no batchStatus row for {batch_id}"]
    if (row["status"], row["totalFiles"], row["completedFiles"], row["failedFiles"]) != ("Completed", n, n, 0):
        problems.append(f"batchStatus: status={row['status']} total={row['totalFiles']} "
                        f"completed={row['completedFiles']} failed={row['failedFiles']}")
    problems += [f"batchStatus.{STATUS[s]} = {row[STATUS[s]]}" for s in STAGES if row[STATUS[s]] != "Completed"]

    flags = rows(db, "SELECT COUNT(*), " + ", ".join(f"COALESCE(SUM({FLAG[s]}), 0)" for s in STAGES)
                 + ", COALESCE(SUM(status = 'Completed'), 0) FROM fileDistribution WHERE batchId = :b", b=batch_id)[0]
    if [int(v) for v in flags] != [n] * 8:
        problems.append(f"fileDistribution rows/flags/completed: {[int(v) for v in flags]}, want {[n] * 8}")

    per = rows(db, "SELECT stage_name, status, COUNT(*), COUNT(DISTINCT file) FROM processing_logs "
                   "WHERE batch_id = :b GROUP BY stage_name, status", b=str(batch_id))
    want = {(s, "success", n, n) for s in STAGES}
    if {(s, st, int(c), int(d)) for s, st, c, d in per} != want:
        problems.append(f"processing_logs (stage, status, rows, files): {sorted(per)}")

    log_counts = {(s, e): int(c) for s, e, c in rows(
        db, "SELECT stage, eventType, COUNT(*) FROM batchExecutionLog WHERE batchId = :b GROUP BY 1, 2", b=batch_id)}
    want_log = {(None, "batch_complete"): 1}
    interval = settings.progress_update_interval
    for s in STAGES:
        want_log.update({(s, "stage_start"): 1, (s, "stage_complete"): 1})
        if settings.log_file_start_events:
            want_log[(s, "file_start")] = n
        if interval <= 1:
            want_log[(s, "file_complete")] = n
        elif n >= interval:
            want_log[(s, "progress")] = n // interval
    if log_counts != want_log:
        diff = {k: (log_counts.get(k), want_log.get(k)) for k in set(log_counts) | set(want_log)
                if log_counts.get(k) != want_log.get(k)}
        problems.append(f"batchExecutionLog counts (got, want): {diff}")
    audits = scalar(db, "SELECT COUNT(*) FROM auditResult WHERE batchId = :b AND verdict IS NOT NULL", b=batch_id)
    if audits != n:
        problems.append(f"auditResult rows with a verdict: {audits}, want {n}")

    topics = Topics(settings.topic_prefix)
    file_ids = {r[0] for r in rows(db, "SELECT fileId FROM fileDistribution WHERE batchId = :b", b=batch_id)}
    for topic in [*(topics.stage(s) for s in STAGES), topics.done]:
        counts = file_counts(settings, topic)
        dups = {f: c for f, c in counts.items() if c != 1}
        missing = file_ids - set(counts)
        if dups or missing or len(counts) != n:
            problems.append(f"{topic}: {len(counts)} files, {len(dups)} duplicated (e.g. {list(dups.items())[:3]}), "
                            f"{len(missing)} missing")
    failed = read_topic(settings, topics.failed)
    if failed:
        problems.append(f"{topics.failed}: {len(failed)} events, want none")
    return problems


# ---- private servers ------------------------------------------------------------------------------

class PrivateServer:
    """A second Kafka broker or MariaDB server from the project's script, on free ports, data in a tmp dir.

    Other engineers' tests use the shared servers at the same time: fault tests stop only these.
    """

    script: str
    dir_var: str

    def __init__(self, root: Path | None = None) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix=f"cofi-{self.script[:5]}-", dir=root))
        self.port = free_port()
        self.env = {**os.environ, self.dir_var: str(self.dir), **self.ports_env()}

    def ports_env(self) -> dict[str, str]:
        raise NotImplementedError

    def _run(self, command: str, timeout: float = 180) -> str:
        res = subprocess.run(["bash", str(REPO / "scripts" / self.script), command], env=self.env, cwd=REPO,
                             capture_output=True, text=True, timeout=timeout)
        if res.returncode != 0:
            raise RuntimeError(f"{self.script} {command} failed ({res.returncode}): {res.stdout[-2000:]}"
                               f"{res.stderr[-2000:]}")
        return res.stdout

    def start(self) -> None:
        self._run("start")

    def stop(self) -> None:
        self._run("stop")

    def kill9(self) -> None:
        """SIGKILL the server (a crash, not a shutdown)."""
        pid = int((self.dir / "run" / self.pid_name).read_text().strip())
        os.kill(pid, 9)
        wait_for(lambda: not Path(f"/proc/{pid}").exists() or _zombie(pid), 30, f"{self.script} pid {pid} gone")

    pid_name = ""

    def remove(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z")
    except (OSError, IndexError):
        return True


class PrivateKafka(PrivateServer):
    script, dir_var, pid_name = "kafka.sh", "KAFKA_DIR", "kafka.pid"

    def ports_env(self) -> dict[str, str]:
        return {"KAFKA_PORT": str(self.port), "KAFKA_CONTROLLER_PORT": str(free_port()),
                "KAFKA_HEAP_OPTS": "-Xms128m -Xmx384m", "KAFKA_STOP_TIMEOUT": "30"}

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"


class PrivateMariaDB(PrivateServer):
    script, dir_var, pid_name = "mariadb.sh", "MARIADB_DIR", "mariadb.pid"

    def ports_env(self) -> dict[str, str]:
        return {"MARIADB_PORT": str(self.port)}

    @property
    def server_url(self) -> str:
        return f"mysql+pymysql://cofi:cofi@127.0.0.1:{self.port}/"
