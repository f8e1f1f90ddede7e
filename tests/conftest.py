"""Shared fixtures: a real Kafka broker and a real MySQL/MariaDB server for integration tests.

Servers come from `KAFKA_BOOTSTRAP_SERVERS` / `DATABASE_URL` when set (the Makefile sets them
to the brokers started by scripts/kafka.sh and scripts/mariadb.sh), else from the project's
own local servers when they answer on their default ports, else from testcontainers. A test
that needs a server nobody can provide is skipped with the reason, never faked; with CI=true in
the environment it is an error instead (`tests.support.servers.unavailable`).

Each test gets its own database (`cofi_test_<random>`, migrated to head) and its own topic
prefix (`t<random>`, every topic created with 3 partitions), both removed afterwards.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from cofi.db import make_engine
from cofi.ops.admin import delete_topics, ensure_topics
from cofi.settings import Settings, get_settings
from tests.support.llm_server import llm_server_process
from tests.support.servers import (
    LOCAL_DATABASE,
    LOCAL_KAFKA,
    db_answers,
    fresh_database,
    kafka_answers,
    server_url,
    unavailable,
)

pytest_plugins = ("tests.support.cli",)  # the `cli` fixture: `cofi` in-process on the test's servers

TEST_PARTITIONS = 3


@pytest.fixture(autouse=True)
def process_settings_read_afresh() -> Iterator[None]:
    """`get_settings()` caches the process settings; a test that ran `cofi` in-process must not hand its
    environment (a database URL, a prefix) to the next test in the same worker (two failed that way)."""
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """Bootstrap servers of a real Kafka broker (env, local scripts/kafka.sh broker, or a container)."""
    env = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if env:
        why = kafka_answers(env)
        if why:
            unavailable(f"KAFKA_BOOTSTRAP_SERVERS={env} does not answer: {why}")
        yield env
        return
    if kafka_answers(LOCAL_KAFKA, timeout_s=3.0) is None:
        yield LOCAL_KAFKA
        return
    try:
        try:
            from testcontainers.community.kafka import KafkaContainer
        except ImportError:  # testcontainers < 4.14
            from testcontainers.kafka import KafkaContainer

        container = KafkaContainer().with_kraft()
        container.start()
    except Exception as exc:
        unavailable(f"no Kafka: KAFKA_BOOTSTRAP_SERVERS unset, nothing on {LOCAL_KAFKA} "
                    f"(run `bash scripts/kafka.sh start`), testcontainers failed: {type(exc).__name__}: {exc}")
    try:
        yield container.get_bootstrap_server()
    finally:
        container.stop()


@pytest.fixture(scope="session")
def database_server_url() -> Iterator[str]:
    """URL of a MySQL/MariaDB server (no database selected) whose user may create `cofi_test_*`."""
    env = os.environ.get("DATABASE_URL")
    if env:
        url = server_url(env)
        why = db_answers(url)
        if why:
            unavailable(f"DATABASE_URL server does not answer: {why}")
        yield url
        return
    local = server_url(LOCAL_DATABASE)
    if db_answers(local) is None:
        yield local
        return
    try:
        try:
            from testcontainers.community.mysql import MySqlContainer
        except ImportError:  # testcontainers < 4.14
            from testcontainers.mysql import MySqlContainer

        container = MySqlContainer("mysql:8.0", root_password="cofi")
        container.start()
    except Exception as exc:
        unavailable(f"no database: DATABASE_URL unset, nothing on 127.0.0.1:3306 "
                    f"(run `bash scripts/mariadb.sh start`), testcontainers failed: {type(exc).__name__}: {exc}")
    try:
        host, port = container.get_container_host_ip(), container.get_exposed_port(3306)
        yield f"mysql+pymysql://root:cofi@{host}:{port}/"
    finally:
        container.stop()


@pytest.fixture
def db_url(database_server_url: str) -> Iterator[str]:
    """A fresh database migrated to head, dropped after the test."""
    yield from fresh_database(database_server_url)


@pytest.fixture
def db_engine(db_url: str) -> Iterator[Engine]:
    """`cofi.db.make_engine` on the test's database, disposed afterwards."""
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def topic_prefix(kafka_bootstrap: str) -> Iterator[str]:
    """A unique topic prefix with every topic created (3 partitions), deleted after the test."""
    prefix = f"t{uuid.uuid4().hex[:10]}"
    admin_settings = Settings(kafka_bootstrap_servers=kafka_bootstrap, topic_prefix=prefix,
                              topic_partitions=TEST_PARTITIONS, topic_replication=1)
    ensure_topics(admin_settings)
    yield prefix
    delete_topics(admin_settings)


@pytest.fixture
def settings(kafka_bootstrap: str, db_url: str, topic_prefix: str, tmp_path: Path) -> Settings:
    """Settings pointing at the test's broker, database, topics and a tmp artifact root."""
    return Settings(
        kafka_bootstrap_servers=kafka_bootstrap,
        database_url=db_url,
        topic_prefix=topic_prefix,
        topic_partitions=TEST_PARTITIONS,
        topic_replication=1,
        artifact_root=tmp_path / "artifacts",
        worker_id=f"test-{uuid.uuid4().hex[:6]}",
        worker_instance=f"test-{uuid.uuid4().hex[:6]}",  # own transactional.ids: no fencing across tests
        metrics_port=0,
        commit_every_messages=10,
        commit_every_ms=100,
        retry_backoff_ms=50,
        retry_backoff_max_ms=500,
        session_timeout_ms=10_000,
        max_poll_interval_ms=60_000,
        transaction_timeout_ms=30_000,
    )


# --- the local LLM server (llama.cpp + the default catalog model), shared by the LLM and end-to-end tests ---

@pytest.fixture(scope="session")
def llm_server_proc() -> Iterator[tuple[str, subprocess.Popen]]:
    """(base URL …/v1, process) of a real `python -m services.llm1.server` on a free port; stopped after the session."""
    with llm_server_process() as running:
        yield running


@pytest.fixture(scope="session")
def llm_server(llm_server_proc: tuple[str, subprocess.Popen]) -> str:
    return llm_server_proc[0]
