"""Hypothesis fuzz of what a batch is made of, bounded to run in the default suite.

Manifest rows (pure): any rows give FileSpecs that every event and table can hold, or a ManifestError;
never another exception. BatchStart records and random bytes (real broker and database, the tracker in a
thread): every message gets a verdict (taken in with exactly its files, or refused with a reason), and the
tracker stays up and healthy, then takes a good batch in as before.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hyp
from hypothesis import strategies as st
from sqlalchemy import Engine

from cofi.devtools.checks import rows, scalar
from cofi.devtools.pipeline import produce, wait_for
from cofi.errors import ManifestError
from cofi.ops.cli.readmodel import reading, submission_verdict
from cofi.pipeline.batchcheck import spec_problem
from cofi.pipeline.codec import get_codec
from cofi.pipeline.manifest import read_manifest
from cofi.pipeline.stages import STAGES
from cofi.pipeline.topics import Topics
from cofi.settings import Settings
from tests.support.tracker import RunningTracker, batch_start, submit, wait_status

ODD_TEXT = st.text(st.characters(codec="utf-8"), max_size=40) | st.sampled_from(
    ["", " ", "\x00", "a\x00b.wav", "[/x] c.wav", "é" * 300, "x" * 600, "../../etc/passwd", "\u202e.wav"])
# may hold lone surrogates: JSON carries them as \udcxx escapes, a CSV as bytes that are not UTF-8
ANY_TEXT = ODD_TEXT | st.text(st.characters() | st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), max_size=20)
TIMES = st.sampled_from(["2026-01-15T09:00:00+00:00", "2026-01-15T09:00:00", "2026-01-15T09:00:00Z", "not a time",
                         "", "2026-13-45T99:00:00+00:00"]) | ODD_TEXT
ROW = st.builds(lambda file, extra, known: {**extra, **known, "file": file}, ANY_TEXT,
                st.dictionaries(ANY_TEXT, ANY_TEXT | st.integers() | st.none() | st.booleans(), max_size=3),
                st.fixed_dictionaries({}, optional={"clientCode": ANY_TEXT, "callStart": TIMES}))


@hyp(max_examples=150, deadline=None)
@given(rows=st.lists(ROW, max_size=6), as_csv=st.booleans())
def test_any_manifest_rows_give_usable_calls_or_a_manifest_error(tmp_path_factory: pytest.TempPathFactory,
                                                                 rows: list[dict[str, Any]], as_csv: bool) -> None:
    folder = tmp_path_factory.mktemp("m")
    if as_csv:
        keys = list(dict.fromkeys(k for r in rows for k in r)) or ["file"]
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)
        path = folder / "calls.csv"
        path.write_bytes(buf.getvalue().encode("utf-8", "surrogatepass"))
    else:
        path = folder / "calls.json"
        path.write_text(json.dumps(rows))
    try:
        specs = read_manifest(path)
    except ManifestError:
        return
    for spec in specs:
        assert spec_problem(spec.file, spec.metadata) is None
    get_codec().encode("BatchStart", {**batch_start(1, 0), "files": [s.to_record() for s in specs]})


# ---- BatchStart records through the real tracker ------------------------------------------------------

SAFE_TEXT = st.text(st.characters(codec="utf-8"), max_size=30)  # Avro strings: anything but lone surrogates
NAMES = SAFE_TEXT | st.sampled_from(["/calls/A.wav", "/calls/a.wav", "/calls/a\x00.wav", "/calls/" + "n" * 600,
                                     "/calls/José.wav", "/calls/x.wav ", ""])
FLOATS = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([0.0, -1.0, 1e308])
TRADE = st.fixed_dictionaries({
    "tradeId": SAFE_TEXT, "clientCode": SAFE_TEXT, "symbol": SAFE_TEXT, "side": st.sampled_from(["buy", "s", "x"]),
    "quantity": FLOATS, "price": FLOATS, "tradeTime": TIMES, "phone": st.none() | SAFE_TEXT})


def _records(manifest_dir: str) -> st.SearchStrategy[list[dict[str, Any] | bytes]]:
    record = st.fixed_dictionaries({
        "files": st.lists(st.fixed_dictionaries({"file": NAMES, "metadata": st.dictionaries(SAFE_TEXT, SAFE_TEXT,
                                                                                              max_size=2)}), max_size=5),
        "skip": st.lists(st.sampled_from([*STAGES, "bogus", ""]), max_size=3),
        "manifest": st.sampled_from([None, "", "/nonexistent/calls.csv", manifest_dir]),
        "questionnaire": st.none() | SAFE_TEXT, "rules": st.none() | SAFE_TEXT,
        "trades": st.lists(TRADE, max_size=2),
        "callback": st.none() | SAFE_TEXT | st.sampled_from(["http://127.0.0.1/" + "c" * 1100]),
        "submittedBy": SAFE_TEXT,
        "oddId": st.none() | st.sampled_from([0, -1, -(2**63), 2**63 - 1]),
    })
    return st.lists(record | st.binary(max_size=300), min_size=1, max_size=5)


def _verdict(s: Settings, batch_id: int, event_id: str) -> tuple[bool, str] | None:
    with reading(s) as conn:
        return submission_verdict(conn, batch_id, event_id)


def _files_of(db: Engine, batch_id: int) -> set[str]:
    return {r[0] for r in rows(db, "SELECT file FROM fileDistribution WHERE batchId = :b", b=batch_id)}


@pytest.mark.integration
def test_fuzzed_batch_starts_each_get_a_verdict_and_the_tracker_stays_up(settings: Settings, db_engine: Engine,
                                                                         tmp_path: Path) -> None:
    ids = itertools.count(10_000)
    codec, topics = get_codec(), Topics(settings.topic_prefix)
    (tmp_path / "calls").mkdir()
    (tmp_path / "calls" / "one.wav").write_bytes(b"RIFF")
    manifest_dir = str(tmp_path / "calls")
    running = RunningTracker(settings)
    with running as tracker:

        @hyp(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(messages=_records(manifest_dir))
        def run(messages: list[dict[str, Any] | bytes]) -> None:
            for m in messages:
                key = next(ids)
                if isinstance(m, bytes):  # not a BatchStart: a Rejected row under its key
                    produce(settings, topics.batch_start, [(str(key), m)])
                    wait_for(lambda k=key: scalar(db_engine, "SELECT reason FROM batchStatus WHERE id = :b "
                                                             "AND status = 'Rejected'", b=k), 30, f"batch {key} refused")
                    continue
                record = {**batch_start(key, 0), **{k: v for k, v in m.items() if k != "oddId"}}
                record["batchId"] = key if m["oddId"] is None else m["oddId"]
                produce(settings, topics.batch_start, [(str(key), codec.encode("BatchStart", record))])
                taken, reason = wait_for(lambda r=record: _verdict(settings, r["batchId"], r["eventId"]), 30,
                                         f"a verdict on batch {record['batchId']}")
                assert taken or reason, "a refusal says why"
                if taken and m["oddId"] is None:  # a fresh id taken in: exactly its files, byte for byte
                    listed = {f["file"] for f in record["files"]}
                    assert _files_of(db_engine, key) == listed | ({f"{manifest_dir}/one.wav"}
                                                                  if record["manifest"] == manifest_dir else set()), (
                        record, rows(db_engine, "SELECT status, reason, config FROM batchStatus WHERE id = :b", b=key),
                        rows(db_engine, "SELECT eventType, dedupKey, details FROM batchExecutionLog WHERE batchId = :b",
                             b=key))
            assert running.thread.is_alive() and tracker.health_detail()[0], tracker.health_detail()

        run()
        good = batch_start(next(ids), 3)
        submit(settings, good)
        assert wait_status(db_engine, good["batchId"], ("InProgress",))["totalFiles"] == 3
        assert running.thread.is_alive()
    refused = rows(db_engine, "SELECT id, reason FROM batchStatus WHERE status = 'Rejected'")
    assert refused and all(reason for _, reason in refused)
