"""A batch of generated calls through every REAL engine (spectral denoise, VAD IVR, Whisper LID
and STT, Gemma via llama.cpp for llm1, rules for llm2) on real Kafka + MariaDB, tracked end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from cofi.audit.transcript import PRELUDE_SPEAKER
from cofi.devtools import synth
from cofi.devtools.wer import wer
from cofi.pipeline.stages import REGISTRY, STAGES
from cofi.pipeline.worker import build_engine
from cofi.settings import Settings
from tests.support.harness import ThreadedWorkers
from tests.support.tracker import RunningTracker, batch_start, submit, wait_status

pytestmark = pytest.mark.integration

RULES = json.dumps({"rules": [
    {"id": "no-long-silence", "description": "no silence over 20 s", "severity": "minor",
     "expression": "speech.longestSilenceSec < 20"},
]})


# Two LLM questions keep the 270M model's CPU time per call to seconds; the default questionnaire
# (seven LLM questions) is exercised by tests/llm and bench/llm.py.
QUESTIONNAIRE = json.dumps({"id": "e2e", "questions": [
    {"id": "greeting", "text": "Did the agent greet the customer?", "weight": 1},
    {"id": "recording_disclosed", "text": "Did the agent say the call is recorded?", "weight": 2, "critical": True},
    {"id": "low_silence", "text": "Silence ratio below 0.5", "type": "speech",
     "speech": {"metric": "silenceRatio", "op": "<", "threshold": 0.5}},
]})


def _real_engines(settings: Settings) -> dict:
    return {s.name: build_engine(s.name, settings.model_copy(update={f"{s.name}_engine": s.default_engine}))
            for s in REGISTRY}


def test_generated_calls_run_through_every_real_engine(settings: Settings, db_engine: Engine, llm_server: str,
                                                       tmp_path: Path) -> None:
    calls = tmp_path / "calls"
    truths = synth.make_batch(calls, 2, seed=11, ivr=True, stereo=True, snr_db=25)
    s = settings.model_copy(update={"llm_base_url": llm_server, "llm_max_retries": 2, "max_attempts": 2,
                                    "stage_concurrency": 1})
    engines = _real_engines(s)
    assert {e.name for e in engines.values()}.isdisjoint({"passthrough"})
    start = {**batch_start(901, 0), "files": [], "manifest": str(calls / "manifest.csv"), "rules": RULES,
             "questionnaire": QUESTIONNAIRE}
    with RunningTracker(s), ThreadedWorkers(s, list(STAGES), engines):
        submit(s, start)
        row = wait_status(db_engine, 901, timeout=900)
    assert row["status"] == "Completed", row
    with db_engine.connect() as c:
        files = c.execute(text("SELECT * FROM fileDistribution WHERE batchId = 901")).mappings().all()
        audit = {r["file"]: r for r in c.execute(text("SELECT * FROM auditResult WHERE batchId = 901")).mappings()}
        logs = c.execute(text("SELECT stage_name, status, duration FROM processing_logs WHERE batch_id = '901'")).all()
    print("stage durations (s):", sorted((st, round(d, 2)) for st, _, d in logs))
    assert len(files) == 2 and all(f["status"] == "Completed" for f in files)
    plan = row["stages"].split(",")  # every stage but the opt-in redact (the batch asks for no redaction)
    assert plan == [st for st in STAGES if st != "redact"]
    assert all(f[f"{st}Done"] == int(st in plan) for f in files for st in STAGES)
    assert sorted(st for st, status, _ in logs if status == "success") == sorted(plan * 2)
    for t in truths:
        a = audit[str(calls / Path(t.file).name)]
        assert a["language"] == "en"
        assert abs(a["ivrEndSec"] - t.ivr_end_sec) < 0.5
        prelude, *said = a["transcript"].splitlines()  # stt puts what the switch played first, as its own line
        assert prelude.startswith(f"{PRELUDE_SPEAKER}: ") and "press" in prelude.lower(), prelude
        hyp = " ".join(line.split(":", 1)[-1] for line in said)
        assert not any(line.startswith(f"{PRELUDE_SPEAKER}: ") for line in said)
        assert wer(t.reference_text, hyp) < 0.3
        assert a["verdict"] in ("pass", "fail", "critical_fail")
        answers = {x["questionId"]: x for x in json.loads(a["answers"])}
        assert set(answers) == {"greeting", "recording_disclosed", "low_silence"}
        assert answers["low_silence"]["source"] == "speech"
        assert any(r["ruleId"] == "no-long-silence" for r in json.loads(a["ruleResults"]))
