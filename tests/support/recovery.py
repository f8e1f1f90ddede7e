"""Helpers for fault tests: private Kafka/MariaDB servers a test may stop, and waits on a batch's progress.

The servers come from scripts/kafka.sh and scripts/mariadb.sh (KAFKA_DIR / MARIADB_DIR make them
private, on free ports): other engineers' tests use the shared servers at the same time. The
pipeline as processes and the exactly-once checks are in `cofi.devtools` (bench/chaos.py uses them too).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from sqlalchemy import Engine

from cofi.devtools.checks import batch_row, rows, stage_state
from cofi.devtools.pipeline import REPO, wait_for
from cofi.pipeline.stages import stage
from tests.support.servers import free_port, unavailable


def done_files(db: Engine, batch_id: int, name: str) -> set[str]:
    return {r[0] for r in rows(db, f"SELECT file FROM fileDistribution WHERE batchId = :b "
                                   f"AND {stage(name).done_column} = 1", b=batch_id)}


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


def running(server: PrivateServer) -> Iterator[PrivateServer]:
    """A fixture's body: the private server started (a skip, or an error under CI, when it cannot
    start), yielded, removed with its data afterwards."""
    try:
        server.start()
    except (RuntimeError, subprocess.TimeoutExpired, OSError) as exc:
        server.remove()
        unavailable(f"cannot start a private {server.script} server: {exc}")
    try:
        yield server
    finally:
        server.remove()


class PrivateServer:
    """A second Kafka broker or MariaDB server from the project's script, on free ports, data in a tmp dir."""

    script: str
    dir_var: str
    pid_name = ""

    def __init__(self, root: Path | None = None) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix=f"cofi-{self.script[:5]}-", dir=root))
        self.port = free_port()
        self.env = {**os.environ, self.dir_var: str(self.dir), **self.ports_env()}

    def ports_env(self) -> dict[str, str]:
        raise NotImplementedError

    def _run(self, command: str, *args: str, timeout: float = 180) -> str:
        res = subprocess.run(["bash", str(REPO / "scripts" / self.script), command, *args], env=self.env, cwd=REPO,
                             capture_output=True, text=True, timeout=timeout)
        if res.returncode != 0:
            raise RuntimeError(f"{self.script} {command} failed ({res.returncode}): {res.stdout[-2000:]}"
                               f"{res.stderr[-2000:]}")
        return res.stdout

    def start(self) -> str:
        """Start (or adopt) the server; the script's output."""
        return self._run("start")

    def stop(self) -> None:
        self._run("stop")

    def kill9(self) -> None:
        """SIGKILL the server (a crash, not a shutdown)."""
        pid = int((self.dir / "run" / self.pid_name).read_text().strip())
        os.kill(pid, 9)
        wait_for(lambda: pid_gone(pid), 30, f"{self.script} pid {pid} gone")

    def remove(self) -> None:
        """Stop and delete; with COFI_KEEP_SERVER_LOGS=<dir> the server's logs are copied there first
        (the only trace of why a private broker misbehaved once its tmp dir is gone)."""
        try:
            self.stop()
        finally:
            keep = os.environ.get("COFI_KEEP_SERVER_LOGS")
            if keep:
                shutil.copytree(self.dir, Path(keep) / self.dir.name, dirs_exist_ok=True,
                                ignore=shutil.ignore_patterns("data", "*.jar"))
            shutil.rmtree(self.dir, ignore_errors=True)


def pid_gone(pid: int) -> bool:
    return not Path(f"/proc/{pid}").exists() or _zombie(pid)


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
