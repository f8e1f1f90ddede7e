"""Backpressure (STAGE_MAX_AHEAD): a stage stops taking files while the stages after it are full, on the
real broker; and the pure parts: the gate's hysteresis, the backlog sum, who may read which offsets."""

from __future__ import annotations

import time

import pytest

from cofi.devtools.pipeline import free_port, wait_for
from cofi.pipeline.acls import Grant, grants
from cofi.pipeline.backpressure import Backlog, Downstream, Gate, files_waiting
from cofi.pipeline.stages import DONE, STAGES, next_stages
from cofi.pipeline.topics import Topics
from cofi.settings import Settings
from tests.support.harness import Collector, ThreadedWorkers, counts_by_file, file_event, message_count, produce_events


def test_gate_holds_at_the_limit_and_releases_at_half_of_it() -> None:
    gate = Gate(100)
    assert [gate.update(n) for n in (0, 99, 100, 80, 51, 50, 99, 120)] == [
        False, False, True, True, True, False, False, True]
    assert gate.update(None) is False  # cannot measure: never held on a guess


def test_gate_with_no_limit_never_holds() -> None:
    gate = Gate(0)
    assert gate.update(10**9) is False


def test_files_waiting_counts_from_the_commit_or_the_first_retained_offset() -> None:
    ends = {("t", 0): 100, ("t", 1): 50, ("t", 2): 7}
    starts = {("t", 0): 0, ("t", 1): 20, ("t", 2): 0}
    committed = {("t", 0): 90, ("t", 1): -1001, ("t", 2): 7}  # partition 1: the group never committed
    assert files_waiting(ends, starts, committed) == 10 + 30 + 0


def test_a_stage_waits_for_the_stages_it_hands_files_to_and_the_last_one_never() -> None:
    assert next_stages("denoise") == ["ivr", "lid"]  # ivr may be skipped, lid may not
    assert next_stages("stt") == ["redact", "llm1", "llm2", DONE]  # only optional ones follow
    assert next_stages(STAGES[-1]) == [DONE]
    assert Downstream(Settings(stage_max_ahead=5), "stt").next == ["redact", "llm1", "llm2"]
    assert Downstream(Settings(stage_max_ahead=5), STAGES[-1]).enabled is False  # the tracker is not counted
    assert Downstream(Settings(stage_max_ahead=5), STAGES[0]).enabled is True
    assert Downstream(Settings(stage_max_ahead=0), STAGES[0]).enabled is False


def test_the_fullest_next_stage_holds_not_the_sum() -> None:
    gate = Gate(100)
    healthy = Backlog({"redact": 0, "llm1": 60, "llm2": 70})  # 130 in flight, none of them full
    assert gate.update(healthy.fullest) is False
    assert gate.update(Backlog({"redact": 0, "llm1": 100, "llm2": 3}).fullest) is True


def test_each_stage_may_describe_exactly_the_groups_of_the_stages_it_writes_to() -> None:
    t = Topics("p")
    got = grants("p")
    for s in STAGES:
        described = {g.name for g in got if g.principal == s and g.operation == "describe" and g.resource == "group"}
        assert described == {f"p-{x}" for x in next_stages(s) if x != DONE}, s
        written = {g.name for g in got if g.principal == s and g.operation == "write" and g.resource == "topic"}
        assert {t.stage(x) for x in next_stages(s)} <= written, s  # WRITE implies DESCRIBE: their offsets
    assert Grant("llm2", "group", "p-stt", "describe") not in got  # never an earlier stage's group


def test_an_unreachable_broker_releases_the_stage_with_the_reason() -> None:
    settings = Settings(kafka_bootstrap_servers=f"127.0.0.1:{free_port()}", stage_max_ahead=1,
                        stage_ahead_check_s=0.5)
    down = Downstream(settings, "denoise")
    down.gate.held = True  # held before the broker went away
    last = down.check()
    assert last.per_stage is None and last.reason
    assert down.held is False


@pytest.mark.integration
def test_a_stage_is_held_while_the_next_stages_are_full_and_goes_on_when_they_drain(settings: Settings) -> None:
    s = settings.model_copy(update={"stage_max_ahead": 40, "stage_ahead_check_s": 0.2, "commit_every_messages": 5})
    topics = Topics(s.topic_prefix)
    plan = ["denoise", "ivr", "lid"]
    evs = [file_event(i, plan) for i in range(600)]
    produce_events(s, "denoise", evs)
    out = Collector(s, [topics.done, topics.failed])
    with ThreadedWorkers(s, ["denoise"]) as first:
        worker = first.workers[0]
        wait_for(lambda: worker.downstream.held, 60, "denoise held", lambda: str(worker.downstream.last))
        time.sleep(1.0)  # a micro-batch that was running when it was held commits
        held_at = message_count(s, topics.stage("ivr"))
        time.sleep(2.0)
        assert message_count(s, topics.stage("ivr")) == held_at < 600  # nothing new while held
        ok, detail = worker.health_detail()
        # Held means the backlog is above the release mark (half the limit); it may be a few files under
        # the limit itself: files committed while a measurement runs count as waiting (an upper bound).
        assert detail["held"] is True and detail["waitingNext"]["ivr"] > s.stage_max_ahead // 2, detail
        assert worker.metrics.held.labels("denoise")._value.get() == 1
        with ThreadedWorkers(s, ["ivr", "lid"]):  # the stages after it drain: it goes on, to the last file
            assert out.wait(lambda: len(out.on(topics.done)) >= 600, 120), len(out.on(topics.done))
            time.sleep(1.0)
        assert out.wait(lambda: not worker.downstream.held, 10)
    out.stop()
    assert counts_by_file(out.on(topics.done)) == {e["fileId"]: 1 for e in evs}
    assert out.on(topics.failed) == []


def test_the_fullest_next_stage_is_named() -> None:
    assert Backlog({"stt": 1902, "llm1": 12}).busiest() == "stt (1,902 files)"
    assert Backlog(None, reason="down").busiest() == "" and Backlog(None).fullest is None
    assert Backlog({}).fullest == 0


def test_files_sent_since_the_last_measurement_count_as_waiting() -> None:
    down = Downstream(Settings(stage_max_ahead=100), "denoise")
    down.last = Backlog({"ivr": 40, "lid": 0})
    down.sent(30)
    assert not down.held  # about 70 wait
    down.sent(30)
    assert down.held  # about 100: held before the next measurement says so


def test_a_failed_measurement_is_logged_once_and_its_end_too(caplog: pytest.LogCaptureFixture) -> None:
    """An operator reading the log sees the failure and that it passed, not one line per check."""
    down = Downstream(Settings(stage_max_ahead=100), "denoise")
    answers: list[Exception | dict[str, int]] = [TimeoutError("metadata timed out"), TimeoutError("again"),
                                                 {"ivr": 3, "lid": 0}, {"ivr": 4, "lid": 0}]

    def measure() -> dict[str, int]:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    down._measure = measure  # type: ignore[method-assign]
    with caplog.at_level("INFO", logger="cofi.pipeline.backpressure"):
        for _ in range(4):
            down.check()
    said = [r.getMessage() for r in caplog.records]
    assert said == ["denoise: cannot read the backlog of the next stages (metadata timed out); not held meanwhile",
                    "denoise: the backlog of the next stages is readable again"]
    assert down.last.fullest == 4
