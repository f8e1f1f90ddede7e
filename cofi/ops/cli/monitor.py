"""`cofi monitor`: the seed's "Monitor These Metrics" and "Support" SQL for one batch, run unchanged."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.syntax import Syntax

from cofi.ops import monitoring
from cofi.ops.cli.app import handles_errors, make_console, settings_of
from cofi.ops.cli.readmodel import reading
from cofi.ops.cli.render import result_table
from cofi.settings import Settings


def print_monitoring(settings: Settings, batch_id: int, console: Console, show_sql: bool = True) -> None:
    """Run the seed's monitoring and support queries for the batch and print each with its rows."""
    with reading(settings) as conn:
        outcomes = [monitoring.run_query(conn, q, batch_id) for q in monitoring.ALL_QUERIES]
    section = None
    for res in outcomes:
        if res.query.section != section:
            section = res.query.section
            console.rule(f"[bold]{section}[/]")
        if show_sql:
            console.print(Syntax(res.sql.rstrip(), "sql", theme="ansi_dark", background_color="default"))
        console.print(result_table(res))


@handles_errors
def monitor(ctx: typer.Context, batch: Annotated[int, typer.Argument(help="batch id")],
            sql: Annotated[bool, typer.Option("--sql/--no-sql", help="print each query before its rows")] = True) -> None:
    """The seed's "Monitor These Metrics" and "Support" SQL for this batch, run unchanged."""
    print_monitoring(settings_of(ctx), batch, make_console(), show_sql=sql)
