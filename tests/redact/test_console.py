"""The console on a call its batch redacts: reviewers see and hear only the redacted transcript and
audio (nothing while redaction is pending); the original only for REDACT_ORIGINAL_ROLES when
REDACT_KEEP_ORIGINAL keeps it, and a 403 otherwise."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import Engine, text
from starlette.testclient import TestClient

from cofi.pipeline.codec import get_codec
from cofi.pipeline.results import SpeechParams
from cofi.pipeline.stages import STAGES, empty_results
from cofi.settings import ConsoleUser, Settings
from services.console.app import create_app
from services.console.auth import hash_password

pytestmark = pytest.mark.integration
USERS = {"olivia": ("operator", "operator-pass-1"), "rita": ("reviewer", "reviewer-pass-1")}
ORIGINAL = "customer: my account number is 4 5 6 7 8 9 0 1"
REDACTED = "customer: my account number is [ACCOUNT_NUMBER_1]"


def _artifact(path: Path, said: str, source: Path) -> None:
    words = said.split(": ", 1)[1].split()
    path.write_text(json.dumps({"source": str(source), "segments": [
        {"speaker": "customer", "start": 0.5, "end": 4.0, "text": " ".join(words),
         "words": [{"word": w, "start": 0.5 + i * 0.3, "end": 0.7 + i * 0.3} for i, w in enumerate(words)]}]}))


def _call(db: Engine, root: Path, file_id: str, *, redacted: bool) -> None:
    """A finished (or, without `redacted`, pending) call of batch 77 whose plan includes redact."""
    folder = root / "77" / file_id
    folder.mkdir(parents=True)
    (folder / "ivr.wav").write_bytes(b"RIFF-original")
    (folder / "redact.wav").write_bytes(b"RIFF-redacted")
    _artifact(folder / "stt.json", ORIGINAL, folder / "ivr.wav")
    _artifact(folder / "redact.json", REDACTED, folder / "redact.wav")
    common = {"worker": "w", "engine": "e", "durationMs": 1}
    results = {**empty_results(), "stt": {**common, "language": "en", "transcriptPath": str(folder / "stt.json"),
                                         "text": ORIGINAL, "speech": dict.fromkeys(SpeechParams.model_fields, 0.0)}}
    if redacted:
        results["redact"] = {**common, "transcriptPath": str(folder / "redact.json"), "text": REDACTED,
                             "outputPath": str(folder / "redact.wav")}
    event = {"eventId": "e", "batchId": 77, "fileId": file_id, "file": f"/calls/{file_id}.wav",
             "audioPath": f"/calls/{file_id}.wav", "stages": list(STAGES), "emittedAt": 0, "results": results,
             "currentAudio": str(folder / ("redact.wav" if redacted else "ivr.wav"))}
    with db.begin() as c:
        c.execute(text("INSERT INTO fileDistribution (batchId, fileId, file, status, lastEvent) "
                       "VALUES (77, :f, :file, 'Completed', :ev)"),
                  {"f": file_id, "file": event["file"], "ev": get_codec().encode("FileEvent", event)})
        if redacted:  # what the tracker stores for a batch that redacts: redact's transcript, never stt's
            c.execute(text("INSERT INTO auditResult (batchId, fileId, file, transcriptPath, transcript) "
                           "VALUES (77, :f, :file, :p, :t)"),
                      {"f": file_id, "file": event["file"], "p": str(folder / "redact.json"), "t": REDACTED})


def _client(settings: Settings, name: str) -> TestClient:
    users = {n: ConsoleUser(role=r, password_hash=hash_password(p)) for n, (r, p) in USERS.items()}
    app = create_app(settings.model_copy(update={"console_users": users, "console_secret": SecretStr("s" * 64),
                                                 "console_dev": False}))
    client = TestClient(app, follow_redirects=False)
    token = re.search(r'name="login_csrf" value="([^"]+)"', client.get("/login").text).group(1)
    r = client.post("/login", data={"username": name, "password": USERS[name][1], "login_csrf": token,
                                    "next": "/batches"})
    assert r.status_code == 303, r.text
    return client


@pytest.mark.parametrize("keep", [False, True])
def test_redacted_calls_show_redacted_transcript_and_audio(settings: Settings, db_engine: Engine, keep: bool) -> None:
    settings = settings.model_copy(update={"redact_keep_original": keep})
    root = Path(settings.artifact_root)
    _call(db_engine, root, "done", redacted=True)
    _call(db_engine, root, "pending", redacted=False)
    reviewer, operator = _client(settings, "rita"), _client(settings, "olivia")
    for client in (reviewer, operator):
        page = client.get("/batches/77/files/done").text
        assert "[ACCOUNT_NUMBER_1]" in page and "4 5 6 7" not in page and "PII redacted" in page
        assert client.get("/batches/77/files/done/audio").content == b"RIFF-redacted"
        data = client.get("/batches/77/files/done/data.json").json()
        assert data["redacted"] and not data["original"] and "4 5 6 7" not in json.dumps(data)
        pending = client.get("/batches/77/files/pending")
        assert "4 5 6 7" not in pending.text and "not redacted yet" in pending.text
        assert client.get("/batches/77/files/pending/audio").status_code == 404
        assert client.get("/batches/77/files/pending/data.json").json()["turns"] == []
    assert reviewer.get("/batches/77/files/done?original=1").status_code == 403
    assert reviewer.get("/batches/77/files/done/audio?original=1").status_code == 403
    assert ('id="original-link"' in operator.get("/batches/77/files/done").text) == keep
    if not keep:
        assert operator.get("/batches/77/files/done?original=1").status_code == 403
        return
    original = operator.get("/batches/77/files/done?original=1")
    assert original.status_code == 200 and "4 5 6 7" in original.text and "original, unredacted" in original.text
    assert operator.get("/batches/77/files/done/audio?original=1").content == b"RIFF-original"
