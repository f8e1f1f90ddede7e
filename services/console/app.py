"""The console app: login/logout, the error pages, /healthz and /metrics; the pages are in
`pages` and `call_pages`, all behind a session."""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Form, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from sqlalchemy.exc import InterfaceError, OperationalError

from cofi.db import engine_for
from cofi.settings import Settings
from services.console import call_pages, pages
from services.console.auth import LOGIN_COOKIE, SESSION_COOKIE, build_auth, check_csrf
from services.console.web import (
    HERE,
    Console,
    ConsoleMetrics,
    Forbidden,
    LoginRequired,
    current_user,
    make_templates,
    render,
    state,
)

log = logging.getLogger(__name__)


def _safe_next(target: str | None) -> str:
    """Only same-site relative paths (no open redirect)."""
    return target if target and target.startswith("/") and not target.startswith("//") and "\\" not in target \
        else "/batches"


def _wants_html(request: Request) -> bool:
    return request.method == "GET" and "text/html" in request.headers.get("accept", "") \
        and "hx-request" not in request.headers


def create_app(settings: Settings) -> FastAPI:
    """A console app for these settings; ConsoleConfigError when auth is not configured."""
    auth = build_auth(settings)
    console = Console(settings, engine_for(settings, "reader", connect_args={"connect_timeout": 5}),
                      auth, make_templates(), ConsoleMetrics())

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        console.db.dispose()

    app = FastAPI(title="cofi console", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.console = console
    app.middleware("http")(console.metrics.middleware)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    app.include_router(pages.router)
    app.include_router(call_pages.router)

    @app.exception_handler(LoginRequired)
    async def _login_required(request: Request, _exc: LoginRequired) -> Response:
        if _wants_html(request):
            return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
        return PlainTextResponse("login required", status_code=401, headers={"HX-Redirect": "/login"})

    @app.exception_handler(Forbidden)
    async def _forbidden(request: Request, exc: Forbidden) -> Response:
        return render(request, "error.html", status_code=403, title="Not allowed", message=exc.message)

    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    async def _db_down(request: Request, exc: Exception) -> Response:
        log.error("console: database error: %s", str(exc).splitlines()[0])
        return render(request, "error.html", status_code=503, title="Database unreachable",
                      message="The console cannot read the tracker's database right now; retry in a moment.")

    @app.get("/login", response_class=HTMLResponse)
    def login_form(request: Request, next: str = "/batches") -> Response:  # noqa: A002 - the query name
        token = secrets.token_urlsafe(24)
        response = render(request, "login.html", next=_safe_next(next), login_csrf=token, error=None)
        response.set_cookie(LOGIN_COOKIE, token, httponly=True, samesite="strict", secure=auth.secure, max_age=3600)
        return response

    @app.post("/login")
    def login(request: Request, username: str = Form(""), password: str = Form(""),  # noqa: B008
              login_csrf: str = Form(""), next: str = Form("/batches")) -> Response:  # noqa: A002, B008
        cookie = request.cookies.get(LOGIN_COOKIE) or ""
        session = auth.login(username, password) if login_csrf and secrets.compare_digest(cookie, login_csrf) else None
        console.metrics.logins.labels("ok" if session else "refused").inc()
        if session is None:
            token = secrets.token_urlsafe(24)
            response = render(request, "login.html", status_code=401, next=_safe_next(next), login_csrf=token,
                              error="Wrong user name or password (or the form expired: try again).")
            response.set_cookie(LOGIN_COOKIE, token, httponly=True, samesite="strict", secure=auth.secure)
            return response
        response = RedirectResponse(_safe_next(next), status_code=303)
        response.set_cookie(SESSION_COOKIE, session, httponly=True, samesite="lax", secure=auth.secure,
                            max_age=int(auth.max_age_s))
        response.delete_cookie(LOGIN_COOKIE)
        return response

    @app.post("/logout")
    async def logout(request: Request) -> Response:
        user = current_user(request)
        if not check_csrf(user, str((await request.form()).get("csrf") or "")):
            raise Forbidden("missing or wrong CSRF token")
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE)
        return response

    @app.get("/healthz")
    def healthz(request: Request) -> Any:
        try:
            with state(request).db.connect() as conn:
                conn.execute(text("SELECT 1"))
        except (OperationalError, InterfaceError):
            return PlainTextResponse('{"ok": false, "database": "unreachable"}', status_code=503,
                                     media_type="application/json")
        return {"ok": True, "service": "console"}

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(console.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app
