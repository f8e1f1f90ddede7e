"""The tracker on real Kafka + MariaDB: the seed's Test 1, its monitoring SQL, the execution-log
rules at 1,000 files, replay idempotency, rejections, resume after topic loss, reaudit, cancel."""

from __future__ import annotations

import json
import threading
import time
import uuid

import pytest
from sqlalchemy import Engine

from cofi.devtools.checks import read_topic, scalar
from cofi.devtools.checks import rows as scalar_rows
from cofi.ops.admin import delete_topics, ensure_topics
from cofi.ops.monitoring import ALL_QUERIES, run_all
from cofi.pipeline import events
from cofi.pipeline.stages import STAGES
from cofi.pipeline.topics import Topics, stage_plan
from cofi.settings import Settings
from tests.support.engines import ScriptedEngine
from tests.support.harness import ThreadedWorkers, counts_by_file
from tests.support.tracker import RunningTracker, batch_start, control, dump, submit, wait_status

pytestmark = pytest.mark.integration


def test_seed_test_1_small_batch_and_monitoring_queries(settings: Settings, db_engine: Engine) -> None:
    """Seed "Test 1": 100 files, every stage; then its monitoring and support SQL, unchanged."""
    with RunningTracker(settings), ThreadedWorkers(settings, list(STAGES)):
        submit(settings, batch_start(101, 100))
        row = wait_status(db_engine, 101)
    assert row["status"] == "Completed"
    assert all(row[f"{s}Status"] == ("Completed" if s in stage_plan() else "Skipped") for s in STAGES)  # redact: opt-in
    assert (row["totalFiles"], row["completedFiles"], row["failedFiles"]) == (100, 100, 0)
    assert scalar(db_engine, "SELECT COUNT(*) FROM fileDistribution WHERE batchId = 101 AND "
                  + " AND ".join(f"{s}Done = 1" for s in stage_plan())) == 100
    per_stage = dict(scalar_rows(db_engine, "SELECT stage_name, COUNT(DISTINCT file) FROM processing_logs "
                                 "WHERE batch_id = '101' AND status = 'success' GROUP BY stage_name"))
    assert per_stage == {s: 100 for s in stage_plan()}
    assert scalar(db_engine, "SELECT COUNT(*) FROM processing_logs WHERE batch_id = '101'") == 600
    log = dict(((s, e), n) for s, e, n in scalar_rows(
        db_engine, "SELECT stage, eventType, COUNT(*) FROM batchExecutionLog WHERE batchId = 101 GROUP BY 1, 2"))
    for s in stage_plan():
        assert log[(s, "stage_start")] == 1 and log[(s, "stage_complete")] == 1
        assert log[(s, "file_start")] == 100 and log[(s, "file_complete")] == 100  # defaults: true and 1
    assert log[(None, "batch_complete")] == 1

    results = {r.query.title: r for r in run_all(db_engine, 101)}
    assert len(results) == len(ALL_QUERIES)
    counts = results["Files completed per stage"]
    assert [int(v) for v in counts.rows[0]] == [100] * 7
    assert results["Error counts per stage"].rows == []
    summary = {(r[0], r[1]): r[2] for r in results["Batch execution log summary"].rows}
    assert summary[("llm1", "stage_start")] == 1 and summary[("llm2", "stage_complete")] == 1
    assert len(results["denoiseDone column present (should return 1 row)"].rows) == 1
    assert results["Latest failures (20)"].rows == []
    assert results["Batch status"].rows[0][results["Batch status"].columns.index("status")] == "Completed"


def test_1000_files_execution_log_rows_follow_the_seed_rules(settings: Settings, db_engine: Engine) -> None:
    """LOG_FILE_START_EVENTS=false, PROGRESS_UPDATE_INTERVAL=100: per stage 1 stage_start + done//100
    progress + 1 stage_complete, plus 1 batch_complete and 1 file_error per failure.
    Fault-free: 6 x (1 + 10 + 1) + 1 = 73 rows."""
    s = settings.model_copy(update={"log_file_start_events": False, "progress_update_interval": 100,
                                    "commit_every_messages": 200})
    with RunningTracker(s), ThreadedWorkers(s, list(STAGES)):
        submit(s, batch_start(201, 1000))
        assert wait_status(db_engine, 201, timeout=240)["status"] == "Completed"
    assert scalar(db_engine, "SELECT COUNT(*) FROM batchExecutionLog WHERE batchId = 201") == 73
    assert scalar(db_engine, "SELECT COUNT(*) FROM batchExecutionLog WHERE batchId = 201 "
                             "AND eventType = 'progress'") == 60

    # The same batch with failures injected in two stages still completes.
    fids = sorted(events.file_id(202, f"/calls/b202/call{i:05d}.wav") for i in range(1000))
    ivr_bad, llm1_bad = set(fids[:7]), set(fids[100:112])
    engines = {"ivr": ScriptedEngine("ivr", permanent=ivr_bad), "llm1": ScriptedEngine("llm1", permanent=llm1_bad)}
    with RunningTracker(s), ThreadedWorkers(s, list(STAGES), engines):
        submit(s, batch_start(202, 1000))
        row = wait_status(db_engine, 202, timeout=240)
    assert row["status"] == "Completed"
    assert (row["completedFiles"], row["failedFiles"]) == (1000 - 19, 19)
    done = {"denoise": 1000, "ivr": 993, "lid": 993, "stt": 993, "llm1": 981, "llm2": 981}
    expected = sum(1 + d // 100 + 1 for d in done.values()) + 1 + 19
    assert scalar(db_engine, "SELECT COUNT(*) FROM batchExecutionLog WHERE batchId = 202") == expected
    errors = dict(scalar_rows(db_engine, "SELECT stage_name, COUNT(*) FROM processing_logs WHERE batch_id = '202' "
                                         "AND status = 'failed' GROUP BY stage_name"))
    assert errors == {"ivr": 7, "llm1": 12}
    assert scalar(db_engine, "SELECT COUNT(*) FROM fileDistribution WHERE batchId = 202 AND status = 'Failed' "
                             "AND error LIKE 'PermanentError: %'") == 19


def test_replaying_every_topic_into_a_fresh_tracker_group_changes_nothing(settings: Settings,
                                                                        db_engine: Engine) -> None:
    engines = {"stt": ScriptedEngine("stt", permanent={events.file_id(301, "/calls/b301/call00003.wav")})}
    with RunningTracker(settings), ThreadedWorkers(settings, list(STAGES), engines):
        submit(settings, batch_start(301, 40, skip=["denoise"]))
        wait_status(db_engine, 301)
        control(settings, 301, "reaudit", fromStage="llm2")
        time.sleep(1)
        wait_status(db_engine, 301)
    before = dump(db_engine)
    with RunningTracker(settings, group=f"{settings.topic_prefix}-replay-{uuid.uuid4().hex[:6]}") as t:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not (t.consumed_total > 0 and time.monotonic() - t.last_message_at > 5):
            time.sleep(0.5)
        replayed = t.consumed_total
    after = dump(db_engine)
    assert replayed >= 40 * 6, "the fresh group must have read the whole history"
    assert before == after
    assert len(before["processing_logs"]) > 0


def test_invalid_batches_are_rejected_with_a_reason(settings: Settings, db_engine: Engine, tmp_path) -> None:
    with RunningTracker(settings):
        submit(settings, batch_start(401, 0))
        submit(settings, batch_start(402, 3, skip=["lid"]))
        submit(settings, batch_start(403, 3, skip=["karaoke"]))
        submit(settings, {**batch_start(404, 0), "manifest": str(tmp_path / "missing.csv")})
        submit(settings, batch_start(405, 2))
        wait_status(db_engine, 405, ("InProgress",))
        submit(settings, batch_start(405, 3))  # same id, different files
        for b in (401, 402, 403, 404):
            wait_status(db_engine, b, ("Rejected",))
        time.sleep(2)
    reasons = dict(scalar_rows(db_engine, "SELECT id, reason FROM batchStatus"))
    assert "no files" in reasons[401]
    assert "lid cannot be skipped" in reasons[402]
    assert "unknown stage" in reasons[403] and "karaoke" in reasons[403]
    assert "missing.csv" in reasons[404]
    # the refusal of a second submission under 405 is that submission's: batch 405's row is left alone
    assert reasons[405] is None
    assert scalar(db_engine, "SELECT status FROM batchStatus WHERE id = 405") == "InProgress"
    rejected = scalar_rows(db_engine, "SELECT batchId, details FROM batchExecutionLog WHERE eventType = 'batch_rejected'")
    assert sorted(b for b, _ in rejected) == [401, 402, 403, 404, 405]
    assert all(json.loads(d)["reason"] for _, d in rejected)
    assert "different content" in json.loads(dict(rejected)[405])["reason"]


def test_resume_after_losing_a_stage_topic_reprocesses_only_unfinished_files(settings: Settings,
                                                                             db_engine: Engine) -> None:
    """Half the files' llm2 events are lost with the topic; resume re-runs llm2 for exactly those."""
    topics = Topics(settings.topic_prefix)
    upstream = ["denoise", "ivr", "lid", "stt", "llm1"]
    n = 60
    first = ScriptedEngine("llm2", sleep_s=0.05, slow=True)
    stage_calls = {s: ScriptedEngine(s) for s in upstream}
    with RunningTracker(settings):
        with ThreadedWorkers(settings, upstream, stage_calls):
            submit(settings, batch_start(501, n))
            deadline = time.monotonic() + 90
            while scalar(db_engine, "SELECT SUM(llm1Done) FROM fileDistribution WHERE batchId = 501") != n:
                assert time.monotonic() < deadline
                time.sleep(0.3)
        with ThreadedWorkers(settings, ["llm2"], {"llm2": first}):
            deadline = time.monotonic() + 60
            while (scalar(db_engine, "SELECT SUM(llm2Done) FROM fileDistribution WHERE batchId = 501") or 0) < n // 2:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        # llm2 stopped; the tracker records what it committed last a moment later: wait for every file on
        # the done topic before taking the snapshot (a file recorded after it was counted as both)
        finished = set(counts_by_file(read_topic(settings, topics.done)))
        deadline = time.monotonic() + 60
        while scalar(db_engine, "SELECT SUM(llm2Done) FROM fileDistribution WHERE batchId = 501") != len(finished):
            assert time.monotonic() < deadline, f"the tracker did not record the {len(finished)} files llm2 finished"
            time.sleep(0.1)
        done_ids = {f for (f,) in scalar_rows(db_engine, "SELECT fileId FROM fileDistribution WHERE batchId = 501 "
                                                        "AND llm2Done = 1")}
        assert done_ids == finished
        done_before = len(done_ids)
        assert n // 2 <= done_before < n
        topic_settings = settings.model_copy(update={"topic_partitions": 3})
        delete_topics(topic_settings, [topics.stage("llm2")])
        time.sleep(2)
        ensure_topics(topic_settings)
        second = ScriptedEngine("llm2")
        with ThreadedWorkers(settings, list(STAGES), {**stage_calls, "llm2": second}):
            control(settings, 501, "resume")
            row = wait_status(db_engine, 501, ("Completed",), timeout=120)
    assert row["completedFiles"] == n
    redone = set(second.calls)
    assert len(redone) == n - done_before
    assert redone.isdisjoint(done_ids), "a file whose llm2 was done before the resume ran llm2 again"
    all_ids = {f for (f,) in scalar_rows(db_engine, "SELECT fileId FROM fileDistribution WHERE batchId = 501")}
    assert redone == all_ids - done_ids, "resume must re-run exactly the files llm2 had not finished"
    assert all(c == 1 for e in stage_calls.values() for c in e.calls.values()), "upstream stages must not re-run"
    assert scalar(db_engine, "SELECT COUNT(*) FROM processing_logs WHERE batch_id = '501' AND stage_name = 'llm2' "
                             "AND status = 'success'") == n
    assert scalar(db_engine, "SELECT COUNT(*) FROM processing_logs WHERE batch_id = '501' AND stage_name = 'stt'") == n


def test_reaudit_reruns_llm_stages_only_and_cancel_stops_work(settings: Settings, db_engine: Engine) -> None:
    with RunningTracker(settings), ThreadedWorkers(settings, list(STAGES)):
        submit(settings, batch_start(601, 10))
        wait_status(db_engine, 601)
        control(settings, 601, "reaudit", rules='{"rules": []}')
        wait_status(db_engine, 601, ("InProgress",), timeout=30)
        row = wait_status(db_engine, 601, ("Completed",))
    assert row["llm1Status"] == "Completed"
    runs = dict(scalar_rows(db_engine, "SELECT stage_name, COUNT(*) FROM processing_logs WHERE batch_id = '601' "
                                       "AND status = 'success' GROUP BY stage_name"))
    assert runs == {"denoise": 10, "ivr": 10, "lid": 10, "stt": 10, "llm1": 20, "llm2": 20}
    assert scalar(db_engine, "SELECT COUNT(*) FROM batchExecutionLog WHERE batchId = 601 AND eventType = 'batch_complete'") == 2

    slow = ScriptedEngine("lid", sleep_s=0.2, slow=True)
    with RunningTracker(settings), ThreadedWorkers(settings, list(STAGES), {"lid": slow}):
        submit(settings, batch_start(602, 40))
        deadline = time.monotonic() + 60
        while (scalar(db_engine, "SELECT SUM(lidDone) FROM fileDistribution WHERE batchId = 602") or 0) < 3:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        control(settings, 602, "cancel")
        wait_status(db_engine, 602, ("Cancelled",), timeout=30)
        time.sleep(3)
        calls_after_cancel = len(slow.calls)
        time.sleep(3)
        assert len(slow.calls) == calls_after_cancel, "a cancelled batch must not keep the engine busy"
        assert scalar(db_engine, "SELECT COUNT(*) FROM fileDistribution WHERE batchId = 602 "
                                 "AND status = 'Cancelled'") > 0
        control(settings, 601, "cancel")  # a finished batch is not undone by a cancel
        time.sleep(2)
        control(settings, 602, "resume")  # resume lifts the cancel and finishes the batch
        row = wait_status(db_engine, 602, ("Completed",), timeout=90)
    assert calls_after_cancel < 40
    assert row["completedFiles"] == 40
    row601 = wait_status(db_engine, 601)
    assert row601["status"] == "Completed" and all(row601[f"{s}Status"] == ("Completed" if s in stage_plan() else "Skipped")
                                                   for s in STAGES)


def test_batch_completion_calls_the_webhook_once(settings: Settings, db_engine: Engine) -> None:
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    received: list[dict] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server API
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/done"
        local = settings.model_copy(update={"webhook_allowed_networks": ["127.0.0.0/8"]})  # the receiver is local
        with RunningTracker(local), ThreadedWorkers(settings, list(STAGES)):
            submit(settings, batch_start(701, 12, callback=url))
            wait_status(db_engine, 701)
            deadline = time.monotonic() + 20
            while not received and time.monotonic() < deadline:
                time.sleep(0.2)
            time.sleep(1)
    finally:
        server.shutdown()
    assert received == [{"batchId": 701, "status": "Completed", "completedFiles": 12, "failedFiles": 0,
                         "totalFiles": 12, "verdicts": {"critical_fail": 0, "fail": 0, "review": 0, "pass": 12}}]
    assert scalar(db_engine, "SELECT status FROM webhookOutbox WHERE batchId = 701") == "sent"
