"""The tracker's per-file state machine on its own (no Kafka, no database): each transition, events
written before FileEvent v3, and the property the pipeline rests on: any interleaving and duplication
of one file's events ends in the same rows."""

from __future__ import annotations

from dataclasses import asdict, replace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from cofi.pipeline.events import EMITTER_STAGE, EMITTER_TRACKER
from cofi.pipeline.stages import DONE, OPTIONAL_STAGES, REGISTRY, STAGES, empty_results, stage
from cofi.pipeline.topics import next_stage
from services.tracker.filestate import (
    COMPLETED,
    FAILED,
    IN_PROGRESS,
    FileRow,
    LogRules,
    Writes,
    arrival,
    charged_stage,
    new_row,
    on_file_event,
    on_file_failed,
    on_reaudit,
    on_resume,
)

BATCH, FID, FILE = 7, "f0001", "/calls/a.wav"


def result(name: str) -> dict[str, Any]:
    """The stage's result as a worker writes it (passthrough placeholders, a worker per stage)."""
    return {"worker": f"{name}@w1", "engine": "passthrough", "durationMs": 40 + stage(name).order,
            **stage(name).result.passthrough("/calls/a.wav")}


def history(plan: list[str], fail_at: int | None = None, *, legacy: bool = False) -> list[tuple[str, dict, str]]:
    """Every event one file causes in one generation, as (kind, record, topic stage), in pipeline order:
    the tracker's emission to the first stage, each stage's output, and a failure at `plan[fail_at]`."""
    results = empty_results()
    out: list[tuple[str, dict, str]] = []
    base = {"batchId": BATCH, "fileId": FID, "file": FILE, "stages": plan, "generation": 0}
    first = {**base, "eventId": f"trk-{FID}-g0-{plan[0]}", "results": dict(results)}
    if not legacy:
        first.update(emitter=EMITTER_TRACKER, completedStage=None)
    out.append(("file", first, plan[0]))
    for i, name in enumerate(plan):
        if i == fail_at:
            out.append(("failed", {**base, "eventId": f"fail-{name}", "stage": name, "errorType": "PermanentError",
                                   "message": "not a RIFF file", "worker": f"{name}@w1", "durationMs": 5,
                                   "attempts": 1}, name))
            break
        results = {**results, name: result(name)}
        ev = {**base, "eventId": f"out-{name}", "results": dict(results)}
        if not legacy:
            ev.update(emitter=EMITTER_STAGE, completedStage=name)
        out.append(("file", ev, next_stage(plan, name)))
    return out


DEFAULT_RULES = LogRules()


def replay(events: list[tuple[str, dict, str]], rules: LogRules = DEFAULT_RULES) -> dict[str, Any]:
    """Apply events in the given order from intake, merging writes as the database does."""
    row = new_row(BATCH, FID, FILE, events[0][2], {})
    plogs: dict[str, dict] = {}  # processing_logs: INSERT IGNORE by eventId
    xlogs: dict[str, tuple] = {}  # batchExecutionLog: INSERT IGNORE by dedupKey
    audit: dict[str, Any] = {}  # auditResult: COALESCE(new, old) per column
    for kind, record, topic_stage in events:
        if kind == "failed":
            row, w = on_file_failed(row, record)
        else:
            row, w = on_file_event(row, record, record["eventId"].encode(), topic_stage, rules)
        for p in w.processing_logs:
            plogs.setdefault(p["eventId"], p)
        for x in w.exec_logs:
            xlogs.setdefault(x.dedupKey, (x.stage, x.eventType, x.file, x.details))
        audit.update({k: v for k, v in (w.audit or {}).items() if v is not None})
    state = asdict(row)
    state.pop("dirty")
    return {"row": state, "processing_logs": plogs, "exec_logs": xlogs, "audit": audit}


# ---- one transition at a time ---------------------------------------------------------------------

def test_arrival_is_explicit_in_v3_events_and_inferred_for_older_ones() -> None:
    plan = ["lid", "stt", "llm2"]
    (_, first, t0), (_, lid_out, t1), (_, stt_out, t2), (_, llm2_out, t3) = history(plan)
    assert (arrival(first, t0).entered, arrival(first, t0).completed) == ("lid", None)
    assert (arrival(lid_out, t1).entered, arrival(lid_out, t1).completed) == ("stt", "lid")
    assert (arrival(stt_out, t2).entered, arrival(stt_out, t2).completed) == ("llm2", "stt")
    assert (arrival(llm2_out, t3).entered, arrival(llm2_out, t3).completed) == (DONE, "llm2")
    # the explicit field wins over the topic: a stage output re-read from another topic still names its stage
    assert arrival(stt_out, "llm2").completed == "stt"
    legacy = history(plan, legacy=True)
    assert "emitter" not in legacy[1][1]
    assert [arrival(r, t).completed for _, r, t in legacy] == [None, "lid", "stt", "llm2"]
    assert arrival({**legacy[1][1], "eventId": "trk-f0001-g1-stt"}, "stt").completed is None  # old tracker id


def test_stage_output_completes_the_stage_once() -> None:
    plan = ["lid", "stt"]
    events = history(plan)
    row = new_row(BATCH, FID, FILE, "lid", {})
    row, w = on_file_event(row, events[1][1], b"raw-lid", "stt", LogRules(file_start=True, per_file=True))
    assert row.flags["lid"] == 1 and row.flags["stt"] == 0
    assert (row.status, row.currentStage, row.lastEvent, row.worker) == (IN_PROGRESS, "stt", b"raw-lid", "lid@w1")
    [plog] = w.processing_logs
    assert (plog["stage_name"], plog["status"], plog["duration"], plog["worker"]) == ("lid", "success", 0.042, "lid@w1")
    assert [(x.stage, x.eventType) for x in w.exec_logs] == [("stt", "file_start"), ("lid", "file_complete")]
    assert w.audit == {"batchId": BATCH, "fileId": FID, "file": FILE, "language": "und", "languageProbability": 0.0}
    assert w.entered == "stt"
    again, w2 = on_file_event(row, events[1][1], b"raw-lid", "stt", LogRules(file_start=False, per_file=False))
    assert again.flags == row.flags and w2.processing_logs == [] and w2.exec_logs == [] and w2.audit is None


def test_a_batch_that_redacts_never_stores_the_original_transcript() -> None:
    """stt's text is no auditResult column of a plan with redact, in whatever order the events are read."""
    for plan in (["stt", "redact", "llm1"], ["stt", "llm1"]):
        events = history(plan)
        for _, record, _ in events:
            res = record["results"]
            if res.get("stt"):
                res["stt"] = {**res["stt"], "text": "customer: my account is 4567"}
            if res.get("redact"):
                res["redact"] = {**res["redact"], "text": "customer: my account is [ACCOUNT_NUMBER_1]"}
        _, w = on_file_event(new_row(BATCH, FID, FILE, "stt", {}), events[1][1], b"x", plan[1], DEFAULT_RULES)
        assert ("transcript" in w.audit) == ("redact" not in plan) and "speech" in w.audit
        for order in (events, [events[0], events[2], events[1], *events[3:]], events[::-1]):
            assert replay(order)["audit"]["transcript"].endswith("[ACCOUNT_NUMBER_1]" if "redact" in plan else "4567")


def test_logging_settings_shape_the_rows() -> None:
    events = history(["lid", "stt"])
    _, w = on_file_event(new_row(BATCH, FID, FILE, "lid", {}), events[1][1], b"x", "stt",
                         LogRules(file_start=False, per_file=False))
    assert w.exec_logs == [] and len(w.processing_logs) == 1


def test_a_failure_stands_against_earlier_stages_read_after_it() -> None:
    plan = ["lid", "stt", "llm1"]
    events = history(plan, fail_at=2)
    row = new_row(BATCH, FID, FILE, "lid", {})
    row, w = on_file_failed(row, events[-1][1])
    assert (row.status, row.failedStage, row.error) == (FAILED, "llm1", "PermanentError: not a RIFF file")
    assert [x.eventType for x in w.exec_logs] == ["file_error"] and w.processing_logs[0]["status"] == "failed"
    for _kind, record, topic_stage in events[:-1]:
        row, _ = on_file_event(row, record, b"x", topic_stage, LogRules())
    assert (row.status, row.failedStage, row.worker) == (FAILED, "llm1", "llm1@w1")
    assert row.flags == {**dict.fromkeys(STAGES, 0), "lid": 1, "stt": 1}
    same, w = on_file_failed(row, events[-1][1])
    assert same is row and w == Writes()


def test_done_event_completes_the_file() -> None:
    state = replay(history(["lid", "stt"]))
    assert (state["row"]["status"], state["row"]["currentStage"]) == (COMPLETED, DONE)
    assert state["row"]["worker"] == "stt@w1"


def test_resume_sends_an_unfinished_file_to_its_first_undone_stage() -> None:
    row = FileRow(BATCH, FID, FILE, {**dict.fromkeys(STAGES, 0), "denoise": 1, "ivr": 1}, status=FAILED,
                  failedStage="lid", error="x", generation=2)
    resumed, target = on_resume(row, list(STAGES), bump=True)
    assert target == "lid"
    assert (resumed.status, resumed.failedStage, resumed.error, resumed.generation) == (IN_PROGRESS, None, None, 3)
    assert on_resume(row, list(STAGES), bump=False)[0].generation == 2  # a replayed resume bumps nothing
    done = FileRow(BATCH, FID, FILE, dict.fromkeys(STAGES, 1), status=IN_PROGRESS)
    finished, target = on_resume(done, list(STAGES), bump=True)
    assert target is None and finished.status == COMPLETED and finished.generation == 0


def test_reaudit_clears_the_reaudited_flags_only() -> None:
    reaudit = [s.name for s in REGISTRY if s.reaudit]
    row = FileRow(BATCH, FID, FILE, dict.fromkeys(STAGES, 1), status=COMPLETED, currentStage=DONE)
    again, target = on_reaudit(row, reaudit, bump=True)
    assert target == reaudit[0] and again.currentStage == reaudit[0] and again.generation == 1
    assert again.flags == {s: (0 if s in reaudit else 1) for s in STAGES}


# ---- the property ---------------------------------------------------------------------------------

@st.composite
def file_runs(draw: st.DrawFn) -> tuple[list[tuple[str, dict, str]], list[tuple[str, dict, str]], LogRules, bool]:
    skip = draw(st.sets(st.sampled_from(sorted(OPTIONAL_STAGES))))
    plan = [s for s in STAGES if s not in skip]
    fail_at = draw(st.none() | st.integers(0, len(plan) - 1))
    legacy = draw(st.booleans())
    events = history(plan, fail_at, legacy=legacy)
    extra = draw(st.lists(st.sampled_from(range(len(events))), max_size=len(events)))
    order = draw(st.permutations([*range(len(events)), *extra]))
    rules = LogRules(file_start=draw(st.booleans()), per_file=draw(st.booleans()))
    return events, [events[i] for i in order], rules, legacy


@settings(max_examples=300, deadline=None)
@given(file_runs())
def test_any_interleaving_and_duplication_of_a_files_events_gives_the_same_rows(run) -> None:
    in_order, shuffled, rules, legacy = run
    expected = replay(in_order, rules)
    assert replay(shuffled, rules) == expected
    # ... and the rows are the right ones
    row, plan = expected["row"], in_order[0][1]["stages"]
    failure = next((r for k, r, _ in in_order if k == "failed"), None)
    done = [s for s in plan if failure is None or plan.index(s) < plan.index(failure["stage"])]
    assert row["flags"] == {s: int(s in done) for s in STAGES}
    assert row["status"] == (FAILED if failure else COMPLETED)
    assert row["currentStage"] == (failure["stage"] if failure else DONE)
    assert sorted(p["stage_name"] for p in expected["processing_logs"].values()) == sorted(
        [*done, *([failure["stage"]] if failure else [])])
    assert ("verdict" in expected["audit"]) == ("llm2" in done)


@settings(max_examples=50, deadline=None)
@given(file_runs())
def test_events_written_before_v3_reach_the_same_rows_as_v3_events(run) -> None:
    in_order, _, rules, legacy = run
    plan = in_order[0][1]["stages"]
    failure = next((r for k, r, _ in in_order if k == "failed"), None)
    fail_at = plan.index(failure["stage"]) if failure else None
    v3, old = replay(history(plan, fail_at), rules), replay(history(plan, fail_at, legacy=True), rules)
    assert old == v3


def test_a_failure_known_by_key_is_charged_where_the_file_is_known_to_be() -> None:
    """An unreadable event did not set the done flags of the stages it says were completed: a failure it
    names at a later stage is charged to the file's current stage, so the batch's counts still add up."""
    row = new_row(1, "f", "a.wav", "lid", {})
    assert charged_stage(row, "stt") == "lid"
    assert charged_stage(row, "lid") == "lid"
    assert charged_stage(replace(row, currentStage="llm1"), "stt") == "stt"
    assert charged_stage(replace(row, currentStage=DONE), None) == STAGES[-1]
