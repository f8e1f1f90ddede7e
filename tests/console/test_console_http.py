"""The console over HTTP on a real batch (real Kafka + MariaDB, tracker and stage workers;
passthrough engines, and scripted stt/llm1 results of the real shapes for the evidence markup:
this is about pages, auth and controls, not audit quality)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from cofi.devtools import synth
from cofi.ops.cli.api import load_results, results_csv
from cofi.pipeline.codec import get_codec
from cofi.pipeline.engine import StageContext, StageOutput
from cofi.pipeline.passthrough import PassthroughEngine
from cofi.pipeline.topics import Topics
from cofi.settings import Settings
from services.console import call_pages, pages
from services.console.calls import audio_path
from services.llm2.engine import Llm2Engine
from tests.support.console import ARTIFACT, ConsoleServer, Pipeline, csrf_of, login
from tests.support.harness import Collector
from tests.support.tracker import batch_start, submit, wait_status

pytestmark = pytest.mark.integration
BATCH = 4101


@pytest.fixture
def done_batch(settings: Settings, db_engine: Engine, tmp_path: Path):
    """A 3-call batch run to Completed through the tracker and every stage; the pipeline stays up."""
    calls = tmp_path / "calls"
    synth.make_batch(calls, 3, seed=5, ivr=False, stereo=True)
    start = {**batch_start(BATCH, 0), "files": [], "manifest": str(calls / "manifest.csv"),
             "submittedBy": "tester@ci"}
    with Pipeline(settings):
        submit(settings, start)
        assert wait_status(db_engine, BATCH, timeout=120)["status"] == "Completed"
        with ConsoleServer(settings) as console:
            yield console


def _protected_paths(file_id: str) -> list[str]:
    fill = {"{batch_id}": str(BATCH), "{file_id}": file_id, "{fmt}": "csv", "{action}": "cancel"}
    paths = []
    for route in [*pages.router.routes, *call_pages.router.routes]:
        if "GET" in route.methods:
            path = route.path
            for k, v in fill.items():
                path = path.replace(k, v)
            paths.append(path)
    return paths


def test_no_page_without_a_session_and_controls_need_operator_and_csrf(done_batch: ConsoleServer,
                                                                       settings: Settings,
                                                                       db_engine: Engine) -> None:
    url = done_batch.url
    olivia = login(url, "olivia")
    page = olivia.get(f"/batches/{BATCH}")
    assert page.status_code == 200 and 'id="batch-status">Completed<' in page.text
    file_id = re.search(rf'href="/batches/{BATCH}/files/([^"/]+)"', page.text).group(1)

    anonymous = httpx.Client(base_url=url, follow_redirects=False)
    paths = _protected_paths(file_id)
    assert len(paths) >= 10
    for path in paths:
        r = anonymous.get(path, headers={"Accept": "text/html"})
        assert r.status_code == 303 and r.headers["location"].startswith("/login"), path
        assert anonymous.get(path).status_code == 401, path
    assert anonymous.post(f"/batches/{BATCH}/control/resume").status_code == 401
    bad = anonymous.post("/login", data={"username": "olivia", "password": "wrong", "login_csrf": "x"})
    assert bad.status_code == 401 and "Wrong user name or password" in bad.text
    forged = httpx.Client(base_url=url, cookies={"cofi_session": olivia.cookies["cofi_session"][:-2] + "xx"})
    assert forged.get("/batches").status_code == 401

    for path in paths:  # every page renders for a logged-in user
        assert olivia.get(path).status_code == (303 if path == "/" else 200), path

    control_topic = Topics(settings.topic_prefix).batch_control
    seen = Collector(settings, [control_topic])
    rita = login(url, "rita")
    rita_page = rita.get(f"/batches/{BATCH}").text
    assert 'id="read-only"' in rita_page and 'id="control-resume"' not in rita_page
    assert rita.get(f"/batches/{BATCH}/control/resume").status_code == 403
    refused = rita.post(f"/batches/{BATCH}/control/resume", data={"csrf": csrf_of(rita_page)})
    assert refused.status_code == 403 and "only an operator" in refused.text
    assert olivia.post(f"/batches/{BATCH}/control/resume", data={}).status_code == 403
    assert olivia.post(f"/batches/{BATCH}/control/resume", data={"csrf": "nope"}).status_code == 403
    confirm = olivia.get(f"/batches/{BATCH}/control/reaudit")
    assert confirm.status_code == 200 and "Confirm reaudit" in confirm.text
    invalid = olivia.post(f"/batches/{BATCH}/control/reaudit",
                          data={"csrf": csrf_of(page.text), "from_stage": "llm2", "rules": "rules: [{id: x}]"})
    assert invalid.status_code == 400 and 'id="control-error"' in invalid.text
    sent = olivia.post(f"/batches/{BATCH}/control/resume", data={"csrf": csrf_of(page.text)})
    assert sent.status_code == 303 and sent.headers["location"] == f"/batches/{BATCH}?sent=resume"
    assert seen.wait(lambda: len(seen.on(control_topic)) >= 1, 30)
    seen.stop()
    events = [get_codec().decode_as("BatchControl", v) for v in seen.on(control_topic)]
    assert [(e["action"], e["batchId"], e["requestedBy"]) for e in events] == [("resume", BATCH, "olivia@console")]
    metrics = httpx.get(f"{url}/metrics").text
    assert 'cofi_console_controls_total{action="resume"} 1.0' in metrics


def test_results_export_matches_the_cli_and_audio_serves_ranges(done_batch: ConsoleServer,
                                                                 db_engine: Engine) -> None:
    client = login(done_batch.url, "rita")
    csv_r = client.get(f"/batches/{BATCH}/results.csv")
    with db_engine.connect() as conn:
        rows = load_results(conn, BATCH)
    assert csv_r.status_code == 200 and csv_r.text == results_csv(rows)
    assert "attachment" in csv_r.headers["content-disposition"]
    as_json = client.get(f"/batches/{BATCH}/results.json").json()
    assert [r["file"] for r in as_json] == [r["file"] for r in rows] and len(rows) == 3

    page = client.get(f"/batches/{BATCH}").text
    file_id = re.search(rf'href="/batches/{BATCH}/files/([^"/]+)"', page).group(1)
    full = client.get(f"/batches/{BATCH}/files/{file_id}/audio")
    assert full.status_code == 200 and full.headers["content-type"] == "audio/wav"
    assert full.content[:4] == b"RIFF"
    part = client.get(f"/batches/{BATCH}/files/{file_id}/audio", headers={"Range": "bytes=100-1099"})
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 100-1099/{len(full.content)}"
    assert part.content == full.content[100:1100]
    data = client.get(f"/batches/{BATCH}/files/{file_id}/data.json").json()
    assert data["status"] == "Completed" and data["audio"] is True
    assert [h["stage_name"] for h in data["history"]] == ["denoise", "ivr", "lid", "stt", "llm1", "llm2"]
    assert all(h["status"] == "success" for h in data["history"])


def test_audio_is_only_served_from_the_artifact_root_or_the_original(tmp_path: Path) -> None:
    root = tmp_path / "artifacts"
    (root / "7" / "f1").mkdir(parents=True)
    trimmed = root / "7" / "f1" / "ivr.wav"
    trimmed.write_bytes(b"RIFF")
    original = tmp_path / "calls" / "a.wav"
    original.parent.mkdir()
    original.write_bytes(b"RIFF")
    secret = tmp_path / "secret.wav"
    secret.write_bytes(b"RIFF")

    def event(current: str) -> bytes:
        rec = {"eventId": "e", "batchId": 7, "fileId": "f1", "file": str(original), "audioPath": str(original),
               "currentAudio": current, "stages": ["ivr"], "emittedAt": 0, "results": {}}
        return get_codec().encode("FileEvent", json.loads(json.dumps(rec)))

    row = {"batchId": 7, "fileId": "f1", "file": str(original)}
    assert audio_path({**row, "lastEvent": event(str(trimmed))}, root) == trimmed.resolve()
    # a current audio outside both places is never served: the artifact, then the original, are used
    assert audio_path({**row, "lastEvent": event(str(secret))}, root) == trimmed.resolve()
    trimmed.unlink()
    assert audio_path({**row, "lastEvent": event(str(secret))}, root) == original.resolve()
    assert audio_path({**row, "lastEvent": event(str(root / ".." / "secret.wav"))}, root) == original.resolve()
    original.unlink()
    assert audio_path({**row, "lastEvent": event(str(secret))}, root) is None


class _TranscriptStt(PassthroughEngine):
    """Writes an STT artifact of the real engine's shape (tests/console/test_evidence.ARTIFACT)."""

    def process(self, event: dict[str, Any], ctx: StageContext) -> StageOutput:
        path = ctx.artifact("json")
        path.write_text(json.dumps({**ARTIFACT, "source": event["currentAudio"]}))
        out = super().process(event, ctx)
        return StageOutput({**out.result, "language": "en", "transcriptPath": str(path),
                            "text": "agent: Good morning ... Please note this call is recorded."})


class _QuotingLlm1(PassthroughEngine):
    """Answers with a quote, as the real llm1's result record."""

    def process(self, event: dict[str, Any], ctx: StageContext) -> StageOutput:
        out = super().process(event, ctx)
        answers = [{"questionId": "recording_disclosed", "answer": "yes", "source": "llm",
                    "evidence": "Agent: please note this call is RECORDED"},
                   {"questionId": "greeting", "answer": "no", "source": "llm", "evidence": "goodbye and farewell"}]
        return StageOutput({**out.result, "answers": answers})


def test_call_page_highlights_located_evidence(settings: Settings, db_engine: Engine, tmp_path: Path) -> None:
    calls = tmp_path / "calls"
    synth.make_batch(calls, 1, seed=6, ivr=False, stereo=True, turns=2)
    questionnaire = json.dumps({"id": "t", "questions": [{"id": "recording_disclosed", "text": "Recorded?"},
                                                         {"id": "greeting", "text": "Greeted?"}]})
    start = {**batch_start(4102, 0), "files": [], "manifest": str(calls / "manifest.csv"),
             "questionnaire": questionnaire}
    engines = {"stt": _TranscriptStt("stt"), "llm1": _QuotingLlm1("llm1"), "llm2": Llm2Engine(settings)}
    with Pipeline(settings, engines):
        submit(settings, start)
        assert wait_status(db_engine, 4102, timeout=120)["status"] == "Completed"
    with ConsoleServer(settings) as console:
        client = login(console.url, "rita")
        file_id = re.search(r'href="/batches/4102/files/([^"/]+)"', client.get("/batches/4102").text).group(1)
        html = client.get(f"/batches/4102/files/{file_id}").text
        data = client.get(f"/batches/4102/files/{file_id}/data.json").json()
    assert '<mark class="ev" data-ev="q:recording_disclosed">Please note this call is recorded.</mark>' in html
    assert 'data-seek="4.5" data-turn="0"' in html and "(not found in the transcript)" in html
    assert '<div class="turn spk-agent" id="turn-0" data-start="0.5"' in html
    answers = {a["questionId"]: a for a in data["answers"]}
    assert answers["recording_disclosed"]["located"] == {"turn": 0, "start": 4.5, "words": 6, "exact": True}
    assert answers["greeting"]["located"] is None
    assert data["timed"] and [t["speaker"] for t in data["turns"]] == ["agent", "customer"]
    assert data["audit"]["verdict"] in ("pass", "fail") and 'id="verdict"' in html
