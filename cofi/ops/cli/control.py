"""`cofi resume`, `cofi reaudit`, `cofi cancel`: BatchControl events for the tracker."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from cofi.errors import CliError
from cofi.ops.cli.app import handles_errors, make_console, settings_of
from cofi.ops.cli.inputs import check_batch_id, load_batch_texts, submitted_by
from cofi.ops.cli.readmodel import load_batch_view, reading, row_stamp
from cofi.ops.cli.sender import send_event
from cofi.ops.cli.watch import exit_for, watch_batch
from cofi.pipeline.codec import get_codec
from cofi.pipeline.events import new_event_id, now
from cofi.pipeline.stages import REAUDIT_STAGES
from cofi.pipeline.topics import Topics
from cofi.settings import Settings

EFFECTS = {
    "resume": "the tracker re-emits every unfinished file to its first stage whose done flag is 0; "
              "finished files are left alone",
    "reaudit": "the tracker resets the done flags from {from_stage} on and re-runs {stages} for every file "
               "that reached them{with_new}",
    "cancel": "the tracker marks the batch Cancelled; files still in flight are dropped by the stages, "
              "finished results are kept",
}


def build_control(batch_id: int, action: str, *, from_stage: str | None = None, rules: Path | None = None,
                  questionnaire: Path | None = None) -> dict[str, Any]:
    """Validate and build one BatchControl record; CliError(2) on bad input."""
    check_batch_id(batch_id)
    r_json = q_json = None
    if action == "reaudit":
        if from_stage not in REAUDIT_STAGES:
            raise CliError(f"--from {from_stage!r}: reaudit starts at {' or '.join(REAUDIT_STAGES)}")
        r_json, q_json = load_batch_texts(rules, questionnaire)
    return {"eventId": new_event_id(), "batchId": batch_id, "action": action,
            "fromStage": from_stage if action == "reaudit" else None, "rules": r_json,
            "questionnaire": q_json, "requestedAt": now(), "requestedBy": submitted_by()}


def send_control(settings: Settings, record: dict[str, Any]) -> str:
    """Send one BatchControl record (keyed by batch id); returns the topic."""
    topic = Topics(settings.topic_prefix).batch_control
    send_event(settings, topic, str(record["batchId"]), get_codec().encode("BatchControl", record))
    return topic


def _preview(settings: Settings, batch_id: int) -> str:
    """Best effort: what the database says about the batch now (the command goes out regardless)."""
    try:
        with reading(settings) as conn:
            view = load_batch_view(conn, batch_id)
    except CliError as exc:
        return f"(cannot read the database: {exc})"
    if view.row is None:
        return f"warning: batch {batch_id} is not in the database; the tracker will ignore the command"
    unfinished = view.total - view.file_status.get("Completed", 0)
    return f"batch {batch_id} is {view.status}: {view.total} files, {unfinished} not completed"


def _control(ctx: typer.Context, batch: int, action: str, wait: bool, **kw: Any) -> None:
    settings, console = settings_of(ctx), make_console()
    record = build_control(batch, action, **kw)
    note = _preview(settings, batch)
    stamp = row_stamp(settings, batch) if wait else None
    topic = send_control(settings, record)
    reset = REAUDIT_STAGES[REAUDIT_STAGES.index(record["fromStage"]):] if record["fromStage"] else ()
    with_new = " with the new " + " and ".join(
        n for n, v in (("rules", record["rules"]), ("questionnaire", record["questionnaire"])) if v) \
        if record["rules"] or record["questionnaire"] else ""
    console.print(f"[bold green]sent[/] {action} for batch [bold]{batch}[/] to {topic}")
    console.print(EFFECTS[action].format(from_stage=record["fromStage"], stages=" and ".join(reset), with_new=with_new))
    console.print(escape(note), style="yellow" if note.startswith(("warning", "(")) else "")
    if wait:
        raise typer.Exit(exit_for(watch_batch(settings, batch, watch=True, stale_stamp=stamp)))


WaitOption = Annotated[bool, typer.Option("--wait", help="then watch progress like `cofi status --watch`")]


@handles_errors
def resume(ctx: typer.Context, batch: Annotated[int, typer.Argument(help="batch id")], wait: WaitOption = False) -> None:
    """Re-run a batch's unfinished files from where each one stopped."""
    _control(ctx, batch, "resume", wait)


@handles_errors
def reaudit(ctx: typer.Context, batch: Annotated[int, typer.Argument(help="batch id")],
            from_stage: Annotated[str, typer.Option("--from", help="llm1 (answers and rules) or llm2 (rules only)")] = REAUDIT_STAGES[0],
            rules: Annotated[Path | None, typer.Option("--rules", help="replacement rules (YAML/JSON)")] = None,
            questionnaire: Annotated[Path | None, typer.Option("--questionnaire", help="replacement questionnaire")] = None,
            wait: WaitOption = False) -> None:
    """Re-run the LLM stages of a batch (e.g. with new rules) without redoing the audio stages."""
    _control(ctx, batch, "reaudit", wait, from_stage=from_stage, rules=rules, questionnaire=questionnaire)


@handles_errors
def cancel(ctx: typer.Context, batch: Annotated[int, typer.Argument(help="batch id")], wait: WaitOption = False) -> None:
    """Stop a batch."""
    _control(ctx, batch, "cancel", wait)
