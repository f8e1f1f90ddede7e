"""`cofi`: submit batches, watch them, read their failures and results, steer them.

The CLI never writes the database (the tracker is its only writer): it reads the tables
and sends commands (BatchStart, BatchControl) to Kafka. Exit codes: 0 ok (status: batch
Completed), 1 batch not completed / not found, 2 invalid input (nothing was sent),
3 Kafka or the database unreachable.
"""

from __future__ import annotations

import csv
import functools
import getpass
import io
import json
import socket
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar
from urllib.parse import urlparse

import typer
from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.progress_bar import ProgressBar
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text
from sqlalchemy import Connection, Engine, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import InterfaceError, OperationalError, ProgrammingError

from cofi import db
from cofi.audit.questionnaire import QuestionnaireError, default_questionnaire, load_questionnaire
from cofi.audit.rules import RulesError, load_rules
from cofi.audit.trades import TradeFileError, load_trades
from cofi.ops import monitoring
from cofi.pipeline.codec import get_codec
from cofi.pipeline.events import new_event_id, now
from cofi.pipeline.kafka import KafkaUnavailable, make_producer
from cofi.pipeline.manifest import ManifestError, is_audio, missing_files, read_manifest
from cofi.pipeline.topics import STAGES, Topics, UnknownStageError, stage_plan
from cofi.settings import Settings, get_settings

EXIT_NOT_COMPLETED, EXIT_INVALID, EXIT_UNREACHABLE = 1, 2, 3
FINAL_STATUSES = frozenset({"Completed", "Failed", "Cancelled", "Rejected"})
MAX_BIGINT = 2**63 - 1
MAX_INLINE_BYTES = 900_000  # the broker's default message.max.bytes is 1 MB: larger batches go by manifest
KAFKA_TIMEOUT_S = 5.0
SETTLE_S = 30.0  # how long a watch after a command waits for the tracker to act before trusting a final status
JSON_RESULT_COLUMNS = ("answers", "normalizedAnswers", "ruleResults", "tradeChecks", "reasons")

app = typer.Typer(help="cofi: audit recorded calls in batches (Kafka pipeline).", no_args_is_help=True,
                  add_completion=False, pretty_exceptions_enable=False)

F = TypeVar("F", bound=Callable[..., Any])


class CliError(Exception):
    """A one-line failure shown without a traceback; `code` is the exit status."""

    def __init__(self, message: str, code: int = EXIT_INVALID) -> None:
        super().__init__(message)
        self.code = code


# --- plumbing: settings, consoles, error handling ---------------------------------------

def make_console() -> Console:
    """A wide console when piped (CliRunner, logs), so paths are not cut."""
    probe = Console()
    return probe if probe.is_terminal else Console(width=200)


def _err() -> Console:
    return Console(stderr=True, soft_wrap=True, highlight=False)


def _settings(ctx: typer.Context | None) -> Settings:
    settings = get_settings()
    prefix = (ctx.obj or {}).get("prefix") if ctx is not None else None
    return settings.model_copy(update={"topic_prefix": prefix}) if prefix else settings


def _handles_errors(fn: F) -> F:
    """Turn expected failures into one line on stderr and an exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except CliError as exc:
            _err().print(f"[bold red]error:[/] {escape(str(exc))}")
            raise typer.Exit(exc.code) from None
        except KafkaUnavailable as exc:
            _err().print(f"[bold red]error:[/] {escape(str(exc))}")
            raise typer.Exit(EXIT_UNREACHABLE) from None
        except KeyboardInterrupt:
            _err().print("interrupted (the batch itself keeps running)")
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


@app.callback()
def _main(ctx: typer.Context,
          prefix: Annotated[str | None, typer.Option("--prefix", hidden=True, envvar="TOPIC_PREFIX",
                                            help="topic prefix (tests)")] = None) -> None:
    ctx.obj = {"prefix": prefix}


# --- database (read only) ----------------------------------------------------------------

def _db_where(settings: Settings) -> str:
    url = make_url(settings.database_url)
    return f"{url.host or 'localhost'}:{url.port or 3306}/{url.database or ''}"


class Db:
    """Read-only access that reports an unreachable or unmigrated database in one line."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine: Engine = db.make_engine(settings.database_url, connect_args={"connect_timeout": 5})

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        where = _db_where(self.settings)
        try:
            with self.engine.connect() as conn:
                yield conn
        except (OperationalError, InterfaceError) as exc:
            raise CliError(f"database at {where} is unreachable ({_first_line(exc.orig)}); "
                           "start it with `make up` or set DATABASE_URL", EXIT_UNREACHABLE) from None
        except ProgrammingError as exc:
            if getattr(exc.orig, "args", [None])[0] == 1146:
                raise CliError(f"database at {where} has no cofi tables ({_first_line(exc.orig)}); "
                               "run `python -m cofi.ops.admin init` (part of `make up`)", EXIT_UNREACHABLE) from None
            raise

    def close(self) -> None:
        self.engine.dispose()


def _first_line(exc: BaseException | None) -> str:
    args = getattr(exc, "args", ())
    text = f"error {args[0]}: {args[1]}" if len(args) == 2 and isinstance(args[0], int) else str(exc or "")
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__


@contextmanager
def _database(settings: Settings) -> Iterator[Db]:
    handle = Db(settings)
    try:
        yield handle
    finally:
        handle.close()


# --- Kafka (write only) ------------------------------------------------------------------

def _kafka_reason(exc: Exception) -> str:
    err = exc.args[0] if exc.args else None
    return err.str() if hasattr(err, "str") else _first_line(exc)


def send_event(settings: Settings, topic: str, key: str, value: bytes) -> None:
    """Produce one event and wait for the broker's acknowledgement; CliError(3) if it cannot."""
    from confluent_kafka import KafkaException

    producer = make_producer(settings, None, **{"log_level": 0, "message.timeout.ms": 15_000})
    where = settings.kafka_bootstrap_servers
    try:
        topics = producer.list_topics(timeout=KAFKA_TIMEOUT_S).topics
    except KafkaException as exc:
        raise KafkaUnavailable(f"Kafka at {where} did not answer within {KAFKA_TIMEOUT_S:.0f}s "
                               f"({_kafka_reason(exc)}); start it with `make up` or set KAFKA_BOOTSTRAP_SERVERS") from None
    if topic not in topics:
        raise CliError(f"topic {topic} does not exist on Kafka at {where}; "
                       "create the topics with `python -m cofi.ops.admin init` (part of `make up`)", EXIT_UNREACHABLE)
    errors: list[str] = []
    producer.produce(topic, key=key.encode(), value=value,
                     on_delivery=lambda err, _msg: errors.append(str(err)) if err else None)
    left = producer.flush(20)
    if left or errors:
        raise CliError(f"Kafka at {where} did not acknowledge the event on {topic}: "
                       f"{errors[0] if errors else 'timed out'}", EXIT_UNREACHABLE)


# --- submit ------------------------------------------------------------------------------

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
    """YYYYMMDDHHMMSSmmm (local time): sortable, readable, fits a BIGINT."""
    t = datetime.now()
    return int(t.strftime("%Y%m%d%H%M%S")) * 1000 + t.microsecond // 1000


def _parse_skip(skip: list[str] | None) -> list[str]:
    names = [s.strip().lower() for item in (skip or []) for s in item.split(",") if s.strip()]
    try:
        stage_plan(names)
    except UnknownStageError as exc:
        raise CliError(f"--skip: {exc}") from None
    return sorted(set(names), key=STAGES.index)


def _load_batch_texts(rules: Path | None, questionnaire: Path | None) -> tuple[str | None, str | None]:
    """(rules JSON, questionnaire JSON), validated together so rules name real questions."""
    q_json = None
    q = default_questionnaire()
    if questionnaire is not None:
        try:
            q = load_questionnaire(Path(questionnaire))
        except (QuestionnaireError, OSError, UnicodeDecodeError) as exc:
            raise CliError(f"--questionnaire {questionnaire}: {exc}") from None
        q_json = q.to_json()
    r_json = None
    if rules is not None:
        try:
            r_json = load_rules(Path(rules), questionnaire=q).to_json()
        except (RulesError, OSError, UnicodeDecodeError) as exc:
            raise CliError(f"--rules {rules}: {exc}") from None
    return r_json, q_json


def _check_callback(url: str | None) -> None:
    if url is None:
        return
    parts = urlparse(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise CliError(f"--callback {url!r} is not an http(s) URL")


def _submitted_by() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def build_submission(path: Path, *, skip: list[str] | None = None, batch_id: int | None = None,
                     rules: Path | None = None, questionnaire: Path | None = None, trades: Path | None = None,
                     callback: str | None = None, inline: bool | None = None) -> Submission:
    """Validate everything locally and build the BatchStart; CliError(2) on any problem."""
    skipped = _parse_skip(skip)
    plan = stage_plan(skipped)
    if batch_id is not None and not 0 < batch_id <= MAX_BIGINT:
        raise CliError(f"--batch-id {batch_id} must be a positive 64-bit integer")
    _check_callback(callback)
    source = Path(path).expanduser()
    if not source.exists():
        raise CliError(f"{source} does not exist (give a directory, a .csv/.json manifest or an audio file)")
    try:
        specs = read_manifest(source)
    except ManifestError as exc:
        raise CliError(str(exc)) from None
    r_json, q_json = _load_batch_texts(rules, questionnaire)
    trade_rows: list[dict[str, Any]] = []
    if trades is not None:
        try:
            trade_rows = load_trades(trades)
        except (TradeFileError, OSError, UnicodeDecodeError) as exc:
            raise CliError(f"--trades {trades}: {exc}") from None
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
        "submittedBy": _submitted_by(),
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
    sub = build_submission(path, **options)
    send_submission(settings, sub, console or make_console())
    return sub


@app.command()
@_handles_errors
def submit(ctx: typer.Context,
           path: Annotated[Path, typer.Argument(help="a directory of audio, a CSV/JSON manifest, or one audio file")],
           skip: Annotated[list[str] | None, typer.Option("--skip", help="optional stages to leave out: denoise,ivr,llm1,llm2")] = None,
           batch_id: Annotated[int | None, typer.Option("--batch-id", help="BIGINT id (default: from the clock)")] = None,
           rules: Annotated[Path | None, typer.Option("--rules", help="custom rules (YAML/JSON)")] = None,
           questionnaire: Annotated[Path | None, typer.Option("--questionnaire", help="audit questionnaire (YAML/JSON)")] = None,
           trades: Annotated[Path | None, typer.Option("--trades", help="trades to map to the calls (CSV/JSON)")] = None,
           callback: Annotated[str | None, typer.Option("--callback", help="webhook URL told when the batch ends")] = None,
           inline: Annotated[bool | None, typer.Option("--inline/--manifest",
                                              help="send the file list in the event / let the tracker read the manifest")] = None,
           watch: Annotated[bool, typer.Option("--watch", help="then watch progress like `cofi status --watch`")] = False,
           ) -> None:
    """Validate a batch locally, then send its BatchStart."""
    settings = _settings(ctx)
    sub = build_submission(path, skip=skip, batch_id=batch_id, rules=rules, questionnaire=questionnaire,
                           trades=trades, callback=callback, inline=inline)
    stamp = row_stamp(settings, sub.batch_id) if watch else None  # a re-submitted batch id resumes that batch
    send_submission(settings, sub, make_console())
    if watch:
        raise typer.Exit(_exit_for(watch_batch(settings, sub.batch_id, watch=True, stale_stamp=stamp)))


# --- status ------------------------------------------------------------------------------

@dataclass
class StageView:
    stage: str
    status: str
    done: int
    failed: int
    reach: int


@dataclass
class BatchView:
    batch_id: int
    row: dict[str, Any] | None
    total: int
    stages: list[StageView]
    file_status: dict[str, int]

    @property
    def status(self) -> str | None:
        return self.row["status"] if self.row else None


def load_batch_view(conn: Connection, batch_id: int) -> BatchView:
    """batchStatus row plus per-stage done/failed counts from fileDistribution."""
    bs, fd = db.batch_status, db.file_distribution
    found = conn.execute(select(bs).where(bs.c.id == batch_id)).mappings().first()
    sums = conn.execute(select(func.count(), *(func.coalesce(func.sum(fd.c[c]), 0) for c in db.DONE_COLUMNS))
                        .where(fd.c.batchId == batch_id)).one()
    failed_at = dict(conn.execute(select(fd.c.failedStage, func.count()).where(fd.c.batchId == batch_id,
                                                                                fd.c.failedStage.is_not(None))
                                  .group_by(fd.c.failedStage)).all())
    file_status = dict(conn.execute(select(fd.c.status, func.count()).where(fd.c.batchId == batch_id)
                                    .group_by(fd.c.status)).all())
    total = int(sums[0])
    row = dict(found) if found else None
    stages: list[StageView] = []
    lost = file_status.get("Cancelled", 0)
    for i, stage in enumerate(STAGES):
        status = row[db.STAGE_STATUS_COLUMNS[i]] if row else "Pending"
        done, failed = int(sums[i + 1]), int(failed_at.get(stage, 0))
        stages.append(StageView(stage, status, done, failed, max(total - lost, 0)))
        lost += failed
    return BatchView(batch_id, row, max(total, int(row["totalFiles"]) if row else 0), stages, file_status)


_STATUS_STYLE = {"Completed": "green", "InProgress": "cyan", "Failed": "red", "Cancelled": "yellow",
                 "Rejected": "red", "Skipped": "dim", "Pending": "white"}


def _styled(status: str | None) -> Text:
    return Text(status or "-", style=_STATUS_STYLE.get(status or "", ""))


def render_batch(view: BatchView) -> Group:
    if view.row is None:
        return Group(Text(f"batch {view.batch_id}: not in the database yet "
                          "(waiting for the tracker to take it in)", style="yellow"))
    r = view.row
    head = Text.assemble(("batch ", "bold"), (str(view.batch_id), "bold"), "  ", _styled(r["status"]),
                         f"   files {view.total}  completed {r['completedFiles']}  failed {r['failedFiles']}")
    times = "   ".join(f"{k} {r[k]:%Y-%m-%d %H:%M:%S}" for k in ("createdAt", "startedAt", "completedAt") if r.get(k))
    table = Table(box=None, pad_edge=False)
    for name, justify in (("stage", "left"), ("status", "left"), ("progress", "left"), ("done", "right"),
                          ("failed", "right"), ("of", "right")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for s in view.stages:
        if s.status == "Skipped":
            table.add_row(s.stage, _styled(s.status), "", "", "", "")
            continue
        bar = ProgressBar(total=max(s.reach, 1), completed=min(s.done + s.failed, max(s.reach, 1)), width=32,
                          complete_style="red" if s.failed and not s.done else "green", finished_style="green")
        table.add_row(s.stage, _styled(s.status), bar, str(s.done),
                      Text(str(s.failed), style="red" if s.failed else ""), str(s.reach))
    parts: list[Any] = [head]
    if times:
        parts.append(Text(times, style="dim"))
    if r.get("reason"):
        parts.append(Text(f"reason: {r['reason']}", style="yellow"))
    parts.append(table)
    return Group(*parts)


def watch_batch(settings: Settings, batch_id: int, *, watch: bool, interval: float = 1.0,
                console: Console | None = None, appear_timeout: float | None = None,
                stall_timeout: float | None = None, stale_stamp: datetime | None = None) -> str | None:
    """Show the batch (refreshing until a final status with `watch`); return its last status.

    `appear_timeout`: fail when the tracker has not taken the batch in by then;
    `stall_timeout`: fail when no file made progress for that long (both for the demo);
    `stale_stamp`: the row's updatedAt before a command was sent: a final status not newer
    than it is the old state (the tracker has not acted yet), trusted only after SETTLE_S."""
    console = console or make_console()
    with _database(settings) as database:
        if not watch:
            with database.connect() as conn:
                view = load_batch_view(conn, batch_id)
            if view.row is None:
                raise CliError(f"batch {batch_id} is not in the database (not submitted, or the tracker "
                               "has not taken it in yet: is it running?)", EXIT_NOT_COMPLETED)
            console.print(render_batch(view))
            return view.status
        started, last_change, last_key = time.monotonic(), time.monotonic(), None
        with Live(console=console, refresh_per_second=4, auto_refresh=False) as live:
            while True:
                with database.connect() as conn:
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


def row_stamp(settings: Settings, batch_id: int) -> datetime | None:
    """The batch row's updatedAt now (None: no row yet), to tell the tracker's reaction from the old state."""
    bs = db.batch_status
    with _database(settings) as database, database.connect() as conn:
        return conn.execute(select(bs.c.updatedAt).where(bs.c.id == batch_id)).scalar()


def _exit_for(status: str | None) -> int:
    return 0 if status == "Completed" else EXIT_NOT_COMPLETED


@app.command()
@_handles_errors
def status(ctx: typer.Context, batch: Annotated[int, typer.Argument(help="batch id")],
           watch: Annotated[bool, typer.Option("--watch", "-w", help="refresh until the batch ends")] = False,
           interval: Annotated[float, typer.Option("--interval", help="seconds between refreshes", min=0.1)] = 1.0) -> None:
    """Batch status and per-stage progress; exit 0 only when the batch is Completed."""
    raise typer.Exit(_exit_for(watch_batch(_settings(ctx), batch, watch=watch, interval=interval)))


# --- failures ----------------------------------------------------------------------------

@app.command()
@_handles_errors
def failures(ctx: typer.Context, batch: Annotated[int, typer.Argument(help="batch id")],
             limit: Annotated[int, typer.Option("--limit", min=1, help="most recent N failures")] = 50) -> None:
    """Failed files (processing_logs) and the seed's error counts per stage."""
    settings, console = _settings(ctx), make_console()
    pl = db.processing_logs
    with _database(settings) as database, database.connect() as conn:
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
        table.add_row(file, stage, (error or "")[:500], f"{at:%Y-%m-%d %H:%M:%S}" if at else "")
    console.print(table)
    console.print(_result_table(counts))


# --- results -----------------------------------------------------------------------------

def _decode(value: Any) -> Any:
    if isinstance(value, str | bytes):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def load_results(conn: Connection, batch_id: int) -> list[dict[str, Any]]:
    """One dict per file: fileDistribution joined with auditResult, JSON columns decoded."""
    fd, ar = db.file_distribution, db.audit_result
    query = (select(fd.c.file, fd.c.status, fd.c.failedStage, ar.c.language, ar.c.verdict, ar.c.score,
                    *(ar.c[c] for c in JSON_RESULT_COLUMNS), ar.c.transcriptPath)
             .select_from(fd.outerjoin(ar, (ar.c.batchId == fd.c.batchId) & (ar.c.fileId == fd.c.fileId)))
             .where(fd.c.batchId == batch_id).order_by(fd.c.file))
    out = []
    for row in conn.execute(query).mappings():
        item = dict(row)
        for c in JSON_RESULT_COLUMNS:
            item[c] = _decode(item[c])
        out.append(item)
    return out


def results_csv(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    if rows:
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (json.dumps(v, separators=(",", ":"), ensure_ascii=False) if k in JSON_RESULT_COLUMNS
                                 and v is not None else ("" if v is None else v)) for k, v in row.items()})
    return buf.getvalue()


@app.command()
@_handles_errors
def results(ctx: typer.Context, batch: Annotated[int, typer.Argument(help="batch id")],
            fmt: Annotated[str, typer.Option("--format", help="json or csv")] = "json",
            output: Annotated[Path | None, typer.Option("--output", "-o", help="write here instead of stdout")] = None) -> None:
    """Per-file results: status, language, verdict, score, answers, rule results, trade checks."""
    if fmt not in ("json", "csv"):
        raise CliError(f"--format {fmt!r}: use json or csv")
    with _database(_settings(ctx)) as database, database.connect() as conn:
        rows = load_results(conn, batch)
    if not rows:
        raise CliError(f"batch {batch} has no files in the database", EXIT_NOT_COMPLETED)
    text = (json.dumps(rows, indent=2, ensure_ascii=False, default=str) + "\n") if fmt == "json" else results_csv(rows)
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
        _err().print(f"wrote {len(rows)} file result(s) to {output}")


# --- control: resume / reaudit / cancel --------------------------------------------------

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
    if not 0 < batch_id <= MAX_BIGINT:
        raise CliError(f"batch id {batch_id} must be a positive 64-bit integer")
    r_json = q_json = None
    if action == "reaudit":
        if from_stage not in ("llm1", "llm2"):
            raise CliError(f"--from {from_stage!r}: reaudit starts at llm1 or llm2")
        r_json, q_json = _load_batch_texts(rules, questionnaire)
    record = {"eventId": new_event_id(), "batchId": batch_id, "action": action,
              "fromStage": from_stage if action == "reaudit" else None, "rules": r_json,
              "questionnaire": q_json, "requestedAt": now(), "requestedBy": _submitted_by()}
    return record


def send_control(settings: Settings, record: dict[str, Any]) -> None:
    send_event(settings, Topics(settings.topic_prefix).batch_control, str(record["batchId"]),
               get_codec().encode("BatchControl", record))


def _preview(settings: Settings, batch_id: int) -> str:
    """Best effort: what the database says about the batch now (the command goes out regardless)."""
    try:
        with _database(settings) as database, database.connect() as conn:
            view = load_batch_view(conn, batch_id)
    except CliError as exc:
        return f"(cannot read the database: {exc})"
    if view.row is None:
        return f"warning: batch {batch_id} is not in the database; the tracker will ignore the command"
    unfinished = view.total - view.file_status.get("Completed", 0)
    return f"batch {batch_id} is {view.status}: {view.total} files, {unfinished} not completed"


def _control(ctx: typer.Context, batch: int, action: str, wait: bool, **kw: Any) -> None:
    settings, console = _settings(ctx), make_console()
    record = build_control(batch, action, **kw)
    note = _preview(settings, batch)
    stamp = row_stamp(settings, batch) if wait else None
    send_control(settings, record)
    stages = "llm1 and llm2" if record["fromStage"] == "llm1" else "llm2"
    with_new = " with the new " + " and ".join(
        n for n, v in (("rules", record["rules"]), ("questionnaire", record["questionnaire"])) if v) \
        if record["rules"] or record["questionnaire"] else ""
    console.print(f"[bold green]sent[/] {action} for batch [bold]{batch}[/] "
                  f"to {Topics(settings.topic_prefix).batch_control}")
    console.print(EFFECTS[action].format(from_stage=record["fromStage"], stages=stages, with_new=with_new))
    console.print(escape(note), style="yellow" if note.startswith(("warning", "(")) else "")
    if wait:
        raise typer.Exit(_exit_for(watch_batch(settings, batch, watch=True, stale_stamp=stamp)))


WaitOption = Annotated[bool, typer.Option("--wait", help="then watch progress like `cofi status --watch`")]


@app.command()
@_handles_errors
def resume(ctx: typer.Context, batch: Annotated[int, typer.Argument(help="batch id")], wait: WaitOption = False) -> None:
    """Re-run a batch's unfinished files from where each one stopped."""
    _control(ctx, batch, "resume", wait)


@app.command()
@_handles_errors
def reaudit(ctx: typer.Context, batch: Annotated[int, typer.Argument(help="batch id")],
            from_stage: Annotated[str, typer.Option("--from", help="llm1 (answers and rules) or llm2 (rules only)")] = "llm1",
            rules: Annotated[Path | None, typer.Option("--rules", help="replacement rules (YAML/JSON)")] = None,
            questionnaire: Annotated[Path | None, typer.Option("--questionnaire", help="replacement questionnaire")] = None,
            wait: WaitOption = False) -> None:
    """Re-run the LLM stages of a batch (e.g. with new rules) without redoing the audio stages."""
    _control(ctx, batch, "reaudit", wait, from_stage=from_stage, rules=rules, questionnaire=questionnaire)


@app.command()
@_handles_errors
def cancel(ctx: typer.Context, batch: Annotated[int, typer.Argument(help="batch id")], wait: WaitOption = False) -> None:
    """Stop a batch."""
    _control(ctx, batch, "cancel", wait)


# --- monitor -----------------------------------------------------------------------------

MAX_CELL = 120
WIDE_RESULT_COLUMNS = 8


def _cell(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, datetime):
        return f"{value:%Y-%m-%d %H:%M:%S}"
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    text = str(value)
    return text if len(text) <= MAX_CELL else text[:MAX_CELL - 1] + "…"


def _result_table(result: monitoring.QueryResult) -> Table | Group:
    """Rows as a table; a wide `SELECT *` one record per block (like mysql's \\G), so it stays readable."""
    if len(result.columns) > WIDE_RESULT_COLUMNS and result.rows:
        blocks: list[Any] = [Text(result.query.title, style="italic")]
        for i, row in enumerate(result.rows, 1):
            block = Table(title=f"row {i}", title_justify="left", show_header=False, box=None, pad_edge=False)
            block.add_column("column", style="bold")
            block.add_column("value", overflow="fold")
            for name, value in zip(result.columns, row, strict=True):
                block.add_row(name, _cell(value))
            blocks.append(block)
        return Group(*blocks)
    table = Table(title=result.query.title, title_justify="left")
    for c in result.columns:
        table.add_column(c, overflow="fold")
    for row in result.rows:
        table.add_row(*(_cell(v) for v in row))
    if not result.rows:
        table.caption = "(no rows)"
    return table


def print_monitoring(settings: Settings, batch_id: int, console: Console, show_sql: bool = True) -> None:
    """Run the seed's monitoring and support queries for the batch and print each with its rows."""
    with _database(settings) as database, database.connect() as conn:
        outcomes = [monitoring.run_query(conn, q, batch_id) for q in monitoring.ALL_QUERIES]
    section = None
    for res in outcomes:
        if res.query.section != section:
            section = res.query.section
            console.rule(f"[bold]{section}[/]")
        if show_sql:
            console.print(Syntax(res.sql.rstrip(), "sql", theme="ansi_dark", background_color="default"))
        console.print(_result_table(res))


@app.command()
@_handles_errors
def monitor(ctx: typer.Context, batch: Annotated[int, typer.Argument(help="batch id")],
            sql: Annotated[bool, typer.Option("--sql/--no-sql", help="print each query before its rows")] = True) -> None:
    """The seed's "Monitor These Metrics" and "Support" SQL for this batch, run unchanged."""
    print_monitoring(_settings(ctx), batch, make_console(), show_sql=sql)



def main() -> None:  # pragma: no cover - console script
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
