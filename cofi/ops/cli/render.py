"""Rich renderings of what the CLI read: a batch's progress per stage, and query results as tables."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rich.console import Group
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from cofi.ops import monitoring
from cofi.ops.cli.readmodel import BatchView

MAX_CELL = 120
WIDE_RESULT_COLUMNS = 8
STATUS_STYLE = {"Completed": "green", "InProgress": "cyan", "Failed": "red", "Cancelled": "yellow",
                "Rejected": "red", "Skipped": "dim", "Pending": "white"}

VERDICT_STYLE = {"critical_fail": "bold red", "fail": "red", "review": "yellow", "pass": "green"}


def styled(status: str | None) -> Text:
    return Text(status or "-", style=STATUS_STYLE.get(status or "", ""))


def render_batch(view: BatchView) -> Group:
    if view.row is None:
        return Group(Text(f"batch {view.batch_id}: not in the database yet "
                          "(waiting for the tracker to take it in)", style="yellow"))
    r = view.row
    head = Text.assemble(("batch ", "bold"), (str(view.batch_id), "bold"), "  ", styled(r["status"]),
                         f"   files {view.total}  completed {r['completedFiles']}  failed {r['failedFiles']}")
    times = "   ".join(f"{k} {r[k]:%Y-%m-%d %H:%M:%S}" for k in ("createdAt", "startedAt", "completedAt") if r.get(k))
    table = Table(box=None, pad_edge=False)
    for name, justify in (("stage", "left"), ("status", "left"), ("progress", "left"), ("done", "right"),
                          ("failed", "right"), ("of", "right")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for s in view.stages:
        if s.status == "Skipped":
            table.add_row(s.stage, styled(s.status), "", "", "", "")
            continue
        bar = ProgressBar(total=max(s.reach, 1), completed=min(s.done + s.failed, max(s.reach, 1)), width=32,
                          complete_style="red" if s.failed and not s.done else "green", finished_style="green")
        table.add_row(s.stage, styled(s.status), bar, str(s.done),
                      Text(str(s.failed), style="red" if s.failed else ""), str(s.reach))
    parts: list[Any] = [head]
    if times:
        parts.append(Text(times, style="dim"))
    if r.get("reason"):
        parts.append(Text(f"reason: {r['reason']}", style="yellow"))
    parts.append(table)
    if any(view.verdicts.values()):
        parts.append(Text.assemble("verdicts ", *(part for v, n in view.verdicts.items() for part in (
            (f"{v} {n}", VERDICT_STYLE.get(v, "") if n else "dim"), "   "))))
    return Group(*parts)


def cell(value: Any) -> Text:
    """A database value as plain text: a file named `[/x] call.wav` is shown as it is, never read as markup."""
    if value is None:
        return Text("NULL")
    if isinstance(value, datetime):
        return Text(f"{value:%Y-%m-%d %H:%M:%S}")
    if isinstance(value, bytes):
        return Text(f"<{len(value)} bytes>")
    text = str(value)
    return Text(text if len(text) <= MAX_CELL else text[:MAX_CELL - 1] + "…")


def result_table(result: monitoring.QueryResult) -> Table | Group:
    """Rows as a table; a wide `SELECT *` one record per block (like mysql's \\G), so it stays readable."""
    if len(result.columns) > WIDE_RESULT_COLUMNS and result.rows:
        blocks: list[Any] = [Text(result.query.title, style="italic")]
        for i, row in enumerate(result.rows, 1):
            block = Table(title=f"row {i}", title_justify="left", show_header=False, box=None, pad_edge=False)
            block.add_column("column", style="bold")
            block.add_column("value", overflow="fold")
            for name, value in zip(result.columns, row, strict=True):
                block.add_row(name, cell(value))
            blocks.append(block)
        return Group(*blocks)
    table = Table(title=result.query.title, title_justify="left")
    for c in result.columns:
        table.add_column(c, overflow="fold")
    for row in result.rows:
        table.add_row(*(cell(v) for v in row))
    if not result.rows:
        table.caption = "(no rows)"
    return table
