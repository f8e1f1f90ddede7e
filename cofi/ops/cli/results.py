"""`cofi failures` and `cofi results`: what went wrong per file, and what every file's audit says."""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text
from sqlalchemy import select

from cofi import db
from cofi.errors import EXIT_NOT_COMPLETED, CliError
from cofi.ops import monitoring
from cofi.ops.cli.app import err_console, handles_errors, make_console, settings_of
from cofi.ops.cli.readmodel import JSON_RESULT_COLUMNS, load_results, reading
from cofi.ops.cli.render import result_table


@handles_errors
def failures(ctx: typer.Context, batch: Annotated[int, typer.Argument(help="batch id")],
             limit: Annotated[int, typer.Option("--limit", min=1, help="most recent N failures")] = 50) -> None:
    """Failed files (processing_logs) and the seed's error counts per stage."""
    console = make_console()
    pl = db.processing_logs
    with reading(settings_of(ctx)) as conn:
        rows = conn.execute(select(pl.c.file, pl.c.stage_name, pl.c.error, pl.c.created_at)
                            .where(pl.c.batch_id == str(batch), pl.c.status == "failed")
                            .order_by(pl.c.created_at.desc(), pl.c.id.desc()).limit(limit)).all()
        counts = monitoring.run_query(conn, monitoring.MONITOR_QUERIES[1], batch)
    if not rows:
        console.print(f"batch {batch}: no failed files")
        return
    table = Table(title=f"batch {batch}: failed files (latest {len(rows)})")
    for name in ("file", "stage", "error", "at"):
        table.add_column(name, overflow="fold")
    for file, stage, error, at in rows:
        table.add_row(Text(file), Text(stage), Text((error or "")[:500]), f"{at:%Y-%m-%d %H:%M:%S}" if at else "")
    console.print(table)
    console.print(result_table(counts))


def results_csv(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    if rows:
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (json.dumps(v, separators=(",", ":"), ensure_ascii=False) if k in JSON_RESULT_COLUMNS
                                 and v is not None else ("" if v is None else v)) for k, v in row.items()})
    return buf.getvalue()


@handles_errors
def results(ctx: typer.Context, batch: Annotated[int, typer.Argument(help="batch id")],
            fmt: Annotated[str, typer.Option("--format", help="json or csv")] = "json",
            output: Annotated[Path | None, typer.Option("--output", "-o", help="write here instead of stdout")] = None,
            verdict: Annotated[list[str] | None, typer.Option(
                "--verdict", help=f"only files with this verdict (repeat for several): {', '.join(db.VERDICTS)}")] = None,
            ) -> None:
    """Per-file results: status, language, verdict, score, answers, rule results, trade checks."""
    if fmt not in ("json", "csv"):
        raise CliError(f"--format {fmt!r}: use json or csv")
    unknown = sorted(set(verdict or ()) - set(db.VERDICTS))
    if unknown:
        raise CliError(f"--verdict {', '.join(unknown)}: use {', '.join(db.VERDICTS)}")
    fd = db.file_distribution
    with reading(settings_of(ctx)) as conn:
        rows = load_results(conn, batch, verdict or ())
        known = bool(rows) or conn.execute(select(fd.c.fileId).where(fd.c.batchId == batch).limit(1)).first()
    if not known:
        raise CliError(f"batch {batch} has no files in the database", EXIT_NOT_COMPLETED)
    if not rows:  # none of that verdict (yet): an empty list, not an error
        err_console().print(f"batch {batch}: no file with verdict {', '.join(verdict or ())}")
    text = (json.dumps(rows, indent=2, ensure_ascii=False, default=str) + "\n") if fmt == "json" else results_csv(rows)
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
        err_console().print(f"wrote {len(rows)} file result(s) to {escape(str(output))}")
