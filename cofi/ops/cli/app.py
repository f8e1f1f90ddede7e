"""The Typer app every command module registers on, and what all commands share: settings from the
context, consoles, and turning expected failures into one line and an exit code."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from cofi.errors import EXIT_INTERRUPTED, EXIT_UNREACHABLE, CliError, KafkaUnavailable
from cofi.pipeline.batchcheck import shown
from cofi.settings import Settings, get_settings

app = typer.Typer(help="cofi: audit recorded calls in batches (Kafka pipeline).", no_args_is_help=True,
                  add_completion=False, pretty_exceptions_enable=False)

F = TypeVar("F", bound=Callable[..., Any])


def make_console() -> Console:
    """A wide console when piped (CliRunner, logs), so paths are not cut."""
    probe = Console()
    return probe if probe.is_terminal else Console(width=200)


def err_console() -> Console:
    return Console(stderr=True, soft_wrap=True, highlight=False)


def settings_of(ctx: typer.Context | None) -> Settings:
    """The process settings, with the `--prefix` (tests) of the command line applied."""
    settings = get_settings()
    prefix = (ctx.obj or {}).get("prefix") if ctx is not None else None
    return settings.model_copy(update={"topic_prefix": prefix}) if prefix else settings


def handles_errors(fn: F) -> F:
    """Turn expected failures into one line on stderr and an exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except CliError as exc:
            err_console().print(f"[bold red]error:[/] {escape(shown(str(exc)))}")  # a path may hold raw bytes
            raise typer.Exit(exc.code) from None
        except KafkaUnavailable as exc:
            err_console().print(f"[bold red]error:[/] {escape(str(exc))}")
            raise typer.Exit(EXIT_UNREACHABLE) from None
        except KeyboardInterrupt:
            err_console().print("interrupted (the batch itself keeps running)")
            raise typer.Exit(EXIT_INTERRUPTED) from None

    return wrapper  # type: ignore[return-value]


@app.callback()
def _main(ctx: typer.Context,
          prefix: Annotated[str | None, typer.Option("--prefix", hidden=True, envvar="TOPIC_PREFIX",
                                            help="topic prefix (tests)")] = None) -> None:
    ctx.obj = {"prefix": prefix}
