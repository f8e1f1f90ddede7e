"""`cofi submit`: validate a batch locally, then send its BatchStart."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from cofi.audit.instruments import InstrumentError, load_master
from cofi.audit.trades import TradeFileError, load_trades
from cofi.errors import BatchRejected, CliError, ManifestError
from cofi.ops.cli.app import handles_errors, make_console, settings_of
from cofi.ops.cli.inputs import MAX_BIGINT, check_batch_id, check_callback, load_batch_texts, parse_skip, submitted_by
from cofi.ops.cli.readmodel import await_verdict, row_stamp
from cofi.ops.cli.sender import send_event
from cofi.ops.cli.watch import exit_for, watch_batch
from cofi.pipeline.batchcheck import check_trades, zone
from cofi.pipeline.codec import get_codec
from cofi.pipeline.events import new_event_id, now
from cofi.pipeline.manifest import is_audio, missing_files, read_manifest
from cofi.pipeline.paths import AudioRoots
from cofi.pipeline.stages import OPTIONAL_STAGES, STAGES
from cofi.pipeline.topics import Topics, stage_plan
from cofi.redaction import ENTITY_TYPES, PolicyError, enabled_stages, make_policy
from cofi.settings import Settings

SKIPPABLE = ",".join(s for s in STAGES if s in OPTIONAL_STAGES)
MAX_INLINE_BYTES = 900_000  # the broker's default message.max.bytes is 1 MB: larger batches go by manifest


@dataclass
class Submission:
    """A validated BatchStart, ready to send."""

    record: dict[str, Any]
    files: int
    plan: list[str]
    missing: list[str] = field(default_factory=list)

    @property
    def batch_id(self) -> int:
        return int(self.record["batchId"])


def new_batch_id() -> int:
    """A random positive BIGINT (63 random bits, like a UUID's): two submitters never pick the same id,
    whereas ids from the clock collided when two batches were sent in the same millisecond."""
    return secrets.randbelow(MAX_BIGINT) + 1


def load_checked_trades(path: Path, tz: str | None) -> list[dict[str, Any]]:
    """The trade file's rows, with finite numbers and time zones (naive times get `tz`); CliError otherwise."""
    try:
        rows = load_trades(path)
        numbered = (lambda i: f"{path} item {i}") if path.suffix.lower() == ".json" else (lambda i: f"{path} line {i + 2}")
        check_trades(rows, numbered, zone(tz) if tz else None)
    except (TradeFileError, BatchRejected, OSError, UnicodeDecodeError) as exc:
        raise CliError(f"--trades {path}: {exc}") from None
    return rows


def build_submission(path: Path, *, skip: list[str] | None = None, batch_id: int | None = None,
                     rules: Path | None = None, questionnaire: Path | None = None, trades: Path | None = None,
                     instruments: Path | None = None, callback: str | None = None, inline: bool | None = None,
                     roots: AudioRoots | None = None, redact: list[str] | None = None,
                     redact_audio: str = "tone", trades_tz: str | None = None) -> Submission:
    """Validate everything locally and build the BatchStart; CliError(2) on any problem (a path outside
    `roots`, AUDIO_ROOTS, included: the tracker would refuse it the same way)."""
    skipped = parse_skip(skip)
    try:
        policy = make_policy(redact, redact_audio) if redact else None
    except PolicyError as exc:
        raise CliError(f"--redact: {exc}") from None
    plan = stage_plan(skipped, enable=enabled_stages(policy))
    if batch_id is not None:
        check_batch_id(batch_id, "--batch-id")
    check_callback(callback)
    source = Path(path).expanduser()
    if not source.exists():
        raise CliError(f"{source} does not exist (give a directory, a .csv/.json manifest or an audio file)")
    try:
        specs = read_manifest(source, roots)
    except ManifestError as exc:
        raise CliError(str(exc)) from None
    r_json, q_json = load_batch_texts(rules, questionnaire)
    trade_rows = load_checked_trades(trades, trades_tz) if trades is not None else []
    master: list[dict[str, Any]] = []
    if instruments is not None:
        try:  # only the entries of traded symbols travel: the others are never looked up
            master = load_master(instruments).records(t["symbol"] for t in trade_rows)
        except (InstrumentError, OSError, UnicodeDecodeError) as exc:
            raise CliError(f"--instruments {instruments}: {exc}") from None
    send_inline = inline if inline is not None else (source.is_file() and is_audio(source))
    record: dict[str, Any] = {
        "eventId": new_event_id(),
        "batchId": batch_id if batch_id is not None else new_batch_id(),
        "submittedAt": now(),
        "files": [s.to_record() for s in specs] if send_inline else [],
        "manifest": None if send_inline else str(source.absolute()),
        "skip": skipped,
        "questionnaire": q_json,
        "rules": r_json,
        "trades": trade_rows,
        "callback": callback,
        "submittedBy": submitted_by(),
        "instruments": master,
        "redact": policy,
    }
    size = len(get_codec().encode("BatchStart", record))
    if size > MAX_INLINE_BYTES:
        raise CliError(f"the BatchStart would be {size:,} bytes ({len(specs):,} files inline"
                       f"{f', {len(trade_rows):,} trades' if trade_rows else ''}); "
                       "submit large batches with --manifest (the default for directories and manifests)")
    return Submission(record, len(specs), plan, missing_files(specs))


def send_submission(settings: Settings, sub: Submission, console: Console) -> None:
    """Send a validated BatchStart and print what happens next."""
    if sub.missing:
        first = ", ".join(sub.missing[:3])
        console.print(f"[yellow]warning:[/] {len(sub.missing)} of {sub.files} files are not on this machine "
                      f"({escape(first)}{', ...' if len(sub.missing) > 3 else ''}); they will fail at their first stage "
                      "unless the services see another filesystem")
    topic = Topics(settings.topic_prefix).batch_start
    send_event(settings, topic, str(sub.batch_id), get_codec().encode("BatchStart", sub.record))
    b = sub.batch_id
    how = "inline" if sub.record["files"] else f"manifest {sub.record['manifest']}"
    console.print(f"[bold green]submitted[/] batch [bold]{b}[/]: {sub.files} file(s) ({escape(how)}), "
                  f"stages {' > '.join(sub.plan)}, to {topic}")
    console.print(f"next:  cofi status {b} --watch   |   cofi failures {b}   |   cofi results {b}   |   "
                  f"cofi monitor {b}")


def submit_batch(settings: Settings, path: Path, console: Console | None = None, **options: Any) -> Submission:
    """Validate, send the BatchStart and print what happens next (used by `cofi submit` and the demo)."""
    sub = build_submission(path, roots=AudioRoots.of(settings), **options)
    send_submission(settings, sub, console or make_console())
    return sub


@handles_errors
def submit(ctx: typer.Context,
           path: Annotated[Path, typer.Argument(help="a directory of audio, a CSV/JSON manifest, or one audio file")],
           skip: Annotated[list[str] | None, typer.Option("--skip", help=f"optional stages to leave out: {SKIPPABLE}")] = None,
           batch_id: Annotated[int | None, typer.Option("--batch-id", help="BIGINT id (default: random); an existing id resumes that batch")] = None,
           rules: Annotated[Path | None, typer.Option("--rules", help="custom rules (YAML/JSON)")] = None,
           questionnaire: Annotated[Path | None, typer.Option("--questionnaire", help="audit questionnaire (YAML/JSON)")] = None,
           trades: Annotated[Path | None, typer.Option("--trades", help="trades to map to the calls (CSV/JSON)")] = None,
           instruments: Annotated[Path | None, typer.Option(
               "--instruments", help="instrument master: symbol,name,aliases (CSV/JSON), how tickers are spoken")] = None,
           trades_tz: Annotated[str | None, typer.Option("--trades-tz", help="time zone of trade times written without one (e.g. Europe/Paris); without it they are refused")] = None,
           callback: Annotated[str | None, typer.Option("--callback", help="webhook URL told when the batch ends")] = None,
           inline: Annotated[bool | None, typer.Option("--inline/--manifest",
                                              help="send the file list in the event / let the tracker read the manifest")] = None,
           watch: Annotated[bool, typer.Option("--watch", help="then watch progress like `cofi status --watch`")] = False,
           redact: Annotated[list[str] | None, typer.Option("--redact", help="redact PII from transcripts and audio "
                                                            f"before the audit: all, or entity types ({', '.join(ENTITY_TYPES)})")] = None,
           redact_audio: Annotated[str, typer.Option("--redact-audio", help="replace redacted audio with: tone | silence")] = "tone",
           ) -> None:
    """Validate a batch locally, then send its BatchStart."""
    settings = settings_of(ctx)
    sub = build_submission(path, skip=skip, batch_id=batch_id, rules=rules, questionnaire=questionnaire,
                           trades=trades, instruments=instruments, callback=callback, inline=inline,
                           roots=AudioRoots.of(settings), redact=redact, redact_audio=redact_audio, trades_tz=trades_tz)
    stamp = row_stamp(settings, sub.batch_id) if watch else None  # a re-submitted batch id resumes that batch
    send_submission(settings, sub, make_console())
    if watch:
        await_verdict(settings, sub.batch_id, sub.record["eventId"])  # CliError when the tracker refused it
        raise typer.Exit(exit_for(watch_batch(settings, sub.batch_id, watch=True, stale_stamp=stamp)))
