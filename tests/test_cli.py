"""The `cofi` CLI against the real broker and database: events it sends, rows it renders, exit codes."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from sqlalchemy import Engine, insert, update
from typer.testing import CliRunner

from cofi import db
from cofi.ops.cli import app
from cofi.pipeline.codec import get_codec
from cofi.pipeline.kafka import make_consumer
from cofi.pipeline.topics import Topics
from cofi.settings import STAGE_METRICS_PORTS, Settings, get_settings
from tests.support.harness import message_count

RULES = """\
- id: disclosure
  description: the recording must be disclosed
  severity: critical
  when: answers.recording_disclosed == "yes"
"""
TRADES = """\
tradeId,clientCode,symbol,side,quantity,price,tradeTime,phone
T1,C100,ACME,buy,100,25,2026-01-15T09:02:00+00:00,+15550001
"""


def _wav(path: Path, seconds: float = 0.5) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(16000 * seconds)) / 16000
    sf.write(path, 0.1 * np.sin(2 * np.pi * 440 * t), 16000)
    return path


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    """Nothing listens on port 1: both servers are unreachable."""
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
    monkeypatch.setenv("DATABASE_URL", "mysql+pymysql://cofi:cofi@127.0.0.1:1/cofi")
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def _consume(settings: Settings, topic: str, n: int, timeout_s: float = 30.0) -> list[tuple[str, dict[str, Any]]]:
    consumer = make_consumer(settings, f"test-cli-{uuid.uuid4().hex[:8]}")
    consumer.subscribe([topic])
    out: list[tuple[str, dict[str, Any]]] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(out) < n and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            out.append(get_codec().decode(msg.value()))
    finally:
        consumer.close()
    return out


def test_submit_sends_batch_start_by_manifest_and_inline(cli: CliRunner, settings: Settings, tmp_path: Path) -> None:
    calls = tmp_path / "calls"
    _wav(calls / "a.wav")
    _wav(calls / "sub" / "b.wav")
    (tmp_path / "rules.yaml").write_text(RULES)
    (tmp_path / "trades.csv").write_text(TRADES)
    single = _wav(tmp_path / "one.wav")

    r1 = cli.invoke(app, ["submit", str(calls), "--skip", "denoise,ivr", "--batch-id", "424242",
                          "--rules", str(tmp_path / "rules.yaml"), "--trades", str(tmp_path / "trades.csv"),
                          "--callback", "http://127.0.0.1:9/hook"])
    assert r1.exit_code == 0, r1.output
    assert "424242" in r1.output and "2 file(s)" in r1.output and "cofi status 424242" in r1.output
    r2 = cli.invoke(app, ["submit", str(single), "--redact", "account_number,PERSON", "--redact-audio", "silence"])
    assert r2.exit_code == 0, r2.output
    assert "stt > redact > llm1" in r2.output and "stt > llm1" in r1.output

    events = sorted(_consume(settings, Topics(settings.topic_prefix).batch_start, 2), key=lambda e: e[1]["batchId"])
    assert [name for name, _ in events] == ["BatchStart", "BatchStart"]
    first = next(e for _, e in events if e["batchId"] == 424242)
    assert first["manifest"] == str(calls) and first["files"] == []
    assert first["skip"] == ["denoise", "ivr"]
    assert json.loads(first["rules"])["rules"][0]["id"] == "disclosure"
    assert first["questionnaire"] is None
    assert first["trades"] == [{"tradeId": "T1", "clientCode": "C100", "symbol": "ACME", "side": "buy",
                                "quantity": 100.0, "price": 25.0, "tradeTime": "2026-01-15T09:02:00+00:00",
                                "phone": "+15550001"}]
    assert first["callback"] == "http://127.0.0.1:9/hook"
    assert first["redact"] is None  # no --redact: the opt-in redact stage is not in the plan
    second = next(e for _, e in events if e["batchId"] != 424242)
    assert second["manifest"] is None and second["files"] == [{"file": str(single), "metadata": {}}]
    assert second["redact"] == {"entities": ["PERSON", "ACCOUNT_NUMBER"], "audio": "silence"}
    assert str(second["batchId"]) in r2.output and second["batchId"] > 20_000_000_000_000_000


def test_invalid_input_exits_2_and_sends_nothing(cli: CliRunner, settings: Settings, tmp_path: Path) -> None:
    calls = tmp_path / "calls"
    _wav(calls / "a.wav")
    (tmp_path / "bad_rules.yaml").write_text("- id: r1\n  when: answers.no_such_question == 'yes'\n")
    (tmp_path / "bad_q.yaml").write_text("questions: []\n")
    (tmp_path / "bad_trades.csv").write_text("tradeId,clientCode\nT1,C1\n")
    (tmp_path / "m.csv").write_text("file,callStart\ncalls/a.wav,not-a-date\n")
    (tmp_path / "empty").mkdir()
    cases = [
        (["submit", str(calls), "--skip", "denoise,translate"], "unknown stage(s): translate"),
        (["submit", str(calls), "--skip", "stt"], "stt cannot be skipped"),
        (["submit", str(calls), "--rules", str(tmp_path / "bad_rules.yaml")], "unknown name answers.no_such_question"),
        (["submit", str(calls), "--rules", str(tmp_path / "missing.yaml")], "file not found"),
        (["submit", str(calls), "--questionnaire", str(tmp_path / "bad_q.yaml")], "invalid questionnaire"),
        (["submit", str(calls), "--trades", str(tmp_path / "bad_trades.csv")], "CSV header lacks"),
        (["submit", str(tmp_path / "m.csv")], "row 2: callStart 'not-a-date'"),
        (["submit", str(tmp_path / "empty")], "no audio files"),
        (["submit", str(tmp_path / "nope")], "does not exist"),
        (["submit", str(calls), "--callback", "ftp://x"], "not an http(s) URL"),
        (["submit", str(calls), "--batch-id", "0"], "positive 64-bit"),
        (["submit", str(calls), "--redact", "SHOE_SIZE"], "--redact: unknown entity type(s) SHOE_SIZE"),
        (["submit", str(calls), "--redact", "all", "--redact-audio", "beep"], "audio mode 'beep'"),
        (["reaudit", "5", "--from", "stt"], "reaudit starts at llm1 or llm2"),
        (["reaudit", "5", "--rules", str(tmp_path / "bad_rules.yaml")], "unknown name"),
    ]
    for args, message in cases:
        result = cli.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output, (args, result.output)
        assert "Traceback" not in result.output
    topics = Topics(settings.topic_prefix)
    assert message_count(settings, topics.batch_start) == 0
    assert message_count(settings, topics.batch_control) == 0


def test_control_commands_send_batch_control(cli: CliRunner, settings: Settings, tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(RULES)
    assert (r := cli.invoke(app, ["resume", "77"])).exit_code == 0, r.output
    assert "unfinished file" in r.output and "not in the database" in r.output
    r = cli.invoke(app, ["reaudit", "77", "--from", "llm2", "--rules", str(tmp_path / "rules.yaml")])
    assert r.exit_code == 0 and "re-runs llm2" in r.output and "new rules" in r.output, r.output
    assert (r := cli.invoke(app, ["cancel", "77"])).exit_code == 0, r.output
    events = _consume(settings, Topics(settings.topic_prefix).batch_control, 3)
    assert [(n, e["batchId"], e["action"], e["fromStage"]) for n, e in events] == [
        ("BatchControl", 77, "resume", None), ("BatchControl", 77, "reaudit", "llm2"),
        ("BatchControl", 77, "cancel", None)]
    assert json.loads(events[1][1]["rules"])["rules"][0]["when"] == 'answers.recording_disclosed == "yes"'
    assert events[0][1]["rules"] is None and events[2][1]["questionnaire"] is None


def _insert_batch(engine: Engine, batch: int) -> None:
    """A finished 3-file batch: two calls audited, one failed in stt."""
    done = {c: 1 for c in db.DONE_COLUMNS}
    with engine.begin() as conn:
        conn.execute(insert(db.batch_status).values(
            id=batch, status="Completed", denoiseStatus="Skipped", ivrStatus="Completed", lidStatus="Completed",
            sttStatus="Completed", llm1Status="Completed", llm2Status="Completed", stages="ivr,lid,stt,llm1,llm2",
            totalFiles=3, completedFiles=2, failedFiles=1))
        for row in [
            {"batchId": batch, "fileId": "f1", "file": "/calls/a.wav", "status": "Completed", **done, "denoiseDone": 0},
            {"batchId": batch, "fileId": "f2", "file": "/calls/b.wav", "status": "Completed", **done, "denoiseDone": 0},
            {"batchId": batch, "fileId": "f3", "file": "/calls/c.wav", "status": "Failed", "ivrDone": 1, "lidDone": 1,
             "failedStage": "stt", "error": "audio truncated"},
        ]:
            conn.execute(insert(db.file_distribution).values(**row))
        for row in [
            {"eventId": "e1", "batch_id": str(batch), "file": "/calls/c.wav", "stage_name": "stt", "status": "failed",
             "error": "PermanentError: audio truncated at 3.2 s", "duration": 0.4},
            {"eventId": "e2", "batch_id": str(batch), "file": "/calls/a.wav", "stage_name": "stt", "status": "success",
             "duration": 2.0},
        ]:
            conn.execute(insert(db.processing_logs).values(**row))
        for row in [
            {"batchId": batch, "fileId": "f1", "file": "/calls/a.wav", "language": "en", "verdict": "pass",
             "score": 91.5, "answers": {"greeting": "yes"}, "normalizedAnswers": {"greeting": "yes"},
             "ruleResults": [{"ruleId": "disclosure", "passed": True}], "tradeChecks": [],
             "transcriptPath": "/art/f1/stt.json"},
            {"batchId": batch, "fileId": "f2", "file": "/calls/b.wav", "language": "es", "verdict": "fail",
             "score": 40.0, "answers": {"greeting": "no"}, "ruleResults": [], "tradeChecks": [{"tradeId": "T1"}]},
        ]:
            conn.execute(insert(db.audit_result).values(**row))
        for row in [
            {"batchId": batch, "stage": "stt", "eventType": "stage_start", "dedupKey": f"{batch}:stt:start"},
            {"batchId": batch, "stage": "stt", "eventType": "file_error", "file": "/calls/c.wav",
             "dedupKey": f"{batch}:stt:err:c"},
        ]:
            conn.execute(insert(db.batch_execution_log).values(**row))
        conn.execute(insert(db.batch_status).values(id=batch + 1, status="InProgress", lidStatus="InProgress"))


def test_read_commands_render_database_rows(cli: CliRunner, db_engine: Engine, tmp_path: Path) -> None:
    _insert_batch(db_engine, 9001)

    r = cli.invoke(app, ["status", "9001"])
    assert r.exit_code == 0, r.output
    assert "Completed" in r.output and "completed 2" in r.output and "failed 1" in r.output
    stt_line = next(line for line in r.output.splitlines() if line.startswith("stt"))
    assert stt_line.split()[-3:] == ["2", "1", "3"]  # done, failed, of
    llm1_line = next(line for line in r.output.splitlines() if line.startswith("llm1"))
    assert llm1_line.split()[-3:] == ["2", "0", "2"]  # the stt failure never reaches llm1
    assert "Skipped" in next(line for line in r.output.splitlines() if line.startswith("denoise"))
    verdicts = next(line for line in r.output.splitlines() if line.startswith("verdicts"))
    assert verdicts.split() == ["verdicts", "critical_fail", "0", "fail", "1", "review", "0", "pass", "1"]
    assert cli.invoke(app, ["status", "9002"]).exit_code == 1  # InProgress
    assert "verdicts" not in cli.invoke(app, ["status", "9002"]).output  # none yet: no line
    r = cli.invoke(app, ["status", "1234"])
    assert r.exit_code == 1 and "not in the database" in r.output

    r = cli.invoke(app, ["results", "9001", "--format", "json"])
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)
    assert [(x["file"], x["status"], x["language"], x["verdict"]) for x in rows] == [
        ("/calls/a.wav", "Completed", "en", "pass"), ("/calls/b.wav", "Completed", "es", "fail"),
        ("/calls/c.wav", "Failed", None, None)]
    assert rows[0]["answers"] == {"greeting": "yes"} and rows[0]["ruleResults"][0]["passed"] is True
    assert rows[0]["score"] == 91.5 and rows[0]["transcriptPath"] == "/art/f1/stt.json"
    assert rows[2]["failedStage"] == "stt"
    out = tmp_path / "r.csv"
    r = cli.invoke(app, ["results", "9001", "--format", "csv", "--output", str(out)])
    assert r.exit_code == 0, r.output
    lines = out.read_text().splitlines()
    assert lines[0].startswith("file,status,failedStage,language,verdict,score,answers")
    assert '"{""greeting"":""yes""}"' in lines[1] and '"[{""tradeId"":""T1""}]"' in lines[2]
    assert cli.invoke(app, ["results", "1234"]).exit_code == 1
    # the calls a QA team works through: by verdict, several at once; none of one is an empty list
    r = cli.invoke(app, ["results", "9001", "--verdict", "fail", "--verdict", "critical_fail"])
    assert r.exit_code == 0 and [x["file"] for x in json.loads(r.stdout)] == ["/calls/b.wav"]
    r = cli.invoke(app, ["results", "9001", "--verdict", "review"])
    assert r.exit_code == 0 and json.loads(r.stdout) == [] and "no file with verdict review" in r.output
    r = cli.invoke(app, ["results", "9001", "--verdict", "bad"])
    assert r.exit_code != 0 and "--verdict bad: use critical_fail, fail, review, pass" in r.output
    assert cli.invoke(app, ["results", "1234", "--verdict", "pass"]).exit_code == 1

    r = cli.invoke(app, ["failures", "9001"])
    assert r.exit_code == 0, r.output
    assert "/calls/c.wav" in r.output and "audio truncated at 3.2 s" in r.output and "/calls/a.wav" not in r.output
    assert "error_count" in r.output

    r = cli.invoke(app, ["monitor", "9001"])
    assert r.exit_code == 0, r.output
    assert "WHERE batchId = 9001;" in r.output and "WHERE batch_id = '9001'" in r.output
    assert "denoise_count" in r.output and "event_count" in r.output and "file_error" in r.output
    assert "PermanentError: audio truncated at 3.2 s" in r.output  # Support: latest failures, one block per row


def test_status_watch_follows_the_row_until_final(cli: CliRunner, db_engine: Engine) -> None:
    _insert_batch(db_engine, 9001)

    def finish_later() -> None:
        time.sleep(1.5)
        with db_engine.begin() as conn:
            conn.execute(update(db.batch_status).where(db.batch_status.c.id == 9002)
                         .values(status="Failed", reason="every file failed"))

    worker = threading.Thread(target=finish_later)
    worker.start()
    r = cli.invoke(app, ["status", "9002", "--watch", "--interval", "0.2"])
    worker.join()
    assert r.exit_code == 1, r.output
    assert "Failed" in r.output and "reason: every file failed" in r.output
    assert cli.invoke(app, ["status", "9001", "--watch"]).exit_code == 0


def test_unreachable_servers_exit_3_with_one_line(offline: CliRunner, tmp_path: Path) -> None:
    _wav(tmp_path / "a.wav")
    r = offline.invoke(app, ["submit", str(tmp_path)])
    assert r.exit_code == 3, r.output
    assert len(r.output.strip().splitlines()) == 1 and "127.0.0.1:1" in r.output and "make up" in r.output
    for args in (["status", "5"], ["results", "5"], ["failures", "5"], ["monitor", "5"]):
        r = offline.invoke(app, args)
        assert r.exit_code == 3, (args, r.output)
        assert r.output.strip().splitlines() == [r.output.strip()] and "127.0.0.1:1" in r.output
        assert "make up" in r.output and "Traceback" not in r.output
    r = offline.invoke(app, ["cancel", "5"])
    assert r.exit_code == 3 and "Kafka at 127.0.0.1:1" in r.output
    # invalid input is reported as such before any server is contacted
    r = offline.invoke(app, ["submit", str(tmp_path), "--skip", "bogus", "--batch-id", "5", "--watch"])
    assert r.exit_code == 2 and "unknown stage(s): bogus" in r.output
    r = offline.invoke(app, ["reaudit", "5", "--from", "stt", "--wait"])
    assert r.exit_code == 2 and "llm1 or llm2" in r.output


def test_demo_fails_clearly_without_the_pipeline(offline: CliRunner, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from cofi.ops import demo

    monkeypatch.setenv("METRICS_PORT", "1")  # the tracker's /healthz: nothing listens there
    get_settings.cache_clear()
    assert demo.main(["--calls", "1", "--out", str(tmp_path), "--services-wait", "3"]) == 3
    err = capsys.readouterr().err
    assert "services not answering after 3s" in err and "tracker (:1:" in err and "make up" in err
    assert not any(tmp_path.iterdir())  # nothing synthesized, nothing sent


def test_demo_reads_the_engine_a_stage_runs_from_its_healthz() -> None:
    """The demo asks the LLM for a completion only when an LLM stage runs a real engine: services on
    passthrough engines (the plumbing check below) never call it, and need no LLM server."""
    from prometheus_client import CollectorRegistry

    from cofi.ops import demo
    from cofi.pipeline.metrics import HealthServer

    for ok, engine in ((True, "passthrough"), (False, "llm")):  # a stage not healthy yet still says its engine
        server = HealthServer(0, CollectorRegistry(), lambda ok=ok, engine=engine: (ok, {"stage": "llm1", "engine": engine})).start()
        try:
            assert demo.engine_of(server.port) == engine
        finally:
            server.stop()
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        closed = unused.getsockname()[1]
    assert demo.engine_of(closed, timeout_s=1.0) is None


REPO = Path(__file__).resolve().parent.parent
DEMO_PORTS = STAGE_METRICS_PORTS  # what `make up` uses, and the demo checks


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


@pytest.mark.slow
def test_demo_end_to_end_on_passthrough_services(cli: CliRunner, settings: Settings, monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: Path) -> None:
    """The real tracker and six stage services (passthrough engines: plumbing only) under the demo."""
    from cofi.ops import demo

    if not all(_port_free(p) for p in DEMO_PORTS.values()):
        pytest.skip("ports 9100-9106 are in use (is `make up` running?)")
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
           "DATABASE_URL": settings.database_url, "TOPIC_PREFIX": settings.topic_prefix,
           "ARTIFACT_ROOT": str(tmp_path / "artifacts"),
           **{f"{s.upper()}_ENGINE": "passthrough" for s in DEMO_PORTS if s != "tracker"}}
    procs = [subprocess.Popen([sys.executable, "-m", f"services.{name}"], cwd=REPO,
                              env={**env, "METRICS_PORT": str(port)}, stdout=subprocess.DEVNULL,
                              stderr=open(tmp_path / f"{name}.log", "wb"))
             for name, port in DEMO_PORTS.items()]
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and any(demo.health(p, 1.0) for p in DEMO_PORTS.values()):
            assert all(p.poll() is None for p in procs), "a service exited; see its log in tmp_path"
            time.sleep(0.5)
        monkeypatch.setenv("PROGRESS_UPDATE_INTERVAL", "1")
        get_settings.cache_clear()
        assert demo.main(["--calls", "3", "--out", str(tmp_path / "demo"), "--stall-timeout", "60"]) == 0
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
    [batch_dir] = (tmp_path / "demo").iterdir()
    assert {"manifest.csv", "trades.csv", "rules.yaml", "call_0000.wav"} <= {p.name for p in batch_dir.iterdir()}
    r = cli.invoke(app, ["results", batch_dir.name])
    rows = json.loads(r.stdout)
    assert [Path(x["file"]).name for x in rows] == ["call_0000.wav", "call_0001.wav", "call_0002.wav"]
    assert all(x["status"] == "Completed" for x in rows)


SEED = Path("/work/shared/seeds/000_3e8ab6ac925943d4.txt")


@pytest.mark.skipif(not SEED.exists(), reason="the seed document is not on this machine")
def test_monitoring_queries_are_the_seeds_verbatim() -> None:
    import re
    import textwrap

    from cofi.ops import monitoring

    text = SEED.read_text()
    monitor = text[text.index("**Monitor These Metrics:**"):text.index("## Logging Improvements")]
    support = text[text.index("## Support"):text.index("## Conclusion")]
    [block] = re.findall(r"```sql\n(.*?)```", monitor, re.S)
    assert [q.sql for q in monitoring.MONITOR_QUERIES] == [q.strip("\n") + "\n" for q in block.split("\n\n")]
    blocks = [textwrap.dedent(b).strip() + "\n" for b in re.findall(r"```sql\n(.*?)```", support, re.S)]
    assert [q.sql for q in monitoring.SUPPORT_QUERIES] == blocks
    assert monitoring.for_batch(monitoring.ERROR_COUNTS_SQL, 42).count("batch_id = '42'") == 1
