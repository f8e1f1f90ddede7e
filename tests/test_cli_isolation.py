"""The CLI against hostile input (real broker and database): database strings are printed as text, never as
markup; names that are not UTF-8, naive or non-finite trades and oversized callbacks are refused before
anything is sent; batch ids cannot collide; a refused submission is told to its submitter."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from sqlalchemy import Engine, insert
from typer.testing import CliRunner

from cofi import db
from cofi.devtools.checks import read_messages
from cofi.ops.cli import app
from cofi.ops.cli.submit import new_batch_id
from cofi.pipeline.codec import get_codec
from cofi.pipeline.topics import Topics
from cofi.settings import Settings
from tests.support.tracker import RunningTracker, batch_start, submit, wait_status

pytestmark = pytest.mark.integration

MARKUP_NAME = "/calls/[/x] call [bold].wav"
TRADE_HEADER = "tradeId,clientCode,symbol,side,quantity,price,tradeTime,phone\n"


def _calls(root: Path, *names: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    t = np.arange(8000) / 16000
    for n in names:
        sf.write(root / n, 0.1 * np.sin(2 * np.pi * 440 * t), 16000)
    return root


def _sent(settings: Settings) -> list[dict]:
    return [get_codec().decode_as("BatchStart", m.value())
            for m in read_messages(settings, Topics(settings.topic_prefix).batch_start)]


def test_database_strings_are_printed_as_text_not_markup(cli: CliRunner, db_engine: Engine) -> None:
    """A file named `[/x] call [bold].wav` used to crash `cofi failures` (Rich read it as a closing tag)."""
    with db_engine.begin() as conn:
        conn.execute(insert(db.batch_status).values(id=3, status="Failed", totalFiles=1, failedFiles=1))
        conn.execute(insert(db.file_distribution).values(batchId=3, fileId="f1", file=MARKUP_NAME, status="Failed",
                                                         failedStage="lid", error="[red]PermanentError[/]: bad"))
        conn.execute(insert(db.processing_logs).values(eventId="e1", batch_id="3", file=MARKUP_NAME, stage_name="lid",
                                                       status="failed", error="[red]PermanentError[/]: bad"))
    for command in (["failures", "3"], ["monitor", "3"], ["results", "3", "--format", "csv"]):
        r = cli.invoke(app, command)
        assert r.exit_code == 0, (command, r.output)
        assert "[/x] call [bold].wav" in r.output.replace("\n", ""), command
    assert "[red]PermanentError[/]: bad" in cli.invoke(app, ["failures", "3"]).output


def test_a_directory_with_a_name_that_is_not_utf8_is_refused_with_its_path(cli: CliRunner, settings: Settings,
                                                                          tmp_path: Path) -> None:
    calls = _calls(tmp_path / "calls", "fine.wav")
    with open(os.path.join(os.fsencode(calls), b"caf\xe9.wav"), "wb") as f:
        f.write(b"RIFF")
    r = cli.invoke(app, ["submit", str(calls)])
    assert r.exit_code == 2, r.output
    assert "is not valid UTF-8" in r.output and "caf\\xe9.wav" in r.output
    assert _sent(settings) == []


@pytest.mark.parametrize("row,words", [
    ("T1,C1,ACME,buy,100,25,2026-01-15T09:02:00,", "line 2: tradeTime '2026-01-15T09:02:00' has no time zone"),
    ("T1,C1,ACME,buy,nan,25,2026-01-15T09:02:00+00:00,", "line 2: quantity is nan, not a finite number"),
    ("T1,C1,ACME,buy,1,inf,2026-01-15T09:02:00+00:00,", "line 2: price is inf, not a finite number"),
])
def test_unusable_trades_are_refused_with_the_row(cli: CliRunner, settings: Settings, tmp_path: Path,
                                                  row: str, words: str) -> None:
    (tmp_path / "trades.csv").write_text(TRADE_HEADER + row + "\n")
    r = cli.invoke(app, ["submit", str(_calls(tmp_path / "calls", "a.wav")), "--trades", str(tmp_path / "trades.csv")])
    assert r.exit_code == 2 and words in r.output, r.output
    assert _sent(settings) == []


def test_trade_times_without_a_zone_take_the_one_given(cli: CliRunner, settings: Settings, tmp_path: Path) -> None:
    (tmp_path / "trades.csv").write_text(TRADE_HEADER + "T1,C1,ACME,buy,1,2,2026-01-15T09:02:00,\n"
                                         "T2,C1,ACME,sell,1,2,2026-07-15T09:02:00Z,\n")
    r = cli.invoke(app, ["submit", str(_calls(tmp_path / "calls", "a.wav")), "--trades", str(tmp_path / "trades.csv"),
                         "--trades-tz", "Europe/Paris"])
    assert r.exit_code == 0, r.output
    (sent,) = _sent(settings)
    assert [t["tradeTime"] for t in sent["trades"]] == ["2026-01-15T09:02:00+01:00", "2026-07-15T09:02:00Z"]
    r = cli.invoke(app, ["submit", str(tmp_path / "calls"), "--trades", str(tmp_path / "trades.csv"),
                         "--trades-tz", "Mars/Olympus"])
    assert r.exit_code == 2 and "unknown time zone 'Mars/Olympus'" in r.output


def test_a_callback_longer_than_its_column_is_refused(cli: CliRunner, settings: Settings, tmp_path: Path) -> None:
    url = "http://127.0.0.1/" + "c" * 1100
    r = cli.invoke(app, ["submit", str(_calls(tmp_path / "calls", "a.wav")), "--callback", url])
    assert r.exit_code == 2 and "over 1024" in r.output, r.output
    assert _sent(settings) == []


def test_batch_ids_are_random_positive_bigints() -> None:
    ids = {new_batch_id() for _ in range(10_000)}
    assert len(ids) == 10_000 and all(0 < i < 2**63 for i in ids)


def test_submit_watch_says_when_the_tracker_refuses_the_submission(cli: CliRunner, settings: Settings,
                                                                   db_engine: Engine, tmp_path: Path) -> None:
    """The batch id is taken by a batch with other files: the submitter hears the reason (exit 2), and the
    other batch's row is left alone."""
    with RunningTracker(settings):
        submit(settings, batch_start(66, 2))
        wait_status(db_engine, 66, ("InProgress",))
        r = cli.invoke(app, ["submit", str(_calls(tmp_path / "calls", "a.wav")), "--batch-id", "66", "--watch"])
    assert r.exit_code == 2, r.output
    assert "the tracker refused this submission: batch id already used by a batch with different content" in r.output
    assert wait_status(db_engine, 66, ("InProgress",))["reason"] is None
