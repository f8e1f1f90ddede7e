"""The tracker on real Kafka + MariaDB, one message at a time: what counts as "the database is down" (retry
the poll, /healthz unhealthy) and what is one message's fault (set aside, the rest goes on); a BatchStart
read again after a crash keeps the files it was taken in with; stuck files are swept; a FileFailed of an
undecodable event finds its file by key; reaudit goes on past an unreadable stored event."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from cofi import db
from cofi.devtools import hostile
from cofi.devtools.checks import file_counts, read_messages, rows, scalar
from cofi.devtools.pipeline import produce, wait_for
from cofi.pipeline import events
from cofi.pipeline.codec import get_codec
from cofi.pipeline.stages import STAGES, stage
from cofi.pipeline.topics import Topics
from cofi.settings import Settings
from services.tracker.dberrors import database_unusable
from services.tracker.service import Tracker
from tests.support.harness import ThreadedWorkers
from tests.support.tracker import RunningTracker, batch_start, control, submit, wait_status

pytestmark = pytest.mark.integration

MANDATORY = [s for s in STAGES if not stage(s).optional]
OPTIONAL = [s for s in STAGES if stage(s).optional]


def _error_of(engine: Engine, sql: str) -> Exception:
    try:
        with engine.begin() as conn:
            conn.execute(text(sql))
    except Exception as exc:  # noqa: BLE001 - the error is what is tested
        return exc
    raise AssertionError(f"{sql} did not fail")


def test_only_an_unusable_database_retries_the_poll(db_engine: Engine) -> None:
    """A row the database refuses is the message's fault; a server that cannot serve is not."""
    with db_engine.begin() as conn:
        conn.execute(text("INSERT INTO batchStatus (id, status) VALUES (1, 'InProgress')"))
    refused = [_error_of(db_engine, "INSERT INTO batchStatus (id, callback) VALUES (2, REPEAT('c', 1100))"),
               _error_of(db_engine, "INSERT INTO batchStatus (id, status) VALUES (1, 'x')")]
    assert [type(e).__name__ for e in refused] == ["DataError", "IntegrityError"]
    assert not any(database_unusable(e) for e in refused)
    assert not database_unusable(UnicodeEncodeError("utf-8", "\udc80", 0, 1, "surrogates not allowed"))
    unmigrated = _error_of(db_engine, "SELECT * FROM no_such_table")
    down = create_engine("mysql+pymysql://cofi:cofi@127.0.0.1:1/cofi", connect_args={"connect_timeout": 2})
    try:
        unreachable = _error_of(down, "SELECT 1")
    finally:
        down.dispose()
    assert database_unusable(unmigrated) and database_unusable(unreachable)


def _health(tracker: Tracker) -> tuple[bool, dict[str, Any]]:
    return tracker.health_detail()


def test_an_unmigrated_database_is_retried_not_blamed_on_the_batch(settings: Settings, database_server_url: str) -> None:
    """/healthz says why while every poll is retried; once the tables exist the same batch is taken in."""
    name = f"cofi_test_{uuid.uuid4().hex[:12]}"
    server = create_engine(database_server_url)
    with server.begin() as conn:
        conn.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"))
    url = make_url(database_server_url).set(database=name).render_as_string(hide_password=False)
    s = settings.model_copy(update={"database_url": url})
    try:
        with RunningTracker(s) as tracker:
            assert _health(tracker)[0]
            submit(s, batch_start(31, 2))
            wait_for(lambda: not _health(tracker)[0], 60, "/healthz unhealthy", lambda: str(_health(tracker)))
            assert "doesn't exist" in _health(tracker)[1]["database"]
            db.migrate(url)
            engine = db.make_engine(url)
            try:
                assert wait_status(engine, 31, ("InProgress",))["totalFiles"] == 2
            finally:
                engine.dispose()
            wait_for(lambda: _health(tracker)[0], 30, "/healthz healthy again", lambda: str(_health(tracker)))
        assert read_messages(s, Topics(s.topic_prefix).dead_letter) == []  # nothing was set aside
    finally:
        with server.begin() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
        server.dispose()


def test_a_batch_start_read_again_keeps_the_files_it_was_taken_in_with(settings: Settings, db_engine: Engine,
                                                                      tmp_path: Path) -> None:
    """The tracker stops between its database commit and its Kafka commit; meanwhile the manifest changes.
    Reading the BatchStart again must send the files taken in, not the manifest's new content."""
    manifest = tmp_path / "calls.csv"
    manifest.write_text("file\na.wav\nb.wav\nc.wav\n")
    tracker = Tracker(settings, serve_metrics=False)
    real_commit, aborted, committed = tracker.sender.commit, [], []

    def commit(outputs: Any, offsets: Any, meta: Any) -> bool:
        if not aborted:
            aborted.append(list(outputs))
            return False  # as an aborted transaction: nothing visible, the poll is read again
        committed.append(True)
        return real_commit(outputs, offsets, meta)

    tracker.sender.commit = commit  # type: ignore[method-assign]
    tracker._connect()
    try:
        submit(settings, {**batch_start(41, 0), "manifest": str(manifest)})
        wait_for(lambda: tracker.poll_once() >= 0 and aborted, 60, "the first (aborted) poll")
        manifest.write_text("file\na.wav\nd.wav\n")
        wait_for(lambda: tracker.poll_once() >= 0 and committed, 60, "the poll read again and committed")
    finally:
        tracker.close()
    first = Topics(settings.topic_prefix).stage(STAGES[0])
    taken = {events.file_id(41, str(tmp_path / n)) for n in ("a.wav", "b.wav", "c.wav")}
    assert set(file_counts(settings, first)) == taken
    assert len(aborted[0]) == 3
    assert scalar(db_engine, "SELECT totalFiles FROM batchStatus WHERE id = 41") == 3
    assert scalar(db_engine, "SELECT COUNT(*) FROM batchExecutionLog WHERE batchId = 41 "
                             "AND eventType IN ('batch_rejected', 'batch_resumed')") == 0


def _completed(batch_id: int, file: str, plan: list[str], done: str) -> tuple[str, bytes]:
    """The FileEvent a stage worker sends when it completed `done` (results of every stage up to it)."""
    upto = plan[:plan.index(done) + 1]
    results = {s: ({"worker": f"{s}@t", "engine": "passthrough", "durationMs": 1, **stage(s).result.passthrough(file)}
                   if s in upto else None) for s in STAGES}
    fid = events.file_id(batch_id, file)
    return fid, get_codec().encode("FileEvent", {
        "eventId": events.new_event_id(), "batchId": batch_id, "fileId": fid, "file": file, "audioPath": file,
        "currentAudio": file, "stages": plan, "generation": 0, "metadata": {}, "emittedAt": events.now(),
        "results": results, "trades": [], "questionnaire": None, "rules": None, "emitter": events.EMITTER_STAGE,
        "completedStage": done})


def _through(s: Settings, batch_id: int, file: str, plan: list[str]) -> None:
    topics = Topics(s.topic_prefix)
    for i, done in enumerate(plan):
        nxt = topics.stage(plan[i + 1]) if i + 1 < len(plan) else topics.done
        produce(s, nxt, [_completed(batch_id, file, plan, done)])


def test_files_of_a_batch_with_no_event_for_too_long_are_swept(settings: Settings, db_engine: Engine) -> None:
    s = settings.model_copy(update={"stuck_file_after_s": 2.0, "sweep_interval_s": 0.5})
    start = batch_start(51, 3, skip=OPTIONAL)
    files = [f["file"] for f in start["files"]]
    with RunningTracker(s):
        submit(s, start)
        wait_status(db_engine, 51, ("InProgress",))
        for f in files[:2]:  # two files go through every stage; the third's event is lost
            _through(s, 51, f, MANDATORY)
        row = wait_status(db_engine, 51, timeout=60)
    assert (row["status"], row["completedFiles"], row["failedFiles"]) == ("Completed", 2, 1)
    status, failed_at, error = rows(db_engine, "SELECT status, failedStage, error FROM fileDistribution "
                                               "WHERE batchId = 51 AND file = :f", f=files[2])[0]
    assert (status, failed_at) == ("Failed", MANDATORY[0]) and error.startswith("StuckFile: no event")
    assert rows(db_engine, "SELECT stage_name, error FROM processing_logs WHERE batch_id = '51' "
                           "AND status = 'failed'") == [(MANDATORY[0], error)]


def test_failure_of_an_undecodable_event_fails_the_file_named_by_its_key(settings: Settings,
                                                                        db_engine: Engine) -> None:
    """A stage worker cannot read an event: its FileFailed has batch id -1 and the key. The tracker finds
    the file by it, so the batch finishes instead of staying InProgress; the same on the tracker's side
    for an undecodable event on a stage topic (set aside with the reason)."""
    start = batch_start(61, 3, skip=OPTIONAL)
    files = [f["file"] for f in start["files"]]
    topics, codec = Topics(settings.topic_prefix), get_codec()
    with RunningTracker(settings):
        submit(settings, start)
        wait_status(db_engine, 61, ("InProgress",))
        _through(settings, 61, files[0], MANDATORY)
        lost = events.file_failed(stage=MANDATORY[0], error_type="DecodeError", message="corrupt FileEvent body",
                                  attempts=0, worker=f"{MANDATORY[0]}@w", topic=topics.stage(MANDATORY[0]),
                                  partition=0, offset=0, raw=b"junk", event=None, file_id=events.file_id(61, files[1]))
        produce(settings, topics.failed, [(lost["fileId"], codec.encode("FileFailed", lost))])
        produce(settings, topics.stage(MANDATORY[1]), [(events.file_id(61, files[2]), hostile.garbage(7))])
        row = wait_status(db_engine, 61, timeout=60)
    assert (row["status"], row["completedFiles"], row["failedFiles"]) == ("Completed", 1, 2)
    errors = dict(rows(db_engine, "SELECT file, error FROM fileDistribution WHERE batchId = 61 AND status = 'Failed'"))
    assert errors[files[1]] == "DecodeError: corrupt FileEvent body"
    assert errors[files[2]].startswith("UnappliedEvent: undecodable FileEvent")
    assert f"{topics.stage(MANDATORY[1])}[" in errors[files[2]]
    assert scalar(db_engine, "SELECT COUNT(*) FROM processing_logs WHERE batch_id = '-1'") == 0


def test_reaudit_goes_on_past_a_file_whose_stored_event_is_unreadable(settings: Settings, db_engine: Engine) -> None:
    start = batch_start(71, 4)
    with RunningTracker(settings), ThreadedWorkers(settings, list(STAGES)):
        submit(settings, start)
        assert wait_status(db_engine, 71)["status"] == "Completed"
        damaged = start["files"][0]["file"]
        with db_engine.begin() as conn:
            conn.execute(text("UPDATE fileDistribution SET lastEvent = 'not avro' WHERE batchId = 71 AND file = :f"),
                         {"f": damaged})
        control(settings, 71, "reaudit", fromStage="llm2")
        wait_for(lambda: scalar(db_engine, "SELECT COUNT(*) FROM processing_logs WHERE batch_id = '71' "
                                           "AND stage_name = 'llm2' AND status = 'success'") == 4 + 3, 60,
                 "three files re-audited")
        row = wait_status(db_engine, 71)
    assert (row["status"], row["completedFiles"]) == ("Completed", 4)
    skipped = rows(db_engine, "SELECT file, error FROM processing_logs WHERE batch_id = '71' AND status = 'failed'")
    assert len(skipped) == 1 and skipped[0][0] == damaged and "stored event is unreadable" in skipped[0][1]


def _wait(predicate: Callable[[], Any], what: str) -> Any:
    return wait_for(predicate, 60, what)


def test_rejected_submission_is_reported_to_its_submitter_not_to_the_batch(settings: Settings,
                                                                          db_engine: Engine) -> None:
    """Two submitters pick one batch id with different content: the second is refused with its own event id
    (what `cofi submit --watch` reads), and the first batch's row is left as it was."""
    from cofi.ops.cli.readmodel import reading, submission_verdict

    first, second = batch_start(81, 2), batch_start(81, 3)
    with RunningTracker(settings):
        submit(settings, first)
        wait_status(db_engine, 81, ("InProgress",))
        submit(settings, second)
        with reading(settings) as conn:
            _wait(lambda: submission_verdict(conn, 81, second["eventId"]) is not None, "the second verdict")
            verdicts = [submission_verdict(conn, 81, e["eventId"]) for e in (first, second)]
    assert verdicts[0] == (True, "")
    assert verdicts[1] is not None and not verdicts[1][0] and "different content" in verdicts[1][1]
    assert rows(db_engine, "SELECT status, totalFiles, reason FROM batchStatus WHERE id = 81") == [("InProgress", 2, None)]
    details = json.loads(scalar(db_engine, "SELECT details FROM batchExecutionLog WHERE dedupKey = :k",
                                k=f"81:rejected:{second['eventId']}"))
    assert "different content" in details["reason"]
