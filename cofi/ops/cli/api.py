"""What other operator tools (the demo) may use of the CLI: the same code paths `cofi` runs."""

from __future__ import annotations

from typing import Any

from cofi.ops.cli.app import make_console
from cofi.ops.cli.control import EFFECTS, build_control, send_control
from cofi.ops.cli.monitor import print_monitoring
from cofi.ops.cli.readmodel import BatchView, decode_json, load_batch_view, load_results, reading
from cofi.ops.cli.results import results_csv
from cofi.ops.cli.submit import Submission, new_batch_id, submit_batch
from cofi.ops.cli.watch import watch_batch
from cofi.settings import Settings

__all__ = ["EFFECTS", "BatchView", "Submission", "build_control", "decode_json", "load_batch_view", "load_results", "make_console",
           "new_batch_id", "print_monitoring", "read_results", "results_csv", "send_control", "submit_batch",
           "watch_batch"]


def read_results(settings: Settings, batch_id: int) -> list[dict[str, Any]]:
    """`cofi results` as data: one dict per file (CliError when the database cannot be read)."""
    with reading(settings) as conn:
        return load_results(conn, batch_id)
