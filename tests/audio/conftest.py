"""Fixtures for the audio stages: settings, the session's generated calls.

The Whisper model is assembled once into the normal MODEL_CACHE_DIR and loaded once per
test session (cofi.models.whisper caches it), exactly as a stage process does. The builders
live in tests/support/audio.py (re-exported here for tests/audio/test_stt.py, which imports them
from this module).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cofi.settings import Settings
from tests.support.audio import CallFactory


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(artifact_root=tmp_path_factory.mktemp("artifacts"))


@pytest.fixture(scope="session")
def calls_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("calls")


@pytest.fixture(scope="session")
def call(calls_dir: Path) -> CallFactory:
    return CallFactory(calls_dir)
