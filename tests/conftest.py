"""Shared fixtures: a real Kafka broker and a real MySQL/MariaDB server for integration tests.

Servers come from `KAFKA_BOOTSTRAP_SERVERS` / `DATABASE_URL` when set (the Makefile sets them
to the brokers started by scripts/kafka.sh and scripts/mariadb.sh), else from the project's
own local servers when they answer on their default ports, else from testcontainers. A test
that needs a server nobody can provide is skipped with the reason, never faked.

Each test gets its own database (`cofi_test_<random>`, migrated to head) and its own topic
prefix (`t<random>`, every topic created with 3 partitions), both removed afterwards.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from cofi.db import make_engine, migrate
from cofi.ops.admin import delete_topics, ensure_topics
from cofi.settings import Settings

LOCAL_KAFKA = "localhost:9092"
LOCAL_DATABASE = "mysql+pymysql://cofi:cofi@127.0.0.1:3306/cofi"
TEST_PARTITIONS = 3
REPO = Path(__file__).resolve().parents[1]
LLM_READY_TIMEOUT_S = 300.0


def _kafka_answers(bootstrap: str, timeout_s: float = 5.0) -> str | None:
    """None when the broker answers, else why not."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    try:
        AdminClient({"bootstrap.servers": bootstrap, "socket.connection.setup.timeout.ms": 3000,
                     "log_level": 2}).list_topics(
            timeout=timeout_s)
        return None
    except KafkaException as exc:
        return str(exc)


def _server_url(url: str) -> str:
    return make_url(url).set(database="").render_as_string(hide_password=False)


def _db_answers(url: str) -> str | None:
    engine = create_engine(url, connect_args={"connect_timeout": 5})
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return None
    except Exception as exc:  # any driver error means "not usable"
        return f"{type(exc).__name__}: {exc}"
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """Bootstrap servers of a real Kafka broker (env, local scripts/kafka.sh broker, or a container)."""
    env = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if env:
        why = _kafka_answers(env)
        if why:
            pytest.skip(f"KAFKA_BOOTSTRAP_SERVERS={env} does not answer: {why}")
        yield env
        return
    if _kafka_answers(LOCAL_KAFKA, timeout_s=3.0) is None:
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
        pytest.skip(f"no Kafka: KAFKA_BOOTSTRAP_SERVERS unset, nothing on {LOCAL_KAFKA} "
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
        url = _server_url(env)
        why = _db_answers(url)
        if why:
            pytest.skip(f"DATABASE_URL server does not answer: {why}")
        yield url
        return
    local = _server_url(LOCAL_DATABASE)
    if _db_answers(local) is None:
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
        pytest.skip(f"no database: DATABASE_URL unset, nothing on 127.0.0.1:3306 "
                    f"(run `bash scripts/mariadb.sh start`), testcontainers failed: {type(exc).__name__}: {exc}")
    try:
        host, port = container.get_container_host_ip(), container.get_exposed_port(3306)
        yield f"mysql+pymysql://root:cofi@{host}:{port}/"
    finally:
        container.stop()


def fresh_database(server_url: str) -> Iterator[str]:
    """Create `cofi_test_<random>`, migrate it to head, yield its URL, drop it afterwards.
    NullPool: no pooled connection outlives a server restart (the server-fault tests restart it)."""
    name = f"cofi_test_{uuid.uuid4().hex[:12]}"
    server = create_engine(server_url, poolclass=NullPool)
    try:
        with server.begin() as conn:
            conn.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"))
        url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
        migrate(url)
        yield url
    finally:
        with server.begin() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
        server.dispose()


@pytest.fixture
def db_url(database_server_url: str) -> Iterator[str]:
    """A fresh database migrated to head, dropped after the test."""
    yield from fresh_database(database_server_url)


@pytest.fixture(scope="module")
def module_db_url(database_server_url: str) -> Iterator[str]:
    """Like `db_url`, shared by the tests of one module (cheaper when tests only read or clean up)."""
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


# --- the local LLM server (llama.cpp + Gemma 3 270M), shared by the LLM and end-to-end tests ---

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def llm_server() -> Iterator[str]:
    """Base URL (…/v1) of a real `python -m services.llm1.server` on a free port; stopped after the session."""
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("llama-cpp-python is not installed (pip install -e '.[llm]')")
    base = f"http://127.0.0.1:{_free_port()}/v1"
    env = {**os.environ, "LLM_BASE_URL": base, "LLM_SERVER_THREADS": os.environ.get("LLM_SERVER_THREADS", "2")}
    log_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"cofi-llm-server-{os.getpid()}.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "services.llm1.server"], cwd=REPO, env=env,
                                stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + LLM_READY_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"llm server exited with {proc.returncode}: {log_path.read_text()[-2000:]}")
            try:
                if httpx.get(f"{base}/models", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"llm server not ready after {LLM_READY_TIMEOUT_S:.0f}s: {log_path.read_text()[-2000:]}")
            time.sleep(0.5)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
