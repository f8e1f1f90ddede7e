"""Seed Tests 2-3, automated: `kill -9` each service while a batch is in its stage, restart it,
and prove the batch completes exactly once.

Every service is its own `python -m services.<name>` process (passthrough engines) on the real
broker and database. The victim stage sleeps PASSTHROUGH_DELAY_MS per file so the batch is
visibly in it (batchStatus.<stage>Status = InProgress, some but not all <stage>Done flags) when
it dies. The tracker is killed while `lid` is slow. Loss of topic data is covered by
tests/test_tracker.py::test_resume_after_losing_a_stage_topic_reprocesses_only_unfinished_files.
"""

from __future__ import annotations

import time

import pytest
from sqlalchemy import Engine

from cofi.devtools.checks import exactly_once_problems, rows
from cofi.devtools.pipeline import Pipeline
from cofi.settings import Settings
from tests.support.recovery import done_files, wait_completed, wait_in_stage
from tests.support.tracker import batch_start, submit

pytestmark = pytest.mark.integration

N = 90
DELAY_MS = "80"  # x 90 files = ~7 s in the victim's stage
SESSION_TIMEOUT_MS = 6000  # the broker's minimum: a killed member leaves the group this fast
# The seed's Test 2 (llm1) and Test 3 (llm2), the first stage (fed by the tracker) and the tracker run
# by default (~30 s each); ivr, lid and stt are the same code path and run with `make test-all`.
DEFAULT = ("denoise", "llm1", "llm2", "tracker")
ALL = ("denoise", "ivr", "lid", "stt", "llm1", "llm2", "tracker")
VICTIMS = [v if v in DEFAULT else pytest.param(v, marks=pytest.mark.slow) for v in ALL]


@pytest.mark.parametrize("victim", VICTIMS)
def test_kill_9_mid_stage_then_restart_completes_exactly_once(victim: str, settings: Settings, db_engine: Engine,
                                                              tmp_path) -> None:
    slow = "lid" if victim == "tracker" else victim
    s = settings.model_copy(update={"session_timeout_ms": SESSION_TIMEOUT_MS})
    batch = 7000 + ALL.index(victim)
    with Pipeline(s, tmp_path, {slow: {"PASSTHROUGH_DELAY_MS": DELAY_MS}}) as pipe:
        pipe.start()
        submit(s, batch_start(batch, N))
        wait_in_stage(db_engine, batch, slow, N, at_least=N // 4, detail=pipe.stacks_and_logs)
        done_at_kill = done_files(db_engine, batch, slow)
        pipe.kill(victim)
        assert len(done_at_kill) < N, "the kill must land while the stage is unfinished"
        if victim == "tracker":
            time.sleep(2)  # the stages go on while nobody records them
        pipe.restart(victim)
        row = wait_completed(db_engine, batch, 120, detail=pipe.stacks_and_logs)
        if victim == "tracker":  # `kill -USR1`: each service writes its threads' stacks to its log and goes on
            pipe.stacks_and_logs()
            assert all("(most recent call first)" in pipe.output(n) for n in pipe.procs), pipe.logs()
        assert pipe.exited() == {}, pipe.logs()
        codes = pipe.terminate_all()
        assert set(codes.values()) == {0}, f"SIGTERM must exit cleanly: {codes}\n{pipe.logs()}"
    assert row["status"] == "Completed"
    problems = exactly_once_problems(s, db_engine, batch, N)
    assert problems == [], "\n".join(problems)
    if victim == "tracker":
        return
    # Who did the victim's files: the killed process keeps what it committed; the restarted one
    # does at most the files that were not done at the kill (those in flight plus those not reached).
    by_worker: dict[str, set[str]] = {}
    for worker, file in rows(db_engine, "SELECT worker, file FROM processing_logs WHERE batch_id = :b "
                                        "AND stage_name = :s AND status = 'success'", b=str(batch), s=victim):
        by_worker.setdefault(worker, set()).add(file)
    old, new = pipe.worker(victim, 1), pipe.worker(victim, 2)
    assert set(by_worker) <= {old, new}, sorted(by_worker)
    assert done_at_kill <= by_worker.get(old, set()), "a file done before the kill was processed again"
    assert 1 <= len(by_worker.get(new, ())) <= N - len(done_at_kill)
