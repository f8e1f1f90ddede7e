"""The call page (audio, transcript, evidence, rules, trades, verdict, history), its JSON and its audio."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response

from services.console.calls import AUDIO_TYPES, CallNotFound, CallView, audio_of, load_call
from services.console.web import current_user, render, state

router = APIRouter(dependencies=[Depends(current_user)])


def _call(request: Request, batch_id: int, file_id: str) -> CallView:
    console = state(request)
    try:
        with console.db.connect() as conn:
            return load_call(conn, batch_id, file_id, console.artifact_root)
    except CallNotFound as exc:
        raise HTTPException(404, str(exc)) from None


@router.get("/batches/{batch_id}/files/{file_id}", response_class=HTMLResponse)
def call_page(request: Request, batch_id: int, file_id: str) -> Response:
    return render(request, "call.html", call=_call(request, batch_id, file_id))


@router.get("/batches/{batch_id}/files/{file_id}/verdict", response_class=HTMLResponse)
def call_verdict(request: Request, batch_id: int, file_id: str) -> Response:
    """Score, verdict, reasons and rule results, polled by the call page (a reaudit changes them)."""
    return render(request, "_call_verdict.html", call=_call(request, batch_id, file_id))


@router.get("/batches/{batch_id}/files/{file_id}/data.json")
def call_json(request: Request, batch_id: int, file_id: str) -> Response:
    return JSONResponse(jsonable_encoder(_call(request, batch_id, file_id).to_json()))


@router.get("/batches/{batch_id}/files/{file_id}/audio")
def call_audio(request: Request, batch_id: int, file_id: str) -> Response:
    """The stored audio with HTTP range requests (206), so the player can seek."""
    console = state(request)
    try:
        with console.db.connect() as conn:
            path = audio_of(conn, batch_id, file_id, console.artifact_root)
    except CallNotFound as exc:
        raise HTTPException(404, str(exc)) from None
    if path is None:
        raise HTTPException(404, f"no stored audio for file {file_id} of batch {batch_id}")
    return FileResponse(path, media_type=AUDIO_TYPES.get(path.suffix.lower(), "application/octet-stream"),
                        headers={"Cache-Control": "private, max-age=300"})
