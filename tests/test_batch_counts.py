"""The per-batch counts the tracker keeps instead of scanning a batch on every poll (pure rules):
summed per-file counts are the aggregates the SQL scan gives, and moving a row through any chain of
states, saving each time, leaves exactly the counts of its last state."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from cofi.pipeline.stages import STAGES
from services.tracker.filestate import FileRow, counts_delta, counts_of
from services.tracker.progress import Aggregates

STATUSES = ["Pending", "InProgress", "Completed", "Failed", "Cancelled"]

rows_st = st.builds(
    lambda flags, status, failed_at: FileRow(1, "f", "f.wav", dict(zip(STAGES, flags, strict=True)), status=status,
                                             failedStage=failed_at if status == "Failed" else None),
    st.lists(st.integers(0, 1), min_size=len(STAGES), max_size=len(STAGES)), st.sampled_from(STATUSES),
    st.sampled_from(STAGES))


def scan(rows: list[FileRow]) -> Aggregates:
    """What store.aggregates' SQL computes over fileDistribution rows."""
    return Aggregates(total=len(rows), done={s: sum(r.flags[s] for r in rows) for s in STAGES},
                      failed_at={s: sum(r.status == "Failed" and r.failedStage == s for r in rows) for s in STAGES},
                      completed=sum(r.status == "Completed" for r in rows),
                      failed=sum(r.status == "Failed" for r in rows),
                      cancelled=sum(r.status == "Cancelled" for r in rows))


def add(total: dict[str, int], delta: dict[str, int]) -> None:
    for k, d in delta.items():
        total[k] = total.get(k, 0) + d


@given(st.lists(rows_st, max_size=30))
def test_summed_counts_are_the_scan(rows: list[FileRow]) -> None:
    total: dict[str, int] = {}
    for r in rows:
        add(total, counts_of(r))
    assert Aggregates.from_counts(total) == scan(rows)
    assert Aggregates.from_counts(scan(rows).counts()) == scan(rows)


@given(st.lists(st.lists(rows_st, min_size=1, max_size=6), min_size=1, max_size=10))
def test_saving_every_state_of_each_row_keeps_the_counts_of_the_last(histories: list[list[FileRow]]) -> None:
    total: dict[str, int] = {}
    last = []
    for states in histories:
        row = states[0]  # new: nothing counted yet
        for i, state in enumerate(states):
            if i:
                row = replace(state, counted=row.counted)  # the next state of the same file, as filestate makes it
            delta = counts_delta(row)
            add(total, delta)
            row.counted = counts_of(row)  # what store.save_files records
            assert counts_delta(row) == {}, "saving the same state again changes nothing (a replay)"
        last.append(row)
    assert Aggregates.from_counts(total) == scan(last)
