"""The stage worker's last lines of defence: engine calls past their deadline are abandoned without costing
the stage a thread or its exit, and a file that kills its worker outright fails after MAX_WORKER_CRASHES
deaths instead of killing every worker that takes it."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sqlalchemy import Engine

from cofi.devtools.checks import rows
from cofi.devtools.pipeline import REPO, Pipeline, wait_for
from cofi.pipeline.enginepool import CrashJournal, EnginePool
from cofi.pipeline.stages import STAGES, stage
from cofi.settings import Settings
from tests.support.tracker import batch_start, submit, wait_status


def test_an_abandoned_call_gives_its_place_to_a_fresh_thread() -> None:
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
    wait_for(lambda: pool.live == 1, 10, "one live thread", lambda: str(pool.live))
    pool.shutdown()


def test_hung_calls_never_keep_the_process_from_exiting() -> None:
    code = ("import threading, time\nfrom cofi.pipeline.enginepool import EnginePool\n"
            "p = EnginePool(2, 't')\nfs = [p.submit(threading.Event().wait) for _ in range(5)]\n"
            "time.sleep(0.5)\n[p.abandon(f) for f in fs]\np.shutdown()\nprint(p.hung())\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "engine calls hung past their deadline" in done.stdout  # /healthz asks for a restart


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
