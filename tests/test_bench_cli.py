"""Every benchmark still starts: its imports resolve and its options parse (`--help`). A benchmark is
run by hand, not by the suite, so a renamed helper it imports would otherwise break it unseen
(bench/llm_throughput.py did, after bench/llm.py moved its call generator)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BENCHES = sorted(p.stem for p in (REPO / "bench").glob("*.py") if p.stem != "__init__")


def test_the_benchmarks_are_found() -> None:
    assert {"throughput", "relay", "dbraw", "audio_throughput", "llm_throughput"} <= set(BENCHES)


@pytest.mark.parametrize("name", BENCHES)
def test_benchmark_starts(name: str) -> None:
    res = subprocess.run([sys.executable, "-m", f"bench.{name}", "--help"], cwd=REPO, capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    if name != "dbraw":  # a library of bench/throughput.py, without a command line of its own
        assert "usage:" in res.stdout, res.stdout[-500:]
