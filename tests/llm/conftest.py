"""Fixtures for the LLM stage tests: FileEvent builders, contexts, and settings for the REAL local
llama.cpp server (the `llm_server` fixture lives in tests/conftest.py, shared with the e2e test)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cofi.pipeline.engine import StageContext
from cofi.settings import Settings
from tests.support.llm_events import make_event


@pytest.fixture
def file_event() -> Callable[..., dict[str, Any]]:
    return make_event


@pytest.fixture
def ctx(tmp_path: Path) -> Callable[[str], StageContext]:
    def make(stage: str) -> StageContext:
        return StageContext(stage=stage, worker="test", settings=Settings(artifact_root=tmp_path),
                            batch_id=7, file_id="f1")
    return make


@pytest.fixture(scope="session")
def llm_settings(llm_server: str) -> Settings:
    return Settings(llm_base_url=llm_server, llm_max_retries=2, llm_retry_backoff_s=0.2, llm_timeout_s=120,
                    llm_concurrency=1, llm_max_tokens=200)
