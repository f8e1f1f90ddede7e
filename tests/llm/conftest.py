"""Fixtures for the LLM stages: the REAL local llama.cpp server (Gemma 3 270M) and FileEvent builders."""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from llm_events import make_event

from cofi.engine import StageContext
from cofi.settings import Settings

REPO = Path(__file__).resolve().parents[2]
READY_TIMEOUT_S = 300.0

@pytest.fixture
def file_event() -> Callable[..., dict[str, Any]]:
    return make_event


@pytest.fixture
def ctx(tmp_path: Path) -> Callable[[str], StageContext]:
    def make(stage: str) -> StageContext:
        return StageContext(stage=stage, worker="test", settings=Settings(artifact_root=tmp_path),
                            batch_id=7, file_id="f1")
    return make


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
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"llm server exited with {proc.returncode}: {log_path.read_text()[-2000:]}")
            try:
                if httpx.get(f"{base}/models", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"llm server not ready after {READY_TIMEOUT_S:.0f}s: {log_path.read_text()[-2000:]}")
            time.sleep(0.5)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def llm_settings(llm_server: str) -> Settings:
    return Settings(llm_base_url=llm_server, llm_max_retries=2, llm_retry_backoff_s=0.2, llm_timeout_s=120,
                    llm_concurrency=1, llm_max_tokens=200)
