"""The redact stage inside the pipeline (real Kafka + MariaDB + tracker): a batch that asks for
redaction runs it between stt and llm1 with its done flag, status, processing_logs and the seed's
batchExecutionLog rules, exactly once; the audit and auditResult get the redacted transcript only,
the unredacted artifacts are gone; a batch that does not ask skips the stage."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from cofi.devtools.checks import exactly_once_problems, rows
from cofi.devtools.pii_calls import PiiCall, make_pii_call, whisper_like
from cofi.pipeline.artifacts import ArtifactSync, S3Store
from cofi.pipeline.engine import Engine as StageEngine
from cofi.pipeline.engine import StageContext, StageOutput, write_json
from cofi.pipeline.results import SpeechParams
from cofi.pipeline.stages import STAGES
from cofi.pipeline.transcript_source import audit_transcript, labelled_text
from cofi.redaction import make_policy
from cofi.settings import Settings
from services.redact.detect import Detector
from services.redact.engines import PresidioRedactor
from tests.support.harness import ThreadedWorkers
from tests.support.s3 import running_s3
from tests.support.tracker import RunningTracker, batch_start, control, submit, wait_status

pytestmark = pytest.mark.integration


class ScriptedStt(StageEngine):
    """stt stand-in: the Whisper-like transcript of the PII call each file is (no model: this test is
    about the pipeline, tests/redact/test_audio.py about real transcriptions)."""

    stage, name = "stt", "scripted"

    def __init__(self, calls: dict[str, PiiCall]) -> None:
        self.calls = calls

    def process(self, event: dict[str, Any], ctx: StageContext) -> StageOutput:
        call = self.calls[event["file"]]
        doc = {**whisper_like(call, 3).doc, "source": event["currentAudio"]}
        path = ctx.artifact("json")
        write_json(path, doc)
        return StageOutput(result={"language": "en", "transcriptPath": str(path), "text": labelled_text(doc["segments"]),
                                   "words": 1, "speech": dict.fromkeys(SpeechParams.model_fields, 0.0)})


class EchoLlm1(StageEngine):
    """llm1 stand-in that quotes the transcript it was given, so the test sees what the audit read."""

    stage, name = "llm1", "echo"

    def process(self, event: dict[str, Any], ctx: StageContext) -> StageOutput:
        return StageOutput(result={"model": "echo", "answers": [{"questionId": "read", "answer": "yes",
                                                                  "evidence": audit_transcript(event)}]})


@pytest.fixture(scope="module")
def calls(tmp_path_factory: pytest.TempPathFactory) -> dict[str, PiiCall]:
    root = tmp_path_factory.mktemp("pii-batch")
    return {str(root / f"call{i}.wav"): make_pii_call(root / f"call{i}.wav", 30 + i, compact=True) for i in range(3)}


def _start(batch_id: int, calls: dict[str, PiiCall], **extra: Any) -> dict[str, Any]:
    start = batch_start(batch_id, 0, **extra)
    start["files"] = [{"file": f, "metadata": c.meta} for f, c in calls.items()]
    start["trades"] = [c.trade for c in calls.values()]
    return start


def test_redact_stage_in_the_pipeline(settings: Settings, db_engine: Engine, calls: dict[str, PiiCall]) -> None:
    s = settings.model_copy(update={"log_file_start_events": False, "progress_update_interval": 2})
    engines = {"stt": ScriptedStt(calls), "redact": PresidioRedactor(s, Detector(s.spacy_model)), "llm1": EchoLlm1()}
    with RunningTracker(s), ThreadedWorkers(s, list(STAGES), engines):
        submit(s, _start(901, calls, redact=make_policy()))
        submit(s, _start(902, calls))
        submit(s, _start(903, calls, redact={"entities": ["SHOE_SIZE"], "audio": "tone"}))
        row = wait_status(db_engine, 901, timeout=180)
        plain = wait_status(db_engine, 902, timeout=180)
        rejected = wait_status(db_engine, 903, timeout=60)
        once = exactly_once_problems(s, db_engine, 901, len(calls))  # flags, processing_logs, seed log rows, topics
        flags = rows(db_engine, "SELECT COUNT(*), SUM(redactDone) FROM fileDistribution WHERE batchId = 901")[0]
        redact_log = rows(db_engine, "SELECT stage, eventType, COUNT(*) FROM batchExecutionLog WHERE batchId = 901 "
                                     "AND stage = 'redact' GROUP BY 1, 2 ORDER BY 2")
        # a reaudit re-runs the LLM stages only on files whose redaction is done (never on an original):
        # one file as if its redaction had failed
        with db_engine.begin() as c:
            c.execute(text("UPDATE fileDistribution SET redactDone = 0, llm1Done = 0, llm2Done = 0, status = 'Failed', "
                           "failedStage = 'redact', error = 'test' WHERE batchId = 901 ORDER BY fileId LIMIT 1"))
        control(s, 901, "reaudit", fromStage="llm1")
        wait_status(db_engine, 901, ("InProgress",), timeout=30)
        wait_status(db_engine, 901, timeout=120)
    assert rejected["status"] == "Rejected" and "unknown entity type(s) SHOE_SIZE" in rejected["reason"]
    assert rows(db_engine, "SELECT COUNT(*) FROM processing_logs WHERE batch_id = '901' AND stage_name = 'llm1'")[0][0] \
        == 2 * len(calls) - 1
    n = len(calls)
    assert row["status"] == "Completed" and row["redactStatus"] == "Completed", row
    assert row["stages"].split(",") == list(STAGES)
    assert once == [] and flags == (n, n)
    assert redact_log == [
        ("redact", "progress", n // 2), ("redact", "stage_complete", 1), ("redact", "stage_start", 1)]
    audits = rows(db_engine, "SELECT file, transcriptPath, transcript, answers FROM auditResult WHERE batchId = 901")
    for file, path, transcript, answers in audits:
        call = calls[file]
        assert Path(path).name == "redact.json" and "[ACCOUNT_NUMBER_1]" in transcript
        assert json.loads(answers)[0]["evidence"] == transcript  # the audit read the redacted transcript
        digits = re.sub(r"\D", "", transcript)
        assert not any(i.value[-6:] in digits for i in call.items if i.type == "ACCOUNT_NUMBER"), transcript
        assert not any(i.value.split()[-1] in transcript for i in call.items if i.type == "PERSON"), transcript
        assert call.trade["symbol"] in transcript
        folder = Path(path).parent
        assert sorted(p.name for p in folder.iterdir()) == ["redact.json", "redact.wav"]  # stt.json deleted
    # the batch that did not ask: no redact stage, the transcript as stt wrote it
    assert plain["status"] == "Completed" and plain["redactStatus"] == "Skipped" and "redact" not in plain["stages"]
    assert exactly_once_problems(s, db_engine, 902, n) == []
    (path, transcript), *_ = rows(db_engine, "SELECT transcriptPath, transcript FROM auditResult WHERE batchId = 902")
    assert Path(path).name == "stt.json" and "[" not in transcript


def test_redaction_leaves_no_unredacted_artifact_in_an_s3_store(settings: Settings, db_engine: Engine,
                                                                 calls: dict[str, PiiCall], tmp_path: Path) -> None:
    """ARTIFACT_STORE=s3://...: what redact deletes (the unredacted transcript) leaves the store too, and the
    audit read the redacted transcript, with no node keeping a working copy."""
    with running_s3(tmp_path / "s3") as s3:
        s = s3.settings(settings, "redact", log_file_start_events=False, progress_update_interval=2)
        engines = {"stt": ScriptedStt(calls), "redact": PresidioRedactor(s, Detector(s.spacy_model)),
                   "llm1": EchoLlm1()}
        with RunningTracker(s), ThreadedWorkers(s, list(STAGES), engines):
            submit(s, _start(904, calls, redact=make_policy()))
            row = wait_status(db_engine, 904, timeout=180)
        assert row["status"] == "Completed", row
        assert exactly_once_problems(s, db_engine, 904, len(calls)) == []
        store = ArtifactSync(s).store
        assert isinstance(store, S3Store)
        listed = store.client.list_objects_v2(Bucket=store.bucket, Prefix="redact/904/")["Contents"]
        names = sorted({o["Key"].rsplit("/", 1)[1] for o in listed})
        assert names == ["redact.json", "redact.wav"] and len(listed) == 2 * len(calls)  # stt.json deleted
    assert [p for p in Path(s.artifact_root).rglob("*") if p.is_file() and ".inflight" not in p.parts] == []
    for (transcript,) in rows(db_engine, "SELECT transcript FROM auditResult WHERE batchId = 904"):
        assert "[ACCOUNT_NUMBER_1]" in transcript
