"""Server faults mid-batch: the Kafka broker, then MariaDB, stopped (or killed) and restarted while a
batch runs through the pipeline's processes. Nothing may be lost or doubled, and no service may die.

The servers stopped here are PRIVATE ones (scripts/kafka.sh with KAFKA_DIR, scripts/mariadb.sh with
MARIADB_DIR, on free ports, data in a tmp dir): other tests share the default servers meanwhile.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from cofi.db import make_engine
from cofi.devtools.checks import exactly_once_problems
from cofi.devtools.pipeline import Pipeline
from cofi.ops.admin import delete_topics, ensure_topics
from cofi.settings import Settings
from tests.support.recovery import PrivateKafka, PrivateMariaDB, PrivateServer, running, wait_completed, wait_in_stage
from tests.support.servers import fresh_database
from tests.support.tracker import batch_start, submit

pytestmark = pytest.mark.integration

N = 90
SLOW = "lid"  # the batch sits here (PASSTHROUGH_DELAY_MS) when the server goes away
DOWN_S = 4.0


@pytest.fixture(scope="module")
def private_kafka() -> Iterator[PrivateKafka]:
    yield from running(PrivateKafka())  # type: ignore[misc]


@pytest.fixture(scope="module")
def private_db() -> Iterator[PrivateMariaDB]:
    yield from running(PrivateMariaDB())  # type: ignore[misc]


def _settings(kafka: str, db_url: str, prefix: str, tmp_path: Path, **extra: object) -> Settings:
    return Settings(kafka_bootstrap_servers=kafka, database_url=db_url, topic_prefix=prefix, topic_partitions=3,
                    topic_replication=1, artifact_root=tmp_path / "artifacts", metrics_port=0,
                    commit_every_messages=10, commit_every_ms=100, retry_backoff_ms=50, retry_backoff_max_ms=500,
                    session_timeout_ms=6000, **extra)


def _fault(server: PrivateServer, how: str) -> None:
    """Take the server away for DOWN_S seconds (clean stop or SIGKILL), then start it on the same data."""
    if how == "stop":
        server.stop()
    else:
        server.kill9()
    time.sleep(DOWN_S)
    server.start()


def _run_batch_through_fault(s: Settings, db: Engine, server: PrivateServer, how: str, batch: int,
                             tmp_path: Path, tracker_noticed: str) -> None:
    with Pipeline(s, tmp_path, {SLOW: {"PASSTHROUGH_DELAY_MS": "60"}}) as pipe:
        pipe.start()
        submit(s, batch_start(batch, N))
        wait_in_stage(db, batch, SLOW, N, at_least=N // 5, detail=pipe.stacks_and_logs)
        _fault(server, how)
        wait_completed(db, batch, 240, detail=pipe.stacks_and_logs)
        assert pipe.exited() == {}, f"a service died: {pipe.exited()}\n{pipe.logs()}"
        codes = pipe.terminate_all()
        assert set(codes.values()) == {0}, f"SIGTERM must exit cleanly: {codes}\n{pipe.logs()}"
        assert tracker_noticed in pipe.output("tracker"), "the fault must have hit the running batch"
    problems = exactly_once_problems(s, db, batch, N)
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize("how", ["stop", pytest.param("kill9", marks=pytest.mark.slow)])
def test_kafka_broker_down_mid_batch_loses_and_doubles_nothing(how: str, private_kafka: PrivateKafka,
                                                              db_url: str, db_engine: Engine, tmp_path: Path) -> None:
    s = _settings(private_kafka.bootstrap, db_url, f"t{uuid.uuid4().hex[:10]}", tmp_path)
    ensure_topics(s)
    try:
        _run_batch_through_fault(s, db_engine, private_kafka, how, 8100 + (how == "kill9"), tmp_path,
                                 "starting a new transactional producer")
    finally:
        delete_topics(s)


@pytest.fixture
def private_db_url(private_db: PrivateMariaDB) -> Iterator[str]:
    yield from fresh_database(private_db.server_url)


@pytest.mark.parametrize("how", ["stop", "kill9"])
def test_database_down_mid_batch_tracker_retries_and_catches_up(how: str, private_db: PrivateMariaDB,
                                                                private_db_url: str, kafka_bootstrap: str,
                                                                topic_prefix: str, tmp_path: Path) -> None:
    # The seed's Test 4 logging settings: progress rows every 10 files (kept in memory between polls,
    # so a rolled-back poll must not lose one) and no file_start rows.
    s = _settings(kafka_bootstrap, private_db_url, topic_prefix, tmp_path, progress_update_interval=10,
                  log_file_start_events=False)
    db = make_engine(private_db_url)
    try:
        _run_batch_through_fault(s, db, private_db, how, 8200 + (how == "kill9"), tmp_path,
                                 "database error, retrying the poll")
    finally:
        db.dispose()
