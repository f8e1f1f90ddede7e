"""The real servers tests run against: is one there, a fresh database per test, and what to do when
one is missing (skip locally, fail under CI: a broken server start must not pass CI as skips)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import NoReturn

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from cofi.db import migrate
from cofi.devtools.pipeline import free_port

LOCAL_KAFKA = "localhost:9092"
LOCAL_DATABASE = "mysql+pymysql://cofi:cofi@127.0.0.1:3306/cofi"

__all__ = ["free_port"]  # tests import it from here


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def unavailable(reason: str) -> NoReturn:
    """A server the test needs is missing: an ERROR under CI=true, a skip with the reason otherwise."""
    if in_ci():
        pytest.fail(f"CI=true and a server is missing: {reason}", pytrace=False)
    pytest.skip(reason)


def kafka_answers(bootstrap: str, timeout_s: float = 5.0) -> str | None:
    """None when the broker answers, else why not."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    try:
        AdminClient({"bootstrap.servers": bootstrap, "socket.connection.setup.timeout.ms": 3000,
                     "log_level": 2}).list_topics(timeout=timeout_s)
        return None
    except KafkaException as exc:
        return str(exc)


def server_url(url: str) -> str:
    """The URL of the server of a database URL (no database selected)."""
    return make_url(url).set(database="").render_as_string(hide_password=False)


def db_answers(url: str) -> str | None:
    engine = create_engine(url, connect_args={"connect_timeout": 5})
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return None
    except Exception as exc:  # any driver error means "not usable"
        return f"{type(exc).__name__}: {exc}"
    finally:
        engine.dispose()


def fresh_database(server: str) -> Iterator[str]:
    """Create `cofi_test_<random>`, migrate it to head, yield its URL, drop it afterwards.
    NullPool: no pooled connection outlives a server restart (the server-fault tests restart it)."""
    name = f"cofi_test_{uuid.uuid4().hex[:12]}"
    engine = create_engine(server, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            conn.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"))
        url = make_url(server).set(database=name).render_as_string(hide_password=False)
        migrate(url)
        yield url
    finally:
        with engine.begin() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
        engine.dispose()
