"""Hostile inputs against the whole pipeline as processes (real broker, real database): each one ends with a
clear reason in processing_logs or on its batch's row, while a good batch running at the same time completes
exactly once, and the tracker and every stage process keep running (the same pids from start to end).

One pipeline run (the `scenario` fixture) carries every case; each test below checks one case's outcome.
The lid stage runs the hostile engine (`cofi.devtools.hostile`: file names ask for a misbehaviour), denoise
runs the real spectral engine (for the audio cases), every other stage is passthrough.
"""

from __future__ import annotations

import json
import math
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from sqlalchemy import Engine

from cofi.db import make_engine
from cofi.devtools import hostile
from cofi.devtools.checks import exactly_once_problems, read_messages, rows, scalar
from cofi.devtools.pipeline import Pipeline, produce, wait_for
from cofi.ops.admin import delete_topics, ensure_topics
from cofi.pipeline import events
from cofi.pipeline.codec import get_codec
from cofi.pipeline.topics import Topics, stage_plan
from cofi.settings import Settings
from tests.support.servers import fresh_database
from tests.support.tracker import FINAL, batch_start, submit, wait_status

pytestmark = pytest.mark.integration

MIB = 1024 * 1024
MAX_EVENT = 2 * MIB
DEADLINE_S = 20  # the hostile messages for two hung files must reach the tracker before it
GOOD, H1, H2, H5, H6, TWINS = 5000, 5001, 5002, 5005, 5006, 9006
N_GOOD = 60
NO_DENOISE = [s for s in stage_plan() if s != "denoise"]
H1_FILES = ["ok-1.wav", "hang.wav", "hang-dberr.wav", "hang-corrupt.wav", "bug.wav", "badresult.wav",
            "noencode.wav", "huge.wav", "[/x] bug call.wav"]
TWIN_NAMES = ["A.wav", "a.wav", "José.wav", "Jose.wav", "x.wav", "x.wav "]
REJECTED = {9001: "callback URL is 1100 characters long, over 1024",
            9003: "undecodable BatchStart: not an Avro single-object message",
            9004: "written by a newer cofi than this tracker",
            9005: "is not valid UTF-8",
            9007: "quantity is nan, not a finite number",
            9008: "has no time zone",
            9009: "over MAX_EVENT_BYTES=2,097,152",
            9010: "NUL",
            -7: "batch id -7 must be a positive 64-bit integer"}


@dataclass
class Scenario:
    settings: Settings
    db: Engine
    pids_before: dict[str, int]
    pids_after: dict[str, int]
    exited: dict[str, int]
    codes: dict[str, int] = field(default_factory=dict)
    dead_letters: list[dict[str, Any]] = field(default_factory=list)


def _files(batch_id: int, names: list[str]) -> list[dict[str, Any]]:
    return [{"file": f"/calls/h{batch_id}/{n}", "metadata": {}} for n in names]


def _start(batch_id: int, files: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {**batch_start(batch_id, 0), "files": files, **extra}


def _trade(**extra: Any) -> dict[str, Any]:
    return {"tradeId": "T1", "clientCode": "C1", "symbol": "ACME", "side": "buy", "quantity": 1.0, "price": 2.0,
            "tradeTime": "2026-01-15T09:00:00+00:00", "phone": None, **extra}


def _audio(root: Path) -> list[dict[str, Any]]:
    """The audio cases: a 192 kHz file, a 6-channel one, one over MAX_AUDIO_BYTES (1 MB here), a good one."""
    root.mkdir(parents=True, exist_ok=True)
    sf.write(root / "rate192k.wav", np.zeros((19200, 1), dtype=np.int16), 192_000, subtype="PCM_16")
    sf.write(root / "six-channels.wav", np.zeros((16000, 6), dtype=np.float32), 16000)
    sf.write(root / "big.wav", np.zeros((16000 * 40, 1), dtype=np.float32), 16000, subtype="FLOAT")  # 2.5 MB
    t = np.arange(16000) / 16000
    sf.write(root / "ok.wav", 0.1 * np.sin(2 * np.pi * 440 * t), 16000)
    return [{"file": str(root / n), "metadata": {}} for n in ("rate192k.wav", "six-channels.wav", "big.wav", "ok.wav")]


def _not_utf8_dir(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "fine.wav").write_bytes(b"RIFF")
    with open(os.path.join(os.fsencode(root), b"caf\xe9.wav"), "wb") as f:
        f.write(b"RIFF")
    return root


def _at_lid(db: Engine, file: str) -> bool:
    return scalar(db, "SELECT currentStage FROM fileDistribution WHERE batchId = :b AND file = :f",
                  b=H1, f=f"/calls/h{H1}/{file}") == "lid"


def _hostile_inputs(s: Settings, db: Engine, tmp: Path) -> None:
    codec, topics = get_codec(), Topics(s.topic_prefix)
    submit(s, _start(H1, _files(H1, H1_FILES), skip=["denoise"]))
    submit(s, batch_start(H2, 3, skip=["denoise"]))
    submit(s, _start(H5, _audio(tmp / "audio")))
    submit(s, _start(H6, _files(H6, ["q1.wav", "q2.wav", "q3.wav"]), skip=["denoise"],
                     questionnaire=json.dumps({"questions": [], "padding": "q" * (MIB + 200_000)})))
    submit(s, _start(TWINS, _files(TWINS, TWIN_NAMES), skip=["denoise"]))
    submit(s, {**batch_start(9001, 2), "callback": "http://127.0.0.1/" + "c" * (1100 - 17)})
    submit(s, {**batch_start(9005, 0), "manifest": str(_not_utf8_dir(tmp / "not-utf8"))})
    submit(s, {**batch_start(9007, 2), "trades": [_trade(quantity=math.nan)]})
    submit(s, {**batch_start(9008, 2), "trades": [_trade(tradeTime="2026-01-15T09:00:00")]})
    submit(s, {**batch_start(9009, 2), "rules": "# " + "r" * (MAX_EVENT + 100_000) + "\n[]\n"})  # valid (empty) rules, too large
    submit(s, _start(9010, [{"file": "/calls/nul\x00.wav", "metadata": {}}]))
    submit(s, batch_start(-7, 1))
    produce(s, topics.batch_start, [("9003", hostile.garbage(1)), ("9004", hostile.from_the_future(2)),
                                    (None, hostile.garbage(3))])
    wait_status(db, H2, ("InProgress", "Completed"))
    produce(s, topics.batch_control, [(str(H2), hostile.garbage(4)), ("777", hostile.garbage(5))])
    # Two hung files get hostile messages while they wait at lid: a FileFailed the database refuses,
    # and an undecodable event on the done topic keyed by the file's id.
    wait_for(lambda: _at_lid(db, "hang-dberr.wav") and _at_lid(db, "hang-corrupt.wav"), 90, "hung files at lid")
    produce(s, topics.failed, [(events.file_id(H1, f"/calls/h{H1}/hang-dberr.wav"),
                                hostile.refused_failure(codec, H1, f"/calls/h{H1}/hang-dberr.wav", "lid"))])
    produce(s, topics.done, [(events.file_id(H1, f"/calls/h{H1}/hang-corrupt.wav"), hostile.garbage(6))])


@pytest.fixture(scope="module")
def scenario(kafka_bootstrap: str, database_server_url: str, tmp_path_factory: pytest.TempPathFactory,
             ) -> Iterator[Scenario]:
    tmp = tmp_path_factory.mktemp("hostile")
    databases = fresh_database(database_server_url)
    db_url = next(databases)
    s = Settings(kafka_bootstrap_servers=kafka_bootstrap, database_url=db_url, topic_prefix=f"t{uuid.uuid4().hex[:10]}",
                 topic_partitions=3, topic_replication=1, artifact_root=tmp / "artifacts", metrics_port=0,
                 commit_every_messages=10, commit_every_ms=100, retry_backoff_ms=50, session_timeout_ms=6000,
                 max_event_bytes=MAX_EVENT)
    ensure_topics(s)
    db = make_engine(db_url)
    env = {"lid": {"LID_ENGINE": "hostile", "LID_FILE_DEADLINE_S": str(DEADLINE_S), "STAGE_CONCURRENCY": "4"},
           "denoise": {"DENOISE_ENGINE": "spectral", "MAX_AUDIO_BYTES": str(MIB)}}
    try:
        with Pipeline(s, tmp, env, modules={"lid": "cofi.devtools.hostile"}, MAX_EVENT_BYTES=str(MAX_EVENT)) as pipe:
            pipe.start()
            pipe.wait_started()
            before = pipe.pids()
            submit(s, batch_start(GOOD, N_GOOD, skip=["denoise"]))
            _hostile_inputs(s, db, tmp)
            for b in (GOOD, H1, H2, H5, H6, TWINS, *REJECTED):
                wait_status(db, b, FINAL, timeout=240)
            sc = Scenario(s, db, before, pipe.pids(), pipe.exited())
            sc.codes = pipe.terminate_all()
            sc.output = pipe.logs()  # type: ignore[attr-defined]
        sc.dead_letters = [{"key": m.key(), "headers": {k: v.decode() for k, v in m.headers() or []},
                            "bytes": len(m.value())} for m in read_messages(s, Topics(s.topic_prefix).dead_letter)]
        yield sc
    finally:
        db.dispose()
        delete_topics(s)
        databases.close()


def _file(sc: Scenario, batch: int, name: str) -> dict[str, Any]:
    got = rows(sc.db, "SELECT status, failedStage, error FROM fileDistribution WHERE batchId = :b AND file = :f",
               b=batch, f=f"/calls/h{batch}/{name}")
    assert len(got) == 1, f"{name}: {got}"
    return dict(zip(("status", "failedStage", "error"), got[0], strict=True))


def _failed_logs(sc: Scenario, batch: int) -> dict[str, list[str]]:
    """file -> errors of its processing_logs rows with status failed."""
    out: dict[str, list[str]] = {}
    for file, error in rows(sc.db, "SELECT file, error FROM processing_logs WHERE batch_id = :b AND status = 'failed'",
                            b=str(batch)):
        out.setdefault(file.removeprefix(f"/calls/h{batch}/"), []).append(error)
    return out


def _batch(sc: Scenario, batch: int) -> dict[str, Any]:
    got = rows(sc.db, "SELECT status, totalFiles, completedFiles, failedFiles, reason FROM batchStatus WHERE id = :b",
               b=batch)
    return dict(zip(("status", "total", "completed", "failed", "reason"), got[0], strict=True))


# ---- the services -------------------------------------------------------------------------------------

def test_every_service_kept_running_with_the_same_pid(scenario: Scenario) -> None:
    assert scenario.exited == {}, scenario.output  # type: ignore[attr-defined]
    assert scenario.pids_after == scenario.pids_before
    assert set(scenario.codes.values()) == {0}, scenario.codes


def test_good_batch_completes_exactly_once_beside_the_hostile_ones(scenario: Scenario) -> None:
    problems = exactly_once_problems(scenario.settings, scenario.db, GOOD, N_GOOD, NO_DENOISE)
    assert problems == [], "\n".join(problems)


# ---- the stage worker ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name,error_type,words", [
    ("hang.wav", "DeadlineExceeded", f"still busy on this file after {DEADLINE_S}s"),
    ("bug.wav", "RuntimeError", "gave up after 3 attempts: hostile engine bug"),
    ("badresult.wav", "ResultError", "invalid lid result: unexpectedField: Extra inputs are not permitted"),
    ("noencode.wav", "ResultError", "does not encode"),
    ("huge.wav", "EventTooLarge", "over MAX_EVENT_BYTES=2,097,152"),
    ("[/x] bug call.wav", "RuntimeError", "hostile engine bug"),
])
def test_a_misbehaving_engine_fails_only_its_file(scenario: Scenario, name: str, error_type: str, words: str) -> None:
    row = _file(scenario, H1, name)
    assert (row["status"], row["failedStage"]) == ("Failed", "lid")
    assert row["error"].startswith(f"{error_type}: ") and words in row["error"], row["error"]
    assert _failed_logs(scenario, H1)[name] == [row["error"]]  # one failed row, with the reason


def test_the_hostile_batch_finishes_with_its_good_file(scenario: Scenario) -> None:
    assert _file(scenario, H1, "ok-1.wav")["status"] == "Completed"
    b = _batch(scenario, H1)
    assert (b["status"], b["total"], b["completed"], b["failed"]) == ("Completed", 9, 1, 8)
    assert set(_failed_logs(scenario, H1)) == set(H1_FILES) - {"ok-1.wav"}


@pytest.mark.parametrize("name,words", [
    ("rate192k.wav", "sample rate 192000 Hz, over MAX_SAMPLE_RATE=96000"),
    ("six-channels.wav", "6 channels; only mono or stereo"),
    ("big.wav", "bytes, over MAX_AUDIO_BYTES=1,048,576"),
])
def test_audio_over_the_limits_fails_before_decoding(scenario: Scenario, name: str, words: str) -> None:
    got = rows(scenario.db, "SELECT status, failedStage, error FROM fileDistribution WHERE batchId = :b "
                            "AND file LIKE :f", b=H5, f=f"%/{name}")
    assert len(got) == 1 and got[0][:2] == ("Failed", "denoise") and words in got[0][2], got
    b = _batch(scenario, H5)
    assert (b["status"], b["completed"], b["failed"]) == ("Completed", 1, 3)


def test_events_over_the_brokers_default_1mb_flow_through(scenario: Scenario) -> None:
    b = _batch(scenario, H6)
    assert (b["status"], b["completed"], b["failed"]) == ("Completed", 3, 0)


# ---- the tracker ------------------------------------------------------------------------------------

def test_a_failure_the_database_refuses_fails_its_file_with_the_reason(scenario: Scenario) -> None:
    row = _file(scenario, H1, "hang-dberr.wav")
    assert (row["status"], row["failedStage"]) == ("Failed", "lid")
    assert row["error"].startswith("UnappliedEvent: DataError") and "Data too long for column 'worker'" in row["error"]
    assert f"{scenario.settings.topic_prefix}.failed[" in row["error"]


def test_an_undecodable_event_fails_its_file_found_by_key(scenario: Scenario) -> None:
    row = _file(scenario, H1, "hang-corrupt.wav")
    assert (row["status"], row["failedStage"]) == ("Failed", "lid")
    assert row["error"].startswith("UnappliedEvent: undecodable FileEvent: not an Avro single-object message")
    assert f"{scenario.settings.topic_prefix}.stage.done[" in row["error"]


@pytest.mark.parametrize("batch", sorted(REJECTED))
def test_an_unusable_batch_start_gets_a_rejected_row_with_the_reason(scenario: Scenario, batch: int) -> None:
    b = _batch(scenario, batch)
    assert b["status"] == "Rejected" and REJECTED[batch] in b["reason"], b
    assert scalar(scenario.db, "SELECT COUNT(*) FROM fileDistribution WHERE batchId = :b", b=batch) == 0
    logged = rows(scenario.db, "SELECT details FROM batchExecutionLog WHERE batchId = :b AND eventType = 'batch_rejected'",
                  b=batch)
    assert len(logged) == 1 and REJECTED[batch] in json.loads(logged[0][0])["reason"]


def test_an_undecodable_command_is_logged_on_its_batch_which_goes_on(scenario: Scenario) -> None:
    b = _batch(scenario, H2)
    assert (b["status"], b["completed"], b["failed"]) == ("Completed", 3, 0)
    assert b["reason"].startswith("a command could not be applied: undecodable BatchControl")
    assert scalar(scenario.db, "SELECT COUNT(*) FROM batchExecutionLog WHERE batchId = :b "
                               "AND eventType = 'control_rejected'", b=H2) == 1


def test_case_accent_and_space_twins_are_distinct_files(scenario: Scenario) -> None:
    b = _batch(scenario, TWINS)
    assert (b["status"], b["total"], b["completed"]) == ("Completed", 6, 6)
    names = {r[0] for r in rows(scenario.db, "SELECT file FROM fileDistribution WHERE batchId = :b", b=TWINS)}
    assert names == {f"/calls/h{TWINS}/{n}" for n in TWIN_NAMES}
    assert scalar(scenario.db, "SELECT COUNT(DISTINCT file) FROM processing_logs WHERE batch_id = :b "
                               "AND stage_name = 'llm2' AND status = 'success'", b=str(TWINS)) == 6


def test_every_message_set_aside_is_a_dead_letter_with_its_reason(scenario: Scenario) -> None:
    p = scenario.settings.topic_prefix
    seen = sorted((d["headers"]["cofi.topic"], d["key"] or b"", d["headers"]["cofi.reason"].split(":")[0])
                  for d in scenario.dead_letters)
    fid = events.file_id
    assert seen == sorted([
        (f"{p}.batch.start", b"9003", "undecodable BatchStart"),
        (f"{p}.batch.start", b"9004", "undecodable BatchStart"),
        (f"{p}.batch.start", b"", "undecodable BatchStart"),
        (f"{p}.batch.control", str(H2).encode(), "undecodable BatchControl"),
        (f"{p}.batch.control", b"777", "undecodable BatchControl"),
        (f"{p}.failed", fid(H1, f"/calls/h{H1}/hang-dberr.wav").encode(), "DataError"),
        (f"{p}.stage.done", fid(H1, f"/calls/h{H1}/hang-corrupt.wav").encode(), "undecodable FileEvent"),
    ])
    assert all(d["headers"]["cofi.offset"].isdigit() for d in scenario.dead_letters)
