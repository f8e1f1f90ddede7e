"""The stage worker's last lines of defence: engine calls past their deadline are abandoned without costing
the stage a thread or its exit, and a file that kills its worker outright fails after MAX_WORKER_CRASHES
deaths instead of killing every worker that takes it."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from concurrent.futures import Future
from pathlib import Path

import pytest
from confluent_kafka import Message
from sqlalchemy import Engine

from cofi.devtools.checks import rows
from cofi.devtools.hostile import HostileEngine
from cofi.devtools.pipeline import REPO, Pipeline, wait_for
from cofi.pipeline.enginepool import CrashJournal, EnginePool
from cofi.pipeline.inflight import Handled, InFlight, split_committable
from cofi.pipeline.stages import STAGES, stage
from cofi.pipeline.topics import Topics
from cofi.settings import Settings
from tests.support.harness import Collector, ThreadedWorkers, counts_by_file, decode_all, file_event, produce_events
from tests.support.tracker import batch_start, submit, wait_status


def test_an_abandoned_call_gives_its_place_to_the_next_file() -> None:
    pool = EnginePool(1, "t")
    release = threading.Event()
    hung = pool.submit(release.wait)
    wait_for(lambda: pool.running_for(hung) is not None, 10, "the hung call started")
    queued = pool.submit(lambda: "next file")
    assert pool.abandon_overdue([hung, queued], 0.0001, skip=set()) == [0]
    assert queued.result(timeout=10) == "next file"  # it did not wait for the hung call
    assert pool.abandoned == 1 and pool.hung() is None
    release.set()
    assert hung.result(timeout=10) is True  # finished late: its thread ends, the pool keeps one
    wait_for(lambda: pool.live == 1, 10, "the abandoned call's thread ended", lambda: str(pool.live))
    pool.shutdown()


def test_files_queued_behind_a_hung_call_still_run() -> None:
    """Submitted in one burst: the file behind the hung one gets a thread of its own (and the place the
    hung call gives back at its deadline)."""
    pool = EnginePool(1, "t")
    assert pool.submit(lambda: "warm").result(timeout=10) == "warm"  # an idle thread is there
    wait_for(lambda: pool.idle == 1, 10, "the thread idle again")
    release = threading.Event()
    hung, behind = pool.submit(release.wait), pool.submit(lambda: "behind")
    wait_for(lambda: pool.running_for(hung) is not None, 10, "the hung call started")
    pool.abandon(hung)
    assert behind.result(timeout=10) == "behind"
    release.set()
    pool.shutdown()


def test_a_call_waiting_to_retry_gives_its_place_to_the_next_file() -> None:
    pool = EnginePool(1, "t")
    release, order = threading.Event(), []

    def retrying() -> str:
        order.append("first attempt")
        with pool.waiting():
            release.wait(30)
        order.append("second attempt")
        return "retried"

    first = pool.submit(retrying)
    wait_for(lambda: order, 10, "the first attempt")
    other = pool.submit(lambda: order.append("other file") or "other")
    assert other.result(timeout=10) == "other"  # ran while the first one waited
    release.set()
    assert first.result(timeout=10) == "retried"
    assert order == ["first attempt", "other file", "second attempt"]
    pool.shutdown()


def test_hung_calls_never_keep_the_process_from_exiting() -> None:
    code = ("import threading, time\nfrom cofi.pipeline.enginepool import EnginePool\n"
            "p = EnginePool(2, 't')\nfs = [p.submit(threading.Event().wait) for _ in range(5)]\n"
            "for _ in range(4):\n    time.sleep(0.3)\n    [p.abandon(f) for f in fs]\np.shutdown()\nprint(p.hung())\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "engine calls hung past their deadline" in done.stdout  # /healthz asks for a restart


def _item(partition: int, offset: int, done: bool) -> InFlight:
    msg = Message(topic="t", partition=partition, offset=offset, key=b"k", value=b"v")
    fut: Future[Handled] = Future()
    if done:
        fut.set_result(Handled(msg))
    return InFlight(msg, fut)


def test_only_each_partitions_finished_prefix_is_committed() -> None:
    """Offsets commit in order: behind an unfinished file its partition waits; other partitions go."""
    items = [_item(0, 10, True), _item(0, 11, False), _item(0, 12, True), _item(1, 5, True), _item(1, 6, True),
             _item(2, 7, False)]
    ready, carried = split_committable(items)
    assert [(i.msg.partition(), i.msg.offset()) for i in ready] == [(0, 10), (1, 5), (1, 6)]
    assert [(i.msg.partition(), i.msg.offset()) for i in carried] == [(0, 11), (0, 12), (2, 7)]
    items[1].overdue = Handled(items[1].msg, outcome="failed")  # failed at its deadline: done
    assert len(split_committable(items[:3])[0]) == 3


def test_a_hung_file_does_not_hold_back_the_files_finished_beside_it(settings: Settings) -> None:
    """One micro-batch of 20 files, one of them hangs (its deadline an hour away): the 19 others are committed
    and sent on, the hung one is carried, the worker keeps running."""
    s = settings.model_copy(update={"commit_every_messages": 50, "stage_concurrency": 2, "carry_after_s": 0.5,
                                    "lid_file_deadline_s": 3600.0, "shutdown_grace_s": 1.0})
    topics = Topics(s.topic_prefix)
    evs = [file_event(i, ["lid", "stt"]) for i in range(19)]
    evs.append(file_event(19, ["lid", "stt"], file="call00019-hang.wav"))
    engine = HostileEngine("lid", s, slow=False)
    out = Collector(s, [topics.stage("stt"), topics.failed])
    try:
        with ThreadedWorkers(s, ["lid"], {"lid": engine}) as workers:
            produce_events(s, "lid", evs)
            assert out.wait(lambda: len(out.on(topics.stage("stt"))) >= 19, 60), len(out.on(topics.stage("stt")))
            assert set(counts_by_file(out.on(topics.stage("stt")))) == {e["fileId"] for e in evs[:19]}
            assert out.on(topics.failed) == [] and workers.threads[0].is_alive()
    finally:
        engine.never.set()
        out.stop()
    assert decode_all("FileFailed", out.on(topics.failed)) == []


def test_crash_journal_counts_starts_that_never_ended(tmp_path: Path) -> None:
    journal = CrashJournal(tmp_path, "lid")
    assert journal.begin("f1", 0) == 0  # first start
    assert journal.begin("f1", 0) == 1  # the process died before end(): one death
    assert journal.begin("f1", 1) == 0  # a resumed file (next generation) starts afresh
    journal.end("f1", 0)
    assert journal.begin("f1", 0) == 0


@pytest.mark.integration
def test_a_file_that_kills_its_worker_fails_after_two_deaths(settings: Settings, db_engine: Engine,
                                                              tmp_path: Path) -> None:
    """`die.wav` makes the lid process exit at once (as the OOM killer would). Restarted, the next lid process
    takes it again and dies; the third fails it (WorkerCrashed) and the batch finishes with the others."""
    plan = [s for s in STAGES if not stage(s).optional]
    start = {**batch_start(91, 0, skip=[s for s in STAGES if s not in plan]),
             "files": [{"file": f"/calls/{n}.wav", "metadata": {}} for n in ("die", "ok1", "ok2")]}
    s = settings.model_copy(update={"session_timeout_ms": 6000})
    deaths = 0
    with Pipeline(s, tmp_path, {"lid": {"LID_ENGINE": "hostile"}}, modules={"lid": "cofi.devtools.hostile"}) as pipe:
        pipe.start()
        submit(s, start)
        while deaths < 2:
            wait_for(lambda: "lid" in pipe.exited(), 90, f"lid death {deaths + 1}", pipe.logs)
            assert pipe.exited() == {"lid": 137}
            deaths += 1
            pipe.kill("lid")  # reap it
            pipe.restart("lid")
        row = wait_status(db_engine, 91, timeout=120)
        assert pipe.exited() == {}, pipe.logs()
    assert (row["status"], row["completedFiles"], row["failedFiles"]) == ("Completed", 2, 1)
    (status, failed_at, error), = rows(db_engine, "SELECT status, failedStage, error FROM fileDistribution "
                                                  "WHERE batchId = 91 AND file = '/calls/die.wav'")
    assert (status, failed_at) == ("Failed", "lid")
    assert error.startswith("WorkerCrashed: the lid worker died 2 times while processing this file")


def test_a_failure_keeps_a_bounded_summary_of_a_large_original() -> None:
    """A FileFailed must never be too large to send: past 64 KiB the original is summarised (it stays in its
    topic at originalTopic/Partition/Offset)."""
    from cofi.pipeline import events
    from cofi.pipeline.codec import get_codec

    big = b"\xc3\x01" + bytes(200_000)
    failed = events.file_failed(stage="lid", error_type="EventTooLarge", message="m", attempts=1, worker="w",
                                topic="t.stage.lid", partition=2, offset=9, raw=big, event={
                                    "batchId": 5, "fileId": "f", "file": "/c/a.wav", "stages": ["lid"]})
    summary = json.loads(failed["originalEvent"])
    assert summary["bytes"] == len(big) and summary["fileId"] == "f" and len(summary["sha256"]) == 64
    assert len(get_codec().encode("FileFailed", failed)) < 2_000
    small = events.file_failed(stage="lid", error_type="E", message="m", attempts=1, worker="w", topic="t",
                               partition=0, offset=0, raw=b"\xc3\x01small", event=None, file_id="k")
    assert small["originalEvent"] == b"\xc3\x01small" and (small["batchId"], small["fileId"]) == (-1, "k")
