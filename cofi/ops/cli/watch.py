"""`cofi status`: a batch's progress per stage, once or live until it ends."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.live import Live

from cofi.errors import EXIT_NOT_COMPLETED, EXIT_OK, EXIT_UNREACHABLE, CliError
from cofi.ops.cli.app import handles_errors, make_console, settings_of
from cofi.ops.cli.readmodel import database, load_batch_view
from cofi.ops.cli.render import render_batch
from cofi.settings import Settings

FINAL_STATUSES = frozenset({"Completed", "Failed", "Cancelled", "Rejected"})
SETTLE_S = 30.0  # how long a watch after a command waits for the tracker to act before trusting a final status


def exit_for(status: str | None) -> int:
    return EXIT_OK if status == "Completed" else EXIT_NOT_COMPLETED


def watch_batch(settings: Settings, batch_id: int, *, watch: bool, interval: float = 1.0,
                console: Console | None = None, appear_timeout: float | None = None,
                stall_timeout: float | None = None, stale_stamp: datetime | None = None) -> str | None:
    """Show the batch (refreshing until a final status with `watch`); return its last status.

    `appear_timeout`: fail when the tracker has not taken the batch in by then;
    `stall_timeout`: fail when no file made progress for that long (both for the demo);
    `stale_stamp`: the row's updatedAt before a command was sent: a final status not newer
    than it is the old state (the tracker has not acted yet), trusted only after SETTLE_S."""
    console = console or make_console()
    with database(settings) as db:
        if not watch:
            with db.connect() as conn:
                view = load_batch_view(conn, batch_id)
            if view.row is None:
                raise CliError(f"batch {batch_id} is not in the database (not submitted, or the tracker "
                               "has not taken it in yet: is it running?)", EXIT_NOT_COMPLETED)
            console.print(render_batch(view))
            return view.status
        started, last_change, last_key = time.monotonic(), time.monotonic(), None
        with Live(console=console, refresh_per_second=4, auto_refresh=False) as live:
            while True:
                with db.connect() as conn:
                    view = load_batch_view(conn, batch_id)
                live.update(render_batch(view), refresh=True)
                fresh = (stale_stamp is None or view.row is None or view.row["updatedAt"] > stale_stamp
                         or time.monotonic() - started > SETTLE_S)
                if view.status in FINAL_STATUSES and fresh:
                    break
                key = (view.status, tuple((s.done, s.failed, s.status) for s in view.stages))
                if key != last_key:
                    last_key, last_change = key, time.monotonic()
                waited = time.monotonic()
                if appear_timeout is not None and view.row is None and waited - started > appear_timeout:
                    raise CliError(f"batch {batch_id} did not appear within {appear_timeout:.0f}s: is the tracker "
                                   "running? (`make up`, `bash scripts/services.sh status`)", EXIT_UNREACHABLE)
                if stall_timeout is not None and view.row is not None and waited - last_change > stall_timeout:
                    raise CliError(f"batch {batch_id} made no progress for {stall_timeout:.0f}s: are the stage "
                                   "services running? (`bash scripts/services.sh status`, logs in .local/log/)",
                                   EXIT_UNREACHABLE)
                time.sleep(interval)
        if not console.is_terminal:
            console.line()  # a piped Live leaves its last frame without a newline
        return view.status


@handles_errors
def status(ctx: typer.Context, batch: Annotated[int, typer.Argument(help="batch id")],
           watch: Annotated[bool, typer.Option("--watch", "-w", help="refresh until the batch ends")] = False,
           interval: Annotated[float, typer.Option("--interval", help="seconds between refreshes", min=0.1)] = 1.0) -> None:
    """Batch status and per-stage progress; exit 0 only when the batch is Completed."""
    raise typer.Exit(exit_for(watch_batch(settings_of(ctx), batch, watch=watch, interval=interval)))
