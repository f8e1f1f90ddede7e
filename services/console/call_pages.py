"""The call page (audio, transcript, evidence, rules, trades, verdict, history), its JSON and its audio."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response

from cofi.errors import PathRefused, PermanentError, TransientError
from services.console.calls import AUDIO_TYPES, CallNotFound, CallView, audio_of, load_call
from services.console.web import current_user, render, state

router = APIRouter(dependencies=[Depends(current_user)])


def may_hear_originals(request: Request) -> bool:
    """A redacted call's original is kept (REDACT_KEEP_ORIGINAL) and this user's role may read it
    (REDACT_ORIGINAL_ROLES)."""
    settings = state(request).settings
    return settings.redact_keep_original and current_user(request).role in settings.redact_original_roles


def _original(request: Request, original: bool) -> bool:
    if original and not may_hear_originals(request):
        raise HTTPException(403, "the unredacted original is not kept or not for your role")
    return original


def _fetch(request: Request, batch_id: int, file_id: str) -> None:
    """The call's artifacts brought from the artifact store (nothing to do on a shared filesystem)."""
    try:
        state(request).artifacts.fetch(batch_id, file_id)
    except PathRefused as exc:
        raise HTTPException(404, str(exc)) from None
    except (PermanentError, TransientError) as exc:
        raise HTTPException(503, str(exc)) from None


def _call(request: Request, batch_id: int, file_id: str, original: bool = False, *, fetch: bool = True) -> CallView:
    console = state(request)
    if fetch:
        _fetch(request, batch_id, file_id)
    try:
        with console.db.connect() as conn:
            return load_call(conn, batch_id, file_id, console.artifact_root, original=_original(request, original))
    except CallNotFound as exc:
        raise HTTPException(404, str(exc)) from None


@router.get("/batches/{batch_id}/files/{file_id}", response_class=HTMLResponse)
def call_page(request: Request, batch_id: int, file_id: str, original: bool = Query(False)) -> Response:
    return render(request, "call.html", call=_call(request, batch_id, file_id, original),
                  originals=may_hear_originals(request))


@router.get("/batches/{batch_id}/files/{file_id}/verdict", response_class=HTMLResponse)
def call_verdict(request: Request, batch_id: int, file_id: str) -> Response:
    """Score, verdict, reasons and rule results, polled by the call page (a reaudit changes them)."""
    return render(request, "_call_verdict.html", call=_call(request, batch_id, file_id, fetch=False))


@router.get("/batches/{batch_id}/files/{file_id}/data.json")
def call_json(request: Request, batch_id: int, file_id: str, original: bool = Query(False)) -> Response:
    return JSONResponse(jsonable_encoder(_call(request, batch_id, file_id, original).to_json()))


@router.get("/batches/{batch_id}/files/{file_id}/audio")
def call_audio(request: Request, batch_id: int, file_id: str, original: bool = Query(False)) -> Response:
    """The stored audio with HTTP range requests (206), so the player can seek; the redacted audio of a
    call its batch redacts (the original only to a privileged role, when kept)."""
    console = state(request)
    _fetch(request, batch_id, file_id)
    try:
        with console.db.connect() as conn:
            path = audio_of(conn, batch_id, file_id, console.artifact_root, original=_original(request, original))
    except CallNotFound as exc:
        raise HTTPException(404, str(exc)) from None
    if path is None:
        raise HTTPException(404, f"no stored audio for file {file_id} of batch {batch_id}")
    return FileResponse(path, media_type=AUDIO_TYPES.get(path.suffix.lower(), "application/octet-stream"),
                        headers={"Cache-Control": "private, max-age=300"})
