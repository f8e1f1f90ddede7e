"""A 3-broker cluster (replication 3, min.insync.replicas 2, acks=all, the transaction state log
replicated 3 times) loses a broker while a batch runs through the pipeline's processes: the leader of a
stage topic's partition (kill -9), the active KRaft controller (kill -9), and every broker in turn (a
rolling restart). Each time the batch completes with each file exactly once on every topic and exact
tables, and no service dies or is restarted by hand.

The cluster is PRIVATE (scripts/kafka.sh with KAFKA_BROKERS=3 and KAFKA_DIR, on free ports): other tests
use the shared broker meanwhile. Slow (minutes each): `make test-all`, or `pytest -m slow tests/test_cluster_faults.py`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from cofi.devtools.checks import batch_row, exactly_once_problems, stage_state
from cofi.devtools.pipeline import Pipeline, wait_for
from cofi.ops.admin import delete_topics, ensure_topics
from cofi.pipeline.topics import Topics
from cofi.settings import Settings
from tests.support.cluster import PrivateKafkaCluster
from tests.support.recovery import running, wait_completed, wait_in_stage
from tests.support.tracker import batch_start, submit

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(900)]

N = 120
SLOW = "lid"  # the batch sits here (PASSTHROUGH_DELAY_MS per file) while brokers go away


@pytest.fixture(scope="module")
def cluster() -> Iterator[PrivateKafkaCluster]:
    yield from running(PrivateKafkaCluster())  # type: ignore[misc]


@pytest.fixture
def cluster_settings(cluster: PrivateKafkaCluster, db_url: str, tmp_path: Path) -> Iterator[Settings]:
    cluster.wait_in_sync()  # a test starts on a whole cluster, whatever the one before it did
    s = Settings(kafka_bootstrap_servers=cluster.bootstrap, database_url=db_url,
                 topic_prefix=f"t{uuid.uuid4().hex[:10]}", topic_partitions=3, topic_replication=3,
                 artifact_root=tmp_path / "artifacts", metrics_port=0, commit_every_messages=10,
                 commit_every_ms=100, retry_backoff_ms=50, retry_backoff_max_ms=500, session_timeout_ms=6000)
    ensure_topics(s, timeout_s=60)
    try:
        yield s
    finally:
        delete_topics(s, timeout_s=60)


def _in_progress(db: Engine, batch: int) -> bool:
    row = batch_row(db, batch)
    return row is not None and row["status"] == "InProgress" and stage_state(db, batch, SLOW)[1] < N


def _run(s: Settings, db: Engine, tmp_path: Path, batch: int, delay_ms: int,
         fault: Callable[[], None]) -> float:
    """The batch through the pipeline with `fault()` applied once it is well into the slow stage;
    returns the seconds from submit to Completed."""
    with Pipeline(s, tmp_path, {SLOW: {"PASSTHROUGH_DELAY_MS": str(delay_ms)}}) as pipe:
        pipe.start()
        t0 = time.monotonic()
        submit(s, batch_start(batch, N))
        wait_in_stage(db, batch, SLOW, N, at_least=N // 5, timeout=300, detail=pipe.stacks_and_logs)
        fault()
        assert _in_progress(db, batch), "the fault must hit a running batch (make the slow stage slower)"
        wait_completed(db, batch, 480, detail=pipe.stacks_and_logs)  # within the test's timeout: a failure shows the logs
        elapsed = time.monotonic() - t0
        assert pipe.exited() == {}, f"a service died: {pipe.exited()}\n{pipe.logs()}"
        assert set(pipe.starts.values()) == {1}, f"no service may be restarted: {dict(pipe.starts)}"
        codes = pipe.terminate_all(timeout=120)
        assert set(codes.values()) == {0}, f"SIGTERM must exit cleanly: {codes}\n{pipe.logs()}"
    problems = exactly_once_problems(s, db, batch, N)
    assert problems == [], "\n".join(problems)
    print(f"\nbatch of {N} files through the fault: {elapsed:.0f} s from submit to Completed")
    return elapsed


def _kill_mid_batch(cluster: PrivateKafkaCluster, s: Settings, db: Engine, tmp_path: Path, batch: int,
                    victim: int, moved: Callable[[], bool], what: str) -> None:
    """kill -9 `victim` once the batch is well into the slow stage, wait until `moved()` (the cluster
    noticed), let the batch finish on the two brokers left, then start the victim again."""
    def kill() -> None:
        cluster.kill_broker(victim)
        wait_for(moved, 120, f"{what} (broker {victim} killed)", every=0.5)

    try:
        _run(s, db, tmp_path, batch, 100, kill)
    finally:
        cluster.start_broker(victim)


def test_partition_leader_killed_mid_batch(cluster: PrivateKafkaCluster, cluster_settings: Settings,
                                           db_engine: Engine, tmp_path: Path) -> None:
    topic = Topics(cluster_settings.topic_prefix).stage(SLOW)
    controller = cluster.active_controller()
    leaders = cluster.leaders(topic)
    # The leader of a partition of the slow stage's topic, not the controller (the next test kills that one).
    victim = next((n for n in leaders.values() if n != controller), leaders[0])
    moved = [p for p, n in leaders.items() if n == victim]
    _kill_mid_batch(cluster, cluster_settings, db_engine, tmp_path, 9301, victim,
                    lambda: all(cluster.leaders(topic)[p] not in (victim, -1) for p in moved),
                    f"new leaders for {topic} partitions {moved}")


def test_active_controller_killed_mid_batch(cluster: PrivateKafkaCluster, cluster_settings: Settings,
                                            db_engine: Engine, tmp_path: Path) -> None:
    victim = cluster.active_controller()
    assert victim in cluster.nodes()
    _kill_mid_batch(cluster, cluster_settings, db_engine, tmp_path, 9302, victim,
                    lambda: cluster.active_controller() not in (victim, -1), "a new active controller")


def test_rolling_restart_of_every_broker_mid_batch(cluster: PrivateKafkaCluster, cluster_settings: Settings,
                                                   db_engine: Engine, tmp_path: Path) -> None:
    pids = {n: cluster.pid(n) for n in cluster.nodes()}
    log: list[str] = []
    _run(cluster_settings, db_engine, tmp_path, 9303, 1000, lambda: log.append(cluster.rolling_restart()))
    assert all(cluster.pid(n) != pids[n] for n in cluster.nodes()), "every broker must have restarted"
    assert log[0].count("every replica in sync") == len(cluster.nodes()), log[0]
