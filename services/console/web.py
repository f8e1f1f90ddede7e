"""The console's shared web plumbing: per-process state, templates and filters, auth dependencies,
request metrics."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any

from fastapi import Depends, Request
from fastapi.templating import Jinja2Templates
from prometheus_client import CollectorRegistry, Counter, Histogram
from sqlalchemy import Engine

from cofi.pipeline.artifacts import ArtifactSync
from cofi.settings import Settings
from services.console.auth import SESSION_COOKIE, Auth, User, check_csrf

HERE = Path(__file__).resolve().parent
STATUS_CLASS = {"Completed": "ok", "InProgress": "run", "Failed": "bad", "Cancelled": "warn", "Rejected": "bad",
                "Skipped": "dim", "Pending": "dim", "pass": "ok", "fail": "bad", "critical_fail": "bad", "review": "warn",
                "success": "ok", "failed": "bad"}


class LoginRequired(Exception):
    """No valid session: browsers are sent to the login page, other clients get 401."""


class Forbidden(Exception):
    """Logged in, but not allowed (a reviewer's control, a bad CSRF token)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConsoleMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("cofi_console_requests", "Console HTTP requests", ["method", "route", "code"],
                                registry=self.registry)
        self.seconds = Histogram("cofi_console_request_seconds", "Console response time", ["route"],
                                 buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
                                 registry=self.registry)
        self.controls = Counter("cofi_console_controls", "Batch controls sent from the console", ["action"],
                                registry=self.registry)
        self.logins = Counter("cofi_console_logins", "Login attempts by result", ["result"], registry=self.registry)

    async def middleware(self, request: Request, call_next: Any) -> Any:
        started = time.perf_counter()
        response = await call_next(request)
        route = getattr(request.scope.get("route"), "path", "unmatched")
        self.requests.labels(request.method, route, str(response.status_code)).inc()
        self.seconds.labels(route).observe(time.perf_counter() - started)
        return response


@dataclass
class Console:
    """Everything a request handler needs; one per app (tests run several)."""

    settings: Settings
    db: Engine
    auth: Auth
    templates: Jinja2Templates
    metrics: ConsoleMetrics

    @property
    def artifact_root(self) -> Path:
        return Path(self.settings.artifact_root)

    @cached_property
    def artifacts(self) -> ArtifactSync:
        """With an S3 store, a call's artifacts are fetched into ARTIFACT_ROOT before its page reads them."""
        return ArtifactSync(self.settings)


def mmss(seconds: float | None) -> str:
    if seconds is None:
        return ""
    s = int(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def when(value: datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M:%S}" if value else ""


def make_templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    env = templates.env
    env.filters.update(mmss=mmss, when=when, status_class=lambda s: STATUS_CLASS.get(str(s), ""))
    env.globals.update(pct=lambda a, b: round(100.0 * (a or 0) / b, 1) if b else 0.0)
    return templates


def state(request: Request) -> Console:
    return request.app.state.console


def current_user(request: Request) -> User:
    user = state(request).auth.user_of(request.cookies.get(SESSION_COOKIE))
    if user is None:
        raise LoginRequired()
    request.state.user = user
    return user


def operator(user: User = Depends(current_user)) -> User:  # noqa: B008 - FastAPI dependency
    if not user.can_control:
        raise Forbidden(f"{user.name} is a {user.role}: only an operator may send controls")
    return user


async def checked_operator(request: Request, user: User = Depends(operator)) -> User:  # noqa: B008
    """An operator whose form (or X-CSRF-Token header) carries the session's CSRF token."""
    token = request.headers.get("x-csrf-token")
    if token is None:
        token = (await request.form()).get("csrf")
    if not check_csrf(user, str(token) if token is not None else None):
        raise Forbidden("missing or wrong CSRF token: reload the page and try again")
    return user


def render(request: Request, name: str, status_code: int = 200, **context: Any) -> Any:
    user = getattr(request.state, "user", None)
    return state(request).templates.TemplateResponse(request, name, {"user": user, **context},
                                                     status_code=status_code)
