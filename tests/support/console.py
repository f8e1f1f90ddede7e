"""Helpers for the console tests: the console in a thread on a free port, a pipeline (tracker +
stage workers) in threads, logins over HTTP, and the browser."""

from __future__ import annotations

import importlib
import re
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from pydantic import SecretStr

from cofi.pipeline.engine import Engine
from cofi.pipeline.stages import STAGES
from cofi.pipeline.worker import build_engine
from cofi.settings import ConsoleUser, Settings
from services.console.app import create_app
from services.console.auth import hash_password
from tests.support.harness import ThreadedWorkers
from tests.support.servers import free_port as _free_port
from tests.support.tracker import RunningTracker

PASSWORDS = {"olivia": "operator-pass-1", "rita": "reviewer-pass-1"}
ROLES = {"olivia": "operator", "rita": "reviewer"}
_HASHES = {name: hash_password(pw) for name, pw in PASSWORDS.items()}


def console_settings(settings: Settings) -> Settings:
    users = {name: ConsoleUser(role=ROLES[name], password_hash=_HASHES[name]) for name in PASSWORDS}
    return settings.model_copy(update={"console_users": users, "console_secret": SecretStr(uuid.uuid4().hex * 2),
                                       "console_dev": False, "console_port": _free_port()})


class ConsoleServer:
    """The real console app under uvicorn, in a thread, on 127.0.0.1:<free port>."""

    def __init__(self, settings: Settings) -> None:
        self.settings = console_settings(settings)
        self.app = create_app(self.settings)
        self.url = f"http://127.0.0.1:{self.settings.console_port}"
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=self.settings.console_port,
                                                    log_level="warning", lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ConsoleServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline, "console did not start"
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


def login(url: str, name: str) -> httpx.Client:
    """An HTTP client logged in as `name` (through the real login form)."""
    client = httpx.Client(base_url=url, follow_redirects=False, timeout=30)
    form = client.get("/login")
    token = re.search(r'name="login_csrf" value="([^"]+)"', form.text).group(1)
    r = client.post("/login", data={"username": name, "password": PASSWORDS[name], "login_csrf": token,
                                    "next": "/batches"})
    assert r.status_code == 303, r.text
    return client


def csrf_of(html: str) -> str:
    return re.search(r'<meta name="csrf-token" content="([^"]+)">', html).group(1)


def real_engines(settings: Settings, stages: list[str]) -> dict[str, Engine]:
    engines = {}
    for stage in stages:
        factory = importlib.import_module(f"services.{stage}.engines").build_engine
        engines[stage] = build_engine(stage, settings, factory)
    return engines


class Pipeline:
    """Tracker + one worker per stage, in threads of this process."""

    def __init__(self, settings: Settings, engines: dict[str, Engine] | None = None) -> None:
        self.tracker = RunningTracker(settings)
        self.workers = ThreadedWorkers(settings, list(STAGES), engines)

    def __enter__(self) -> Pipeline:
        self.tracker.__enter__()
        self.workers.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.workers.__exit__()
        self.tracker.__exit__()


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def chromium(tmp: Path, width: int = 1400, height: int = 1000) -> Any:
    """Debian's headless Chromium through Debian's chromedriver (nothing is downloaded)."""
    import pytest

    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        pytest.skip("chromium / chromedriver not installed (apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium")
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--autoplay-policy=no-user-gesture-required", "--mute-audio",
                 f"--window-size={width},{height}", f"--user-data-dir={tmp / 'chromium-profile'}"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=shutil.which("chromedriver")), options=opts)
    driver.set_page_load_timeout(60)
    return driver


# the STT artifact's shape (services/stt/engines.py), for evidence and call-page tests
ARTIFACT = {"segments": [
    {"speaker": "agent", "start": 0.5, "end": 3.9, "text": "Good morning, thank you for calling Example Bank.",
     "words": [{"word": w, "start": 0.5 + i * 0.4, "end": 0.8 + i * 0.4, "probability": 0.9}
               for i, w in enumerate("Good morning, thank you for calling Example Bank.".split())]},
    {"speaker": "agent", "start": 4.5, "end": 6.0, "text": "Please note this call is recorded.",
     "words": [{"word": w, "start": 4.5 + i * 0.3, "end": 4.7 + i * 0.3, "probability": 0.9}
               for i, w in enumerate("Please note this call is recorded.".split())]},
    {"speaker": "customer", "start": 6.5, "end": 8.0, "text": "Yes, that's fine — café.", "words": []},
]}
