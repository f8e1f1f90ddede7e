"""Everything the console borrows from the CLI and the stage list, in one place.

The console sends exactly the CLI's BatchControl events (same validation, same effects)
and exports exactly the CLI's results; when the CLI or the stage registry move, only the
imports of this module change.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection

from cofi.errors import CliError, KafkaUnavailable
from cofi.ops.cli.api import (
    EFFECTS,
    build_control,
    decode_json,
    load_batch_view,
    load_results,
    results_csv,
    send_control,
)
from cofi.pipeline.stages import REAUDIT_STAGES, STAGES
from cofi.settings import Settings

__all__ = ["ACTIONS", "EFFECTS", "REAUDIT_FROM", "STAGES", "ControlError", "batch_view", "decode_json", "export_results",
           "send_batch_control"]

ACTIONS = ("resume", "reaudit", "cancel")
REAUDIT_FROM = REAUDIT_STAGES


class ControlError(ValueError):
    """Invalid control input (the message is the CLI's); nothing was sent."""


@dataclass(frozen=True)
class SentControl:
    action: str
    record: dict[str, Any]
    effect: str


def _as_file(folder: Path, name: str, text: str | None) -> Path | None:
    if not text or not text.strip():
        return None
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def send_batch_control(settings: Settings, batch_id: int, action: str, *, user: str, from_stage: str | None = None,
                       rules: str | None = None, questionnaire: str | None = None,
                       batch_questionnaire: Any = None) -> SentControl:
    """Validate like `cofi <action>` and send the BatchControl; ControlError on invalid input.

    New rules are checked against the new questionnaire, else against the batch's own one
    (so a rule may name the batch's questions), as the tracker will apply them."""
    if action not in ACTIONS:
        raise ControlError(f"unknown action {action!r}; known: {', '.join(ACTIONS)}")
    with tempfile.TemporaryDirectory(prefix="cofi-console-") as tmp:
        folder = Path(tmp)
        q_text = questionnaire
        if rules and not (questionnaire and questionnaire.strip()) and batch_questionnaire:
            q_text = batch_questionnaire if isinstance(batch_questionnaire, str) else json.dumps(batch_questionnaire)
        try:
            record = build_control(batch_id, action, from_stage=from_stage if action == "reaudit" else None,
                                   rules=_as_file(folder, "rules.yaml", rules),
                                   questionnaire=_as_file(folder, "questionnaire.yaml", q_text))
        except CliError as exc:
            raise ControlError(str(exc)) from None
    if questionnaire is None or not questionnaire.strip():
        record["questionnaire"] = None  # the batch's own one was only used to validate the rules
    record["requestedBy"] = f"{user}@console"
    try:
        send_control(settings, record)
    except (CliError, KafkaUnavailable) as exc:
        raise ControlError(str(exc)) from None
    stages = " and ".join(REAUDIT_STAGES[REAUDIT_STAGES.index(record["fromStage"]):]) if record["fromStage"] else ""
    with_new = " with the new rules" if record["rules"] else ""
    return SentControl(action, record, EFFECTS[action].format(from_stage=record["fromStage"], stages=stages,
                                                              with_new=with_new))


def export_results(conn: Connection, batch_id: int, fmt: str) -> tuple[str, str]:
    """(body, media type) of the batch's results, as `cofi results --format fmt` writes them."""
    rows = load_results(conn, batch_id)
    if fmt == "csv":
        return results_csv(rows), "text/csv; charset=utf-8"
    return json.dumps(rows, indent=2, ensure_ascii=False, default=str) + "\n", "application/json"


def batch_view(conn: Connection, batch_id: int) -> Any:
    """The CLI's BatchView: batchStatus row and per-stage done/failed/reach counts."""
    return load_batch_view(conn, batch_id)
