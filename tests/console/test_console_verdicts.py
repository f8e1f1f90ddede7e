"""The batch page's files table filtered by verdict, with the count of each (a QA reviewer opens the
critical_fail and review calls of a 10,000-file batch first), on the real console and MariaDB."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import Engine, text

from cofi.pipeline.stages import STAGES
from cofi.settings import Settings
from services.tracker.store import BatchRow, insert_batch
from tests.support.console import ConsoleServer, login

pytestmark = pytest.mark.integration
BATCH = 4301
VERDICTS = {"a.wav": "pass", "b.wav": "critical_fail", "c.wav": "review", "d.wav": "review", "e.wav": None}


def _seed(db_engine: Engine) -> None:
    with db_engine.begin() as conn:
        insert_batch(conn, BatchRow(id=BATCH, status="InProgress", stage_status=dict.fromkeys(STAGES, "InProgress"),
                                    stages=list(STAGES), totalFiles=len(VERDICTS), contentHash=None, callback=None))
        for i, (name, verdict) in enumerate(VERDICTS.items()):
            conn.execute(text("INSERT INTO fileDistribution (batchId, fileId, file, status) VALUES (:b, :i, :f, :s)"),
                         {"b": BATCH, "i": f"f{i}", "f": f"/calls/{name}", "s": "Completed" if verdict else "Pending"})
            if verdict:
                conn.execute(text("INSERT INTO auditResult (batchId, fileId, file, verdict, score) "
                                  "VALUES (:b, :i, :f, :v, 50)"),
                             {"b": BATCH, "i": f"f{i}", "f": f"/calls/{name}", "v": verdict})


def _files(html: str) -> list[str]:
    return sorted(re.findall(r'class="call-link" href="[^"]+">([^<]+)<', html))


def _counts(html: str) -> dict[str, int]:
    return {v: int(n) for v, n in re.findall(r'data-verdict="(\w+)"[^>]*>.*?</span> (\d+)</a>', html, re.S)}


def test_files_filtered_by_verdict_with_counts(settings: Settings, db_engine: Engine) -> None:
    _seed(db_engine)
    with ConsoleServer(settings) as console:
        rita = login(console.url, "rita")  # a reviewer may read every page
        page = rita.get(f"/batches/{BATCH}")
        assert page.status_code == 200
        assert _files(page.text) == sorted(VERDICTS)
        assert _counts(page.text) == {"critical_fail": 1, "fail": 0, "review": 2, "pass": 1}
        review = rita.get(f"/batches/{BATCH}?verdict=review")
        assert _files(review.text) == ["c.wav", "d.wav"]
        assert re.search(r'hx-get="/batches/4301/files\?page=0&[^"]*verdict=review"', review.text)  # polls the filter
        assert _files(rita.get(f"/batches/{BATCH}/files?verdict=critical_fail").text) == ["b.wav"]
        assert "No files with verdict fail." in rita.get(f"/batches/{BATCH}?verdict=fail").text
        assert _files(rita.get(f"/batches/{BATCH}?verdict=bogus").text) == sorted(VERDICTS)  # unknown: no filter
