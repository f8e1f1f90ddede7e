"""The LLM stages inside the pipeline (real Kafka + MariaDB + tracker): a dead LLM endpoint fails
files with a clear error while the batch completes; reaudit with a changed rule changes verdicts
without re-running the audio stages."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import Engine, text

from cofi.devtools.checks import rows as scalar_rows
from cofi.pipeline.engine import StageContext, StageOutput
from cofi.pipeline.passthrough import PassthroughEngine
from cofi.pipeline.stages import STAGES
from cofi.settings import Settings
from services.llm1.engines import build_engine as build_llm1
from services.llm2.engines import build_engine as build_llm2
from tests.support.harness import ThreadedWorkers
from tests.support.tracker import RunningTracker, batch_start, control, submit, wait_status

pytestmark = pytest.mark.integration

SPEECH_ONLY = json.dumps({"id": "speech-only", "questions": [
    {"id": "low_silence", "text": "Silence ratio below 0.5", "type": "speech",
     "speech": {"metric": "silenceRatio", "op": "<", "threshold": 0.5}}]})
LLM_QUESTION = json.dumps({"id": "one-llm-question", "questions": [
    {"id": "greeting", "text": "Did the agent greet the customer?"}]})


class TranscriptEngine(PassthroughEngine):
    """stt stand-in with a fixed transcript, so the LLM stages have text to work on."""

    def __init__(self) -> None:
        super().__init__("stt")

    def process(self, event: dict[str, Any], ctx: StageContext) -> StageOutput:
        out = super().process(event, ctx)
        out.result = {**out.result, "language": "en", "words": 9,
                      "text": "agent: good morning, this call is recorded\ncustomer: hello, thanks"}
        return out


def _rules(expression: str) -> str:
    return json.dumps({"rules": [{"id": "silence", "severity": "critical", "when": expression}]})


def test_dead_llm_endpoint_fails_files_clearly_and_the_batch_completes(settings: Settings,
                                                                       db_engine: Engine) -> None:
    dead = settings.model_copy(update={"llm_base_url": "http://127.0.0.1:9/v1", "llm_max_retries": 1,
                                       "llm_retry_backoff_s": 0.05, "max_attempts": 2, "llm_timeout_s": 2})
    engines = {"stt": TranscriptEngine(), "llm1": build_llm1("llm", dead)}
    with RunningTracker(dead), ThreadedWorkers(dead, list(STAGES), engines):
        submit(dead, batch_start(801, 4, questionnaire=LLM_QUESTION))
        row = wait_status(db_engine, 801, timeout=180)
    assert row["status"] == "Failed" and row["failedFiles"] == 4  # every file needed the LLM
    assert row["llm1Status"] == "Failed" and row["sttStatus"] == "Completed"
    errors = scalar_rows(db_engine, "SELECT stage_name, error FROM processing_logs WHERE batch_id = '801' "
                                    "AND status = 'failed'")
    assert len(errors) == 4 and {s for s, _ in errors} == {"llm1"}
    assert all("127.0.0.1:9" in e and "gave up after 2 attempts" in e for _, e in errors), errors[0]
    assert scalar_rows(db_engine, "SELECT COUNT(*) FROM batchExecutionLog WHERE batchId = 801 "
                                  "AND eventType = 'batch_complete'")[0][0] == 1


def test_reaudit_with_a_changed_rule_changes_verdicts_without_rerunning_audio(settings: Settings,
                                                                              db_engine: Engine) -> None:
    engines = {"llm2": build_llm2("rules", settings)}
    with RunningTracker(settings), ThreadedWorkers(settings, list(STAGES), engines):
        submit(settings, batch_start(802, 5, questionnaire=SPEECH_ONLY, rules=_rules("speech.silenceRatio < 0.5")))
        wait_status(db_engine, 802)
        before = dict(scalar_rows(db_engine, "SELECT fileId, verdict FROM auditResult WHERE batchId = 802"))
        control(settings, 802, "reaudit", fromStage="llm2", rules=_rules("speech.silenceRatio > 0.5"))
        wait_status(db_engine, 802, ("InProgress",), timeout=30)
        wait_status(db_engine, 802, ("Completed",))
    after = dict(scalar_rows(db_engine, "SELECT fileId, verdict FROM auditResult WHERE batchId = 802"))
    assert set(before.values()) == {"pass"} and set(after.values()) == {"critical_fail"}
    reasons = scalar_rows(db_engine, "SELECT ruleResults FROM auditResult WHERE batchId = 802")
    assert all(json.loads(r)[0]["passed"] is False for (r,) in reasons)
    runs = dict(scalar_rows(db_engine, "SELECT stage_name, COUNT(*) FROM processing_logs WHERE batch_id = '802' "
                                       "AND status = 'success' GROUP BY stage_name"))
    assert runs == {"denoise": 5, "ivr": 5, "lid": 5, "stt": 5, "llm1": 5, "llm2": 10}
    with db_engine.connect() as c:
        assert "silenceRatio > 0.5" in json.loads(c.execute(text(
            "SELECT config FROM batchStatus WHERE id = 802")).scalar())["rules"]
