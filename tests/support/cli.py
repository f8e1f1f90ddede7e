"""The `cofi` CLI as tests run it: in-process (Typer's CliRunner), seeing the test's servers and topics."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from cofi.settings import Settings, get_settings


@pytest.fixture
def cli(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    """A runner whose `cofi` sees the test's broker, database and topic prefix (through the environment)."""
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", settings.kafka_bootstrap_servers)
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    monkeypatch.setenv("TOPIC_PREFIX", settings.topic_prefix)
    get_settings.cache_clear()  # conftest clears it around every test too; here after the environment is set
    yield CliRunner()
