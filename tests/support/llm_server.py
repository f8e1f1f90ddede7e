"""A real `python -m services.llm1.server` on a free port, for the LLM tests (never a stand-in)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from cofi.devtools.pipeline import end_process
from tests.support.servers import free_port

REPO = Path(__file__).resolve().parents[2]
LLM_READY_TIMEOUT_S = 300.0


@contextmanager
def llm_server_process(**env: str) -> Iterator[tuple[str, subprocess.Popen]]:
    """(base URL …/v1, process) of a local LLM server started with `env` on top of ours; stopped after."""
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("llama-cpp-python is not installed (pip install -e '.[llm]')")
    base = f"http://127.0.0.1:{free_port()}/v1"
    full_env = {**os.environ, "LLM_BASE_URL": base, "LLM_SERVER_THREADS": os.environ.get("LLM_SERVER_THREADS", "2"),
                **env}
    log_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"cofi-llm-server-{os.getpid()}-{base.rsplit(':', 1)[1][:-3]}.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "services.llm1.server"], cwd=REPO, env=full_env,
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
        yield base, proc
    finally:
        end_process(proc)
