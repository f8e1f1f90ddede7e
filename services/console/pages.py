"""Batch pages: the list, one batch (live progress, the seed's monitoring SQL, failures, files),
the controls with their confirmation, and the results export."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import Connection

from cofi.db import VERDICTS, verdict_counts
from services.console import actions, queries
from services.console.auth import User
from services.console.web import checked_operator, current_user, operator, render, state

log = logging.getLogger(__name__)
router = APIRouter(dependencies=[Depends(current_user)])


@router.get("/", include_in_schema=False)
def home() -> Response:
    return RedirectResponse("/batches", status_code=303)


def _filter(status: str, batch: str, submitted_by: str) -> queries.BatchFilter:
    return queries.BatchFilter(status if status in queries.STATUSES else "", batch, submitted_by)


@router.get("/batches", response_class=HTMLResponse)
def batches(request: Request, status: str = "", batch: str = "", submitted_by: str = "") -> Response:
    flt = _filter(status, batch, submitted_by)
    with state(request).db.connect() as conn:
        rows = queries.list_batches(conn, flt)
    return render(request, "batches.html", rows=rows, flt=flt, statuses=queries.STATUSES, stages=actions.STAGES,
                  query=request.url.query)


@router.get("/batches/rows", response_class=HTMLResponse)
def batch_rows(request: Request, status: str = "", batch: str = "", submitted_by: str = "") -> Response:
    """The list's table, polled by the page (htmx) so it updates without a reload."""
    with state(request).db.connect() as conn:
        rows = queries.list_batches(conn, _filter(status, batch, submitted_by))
    return render(request, "_batch_rows.html", rows=rows, stages=actions.STAGES, query=request.url.query)


def _live(request: Request, batch_id: int) -> dict[str, Any]:
    with state(request).db.connect() as conn:
        view = actions.batch_view(conn, batch_id)
        rates = queries.throughput(conn, batch_id)
    if view.row is None:
        raise HTTPException(404, f"batch {batch_id} is not in the database")
    return {"view": view, "rates": rates, "final": view.status in queries.FINAL}


@router.get("/batches/{batch_id}", response_class=HTMLResponse)
def batch_page(request: Request, batch_id: int, sent: str = "", page: int = 0, file_status: str = "",
               verdict: str = "") -> Response:
    live = _live(request, batch_id)
    with state(request).db.connect() as conn:
        files = _files(conn, batch_id, page, file_status, verdict)
        fails = queries.failures(conn, batch_id)
        monitor = queries.monitoring_tables(conn, batch_id)
        config = queries.batch_config(conn, batch_id)
    return render(request, "batch.html", batch_id=batch_id, **live, **files, failures=fails, monitor=monitor,
                  config=config, sent=sent if sent in actions.ACTIONS else "", effects=actions.EFFECTS,
                  actions=actions.ACTIONS)


def _files(conn: Connection, batch_id: int, page: int, file_status: str, verdict: str) -> dict[str, Any]:
    """The files table's page, its filters and the verdict counts (the filter links), for both templates."""
    verdict = verdict if verdict in VERDICTS else ""
    files, total = queries.files_page(conn, batch_id, page, file_status, verdict)
    return {"files": files, "files_total": total, "page": page, "page_size": queries.FILES_PAGE,
            "file_status": file_status, "verdict": verdict, "verdicts": verdict_counts(conn, batch_id)}


@router.get("/batches/{batch_id}/live", response_class=HTMLResponse)
def batch_live(request: Request, batch_id: int) -> Response:
    """Status, per-stage progress and throughput, polled every 2 s by the batch page."""
    return render(request, "_batch_live.html", batch_id=batch_id, **_live(request, batch_id))


@router.get("/batches/{batch_id}/files", response_class=HTMLResponse)
def batch_files(request: Request, batch_id: int, page: int = 0, file_status: str = "",
                verdict: str = "") -> Response:
    with state(request).db.connect() as conn:
        files = _files(conn, batch_id, page, file_status, verdict)
        status = actions.batch_view(conn, batch_id).status
    return render(request, "_batch_files.html", batch_id=batch_id, **files, final=status in queries.FINAL)


@router.get("/batches/{batch_id}/details", response_class=HTMLResponse)
def batch_details(request: Request, batch_id: int) -> Response:
    """Failures and the seed's monitoring tables, polled every 5 s while the batch runs."""
    with state(request).db.connect() as conn:
        fails = queries.failures(conn, batch_id)
        monitor = queries.monitoring_tables(conn, batch_id)
        status = actions.batch_view(conn, batch_id).status
    return render(request, "_batch_details.html", batch_id=batch_id, failures=fails, monitor=monitor,
                  final=status in queries.FINAL)


@router.get("/batches/{batch_id}/results.{fmt}")
def results(request: Request, batch_id: int, fmt: str) -> Response:
    if fmt not in ("csv", "json"):
        raise HTTPException(404, "results come as .csv or .json")
    with state(request).db.connect() as conn:
        body, media = actions.export_results(conn, batch_id, fmt)
    return Response(body, media_type=media,
                    headers={"Content-Disposition": f'attachment; filename="cofi-batch-{batch_id}-results.{fmt}"'})


def _confirm(request: Request, batch_id: int, action: str, user: User, *, error: str = "", status_code: int = 200,
             form: dict[str, str] | None = None) -> Response:
    if action not in actions.ACTIONS:
        raise HTTPException(404, f"unknown control {action!r}")
    live = _live(request, batch_id)
    return render(request, "confirm.html", status_code=status_code, batch_id=batch_id, action=action,
                  effect=actions.EFFECTS[action], reaudit_from=actions.REAUDIT_FROM, error=error,
                  form=form or {"from_stage": "llm1", "rules": "", "questionnaire": ""}, **live)


@router.get("/batches/{batch_id}/control/{action}", response_class=HTMLResponse)
def confirm_control(request: Request, batch_id: int, action: str, user: User = Depends(operator)) -> Response:  # noqa: B008
    """The confirmation step: what the control will do, and the form that sends it."""
    return _confirm(request, batch_id, action, user)


@router.post("/batches/{batch_id}/control/{action}")
def send_control(request: Request, batch_id: int, action: str, from_stage: str = Form("llm1"),  # noqa: B008
                 rules: str = Form(""), questionnaire: str = Form(""),  # noqa: B008
                 user: User = Depends(checked_operator)) -> Response:  # noqa: B008
    """Send the same BatchControl as `cofi <action>` (CSRF-checked, operators only)."""
    if action not in actions.ACTIONS:
        raise HTTPException(404, f"unknown control {action!r}")
    console = state(request)
    with console.db.connect() as conn:
        batch_q = queries.batch_config(conn, batch_id).get("questionnaire")
    try:
        sent = actions.send_batch_control(console.settings, batch_id, action, user=user.name, from_stage=from_stage,
                                          rules=rules, questionnaire=questionnaire, batch_questionnaire=batch_q)
    except actions.ControlError as exc:
        return _confirm(request, batch_id, action, user, error=str(exc), status_code=400,
                        form={"from_stage": from_stage, "rules": rules, "questionnaire": questionnaire})
    console.metrics.controls.labels(action).inc()
    log.info("console: %s sent %s for batch %d (event %s)", user.name, action, batch_id, sent.record["eventId"])
    return RedirectResponse(f"/batches/{batch_id}?sent={action}", status_code=303)
