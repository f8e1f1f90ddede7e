"""The seed's "Test 4" plumbing figures, as ratios to the raw limits measured in the same run.

A large batch (default 10,000 files; `--files 100000` for the scale run) through the tracker and six
stage services as separate processes with `passthrough` engines (no audio or LLM work: this measures
Kafka hand-off, the tracker's DB write path and the logging rules, not models). Right before it, on
the same broker, a bare librdkafka relay moves the same number of messages of the same sizes through
the same 7 hops (bench/relay.py); after it, a plain batched INSERT/UPDATE loop writes the batch's rows
again (bench/dbraw.py). Prints pipeline files/s against the relay, the tracker's rows/s against the
plain loop, DB transactions per 100 events, time per 10,000 files across the run, peak RSS and CPU of
every service, the batchExecutionLog rows against the seed's rule and the rows per table; and the CPU
ceiling: the CPU all processes and local servers spent per file, so the most files/s these cores could do
(and that as a share of the relay), which says whether a ratio target can be met on this machine at all.

    .venv/bin/python -m bench.throughput --files 10000
    .venv/bin/python -m bench.throughput --files 100000 --no-relay --no-db-raw
    .venv/bin/python -m bench.throughput --files 100000 --no-relay --no-db-raw --delay-ms 4   # stage-paced
    .venv/bin/python -m bench.throughput --files 30000 --no-relay --no-db-raw --delay-ms 4 --slow-stage stt
    STAGE_MAX_AHEAD=0 .venv/bin/python -m bench.throughput ...   # the same without backpressure
    .venv/bin/python -m bench.throughput --files 10000 --security-cost --rounds 3   # PLAINTEXT vs SASL_SSL + ACLs

`--security-cost` runs the same batch on two private brokers started by scripts/kafka.sh (same heap,
free ports), one PLAINTEXT and one with KAFKA_SECURITY=sasl_ssl (TLS, SCRAM-SHA-512, per-service
principals and ACLs), alternating for `--rounds`, and prints files/s of each and the cost of security.
"""

from __future__ import annotations

import argparse
import csv
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from confluent_kafka import Consumer
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from bench.dbraw import plain_loop, stored_rows
from bench.relay import run_relay
from cofi.db import make_engine, migrate
from cofi.devtools.pipeline import REPO, Pipeline, free_port, produce
from cofi.ops.admin import delete_topics, ensure_topics, kafka_security
from cofi.pipeline import events
from cofi.pipeline.acls import SUBMITTER
from cofi.pipeline.codec import get_codec
from cofi.pipeline.kafka import consumer_config
from cofi.pipeline.topics import Topics, stage_plan
from cofi.settings import Settings

BATCH = 10_000_001
PLAN = stage_plan()  # the stages a batch without --redact runs
STEP = 10_000  # the seed's batch size: time per STEP files completed


def proc_figures(pid: int) -> tuple[float, float]:
    """(peak RSS in MB, CPU seconds) of a live process."""
    rss = 0.0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            rss = int(line.split()[1]) / 1024
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()
    return rss, (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tracker_metrics(port: int) -> dict[str, float]:
    """DB transactions, seconds inside them, and events applied, from the tracker's /metrics."""
    out = {"transactions": 0.0, "db_seconds": 0.0, "events": 0.0}
    body = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    for fam in text_string_to_metric_families(body):
        for s in fam.samples:
            if s.name == "cofi_tracker_write_seconds_count":
                out["transactions"] += s.value
            elif s.name == "cofi_tracker_write_seconds_sum":
                out["db_seconds"] += s.value
            elif s.name == "cofi_tracker_events_total":
                out["events"] += s.value
    return out


def server_pids() -> dict[str, list[int]]:
    """The servers `make servers` started from this checkout (MariaDB, the Kafka brokers), to show their CPU."""
    out: dict[str, list[int]] = {"mariadb": [], "kafka": []}
    ours = str(REPO / ".local").encode()
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if ours not in cmd.replace(ours + b"/kafka/libs", b""):  # its config, not only our jars (private brokers)
            continue
        if b"mariadbd" in cmd.split(b" ")[0] or b"mysqld" in cmd.split(b" ")[0]:
            out["mariadb"].append(int(d.name))
        elif b"kafka.Kafka" in cmd:
            out["kafka"].append(int(d.name))
    return out


def servers_cpu(pids: dict[str, list[int]]) -> dict[str, float]:
    cpu: dict[str, float] = {}
    for name, ps in pids.items():
        cpu[name] = 0.0
        for pid in ps:
            try:
                cpu[name] += proc_figures(pid)[1]
            except OSError:
                pass
    return cpu


@dataclass
class Progress:
    """When the batch's completed count crossed each multiple of STEP, and each stage's done count."""

    t0: float
    tracker_pid: int
    marks: list[float] = field(default_factory=list)
    cpu_marks: list[float] = field(default_factory=list)  # the tracker's CPU seconds: at the start, at each mark
    stage_marks: dict[str, list[float]] = field(default_factory=dict)
    ahead: int = 0  # most files the first stage had finished and the last not yet (work in progress)

    def sample(self, db: Engine) -> str | None:
        with db.connect() as c:
            row = c.execute(text("SELECT status, completedFiles FROM batchStatus WHERE id = :b"), {"b": BATCH}).first()
            counts = dict(c.execute(text("SELECT name, n FROM batchFileCounts WHERE batchId = :b"), {"b": BATCH}).all())
        now = time.monotonic() - self.t0
        if row is None:
            return None
        while row[1] >= STEP * (len(self.marks) + 1):
            self.marks.append(now)
            self.cpu_marks.append(proc_figures(self.tracker_pid)[1])
        self.ahead = max(self.ahead, int(counts.get(f"done:{PLAN[0]}", 0)) - int(counts.get(f"done:{PLAN[-1]}", 0)))
        for s in PLAN:
            marks = self.stage_marks.setdefault(s, [])
            while int(counts.get(f"done:{s}", 0)) >= STEP * (len(marks) + 1):
                marks.append(now)
        return str(row[0])


class DoneCounter(threading.Thread):
    """Times at which each multiple of STEP files was committed on `stage.done` (what the stage workers
    finished, before the tracker records it)."""

    def __init__(self, settings: Settings, t0: float, worker_pids: list[int]) -> None:
        super().__init__(daemon=True)
        self.consumer = Consumer(consumer_config(settings, f"{settings.topic_prefix}-done-counter"))
        self.consumer.subscribe([Topics(settings.topic_prefix).done])
        self.t0, self.count, self.pids = t0, 0, worker_pids
        self.marks: list[float] = []
        self.cpu_marks = [sum(proc_figures(p)[1] for p in worker_pids)]  # the workers' CPU seconds: start, marks
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            self.count += sum(m.error() is None for m in self.consumer.consume(1000, 0.2))
            while self.count >= STEP * (len(self.marks) + 1):
                self.marks.append(time.monotonic() - self.t0)
                self.cpu_marks.append(sum(proc_figures(p)[1] for p in self.pids))
        self.consumer.close()


def per_step(marks: list[float]) -> list[float]:
    return [b - a for a, b in zip([0.0, *marks], marks, strict=False)]


def spread(steps: list[float]) -> str:
    """max/min of the steps after the first (it also holds the intake and the pipeline's fill), and of the
    steady ones (nor the last: the drain, when the stages ahead have finished and their CPU is free)."""
    if len(steps) <= 2:
        return f"max/min {max(steps) / min(steps):.2f}"
    inner, steady = steps[1:], steps[1:-1]
    out = f"max/min {max(inner) / min(inner):.2f} after the first"
    return out + (f", {max(steady) / min(steady):.2f} steady (nor the last)" if len(steady) >= 2 else "")


def run_pipeline(settings: Settings, work: Path, url: str, n: int, timeout: float,
                 kafka_secrets: Path | None = None, submitter: Settings | None = None, delay_ms: int = 0,
                 slow: str | None = None) -> dict:
    """The batch through the tracker and six passthrough stages; `kafka_secrets`: every service logs in as its
    own principal (`settings` are then the admin's, `submitter` the CLI's); `delay_ms`: each stage's engine
    takes that long per file (the stages, not the tracker, set the pace, as real engines do); `slow`: only
    that stage does (the others run ahead of it as far as backpressure lets them)."""
    manifest = work / "manifest.csv"
    with open(manifest, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "clientCode"])
        for i in range(n):
            w.writerow([f"/calls/call{i:06d}.wav", f"C{i % 97}"])
    port = free_port()
    env = {"tracker": {"METRICS_PORT": str(port)}, **{s: {"PASSTHROUGH_DELAY_MS": str(delay_ms)} for s in PLAN if delay_ms and slow in (None, s)}}
    with Pipeline(settings, work, env, kafka_secrets=kafka_secrets) as pipe:
        pipe.start()
        pipe.wait_started(120)
        start = {"eventId": events.new_event_id(), "batchId": BATCH, "submittedAt": events.now(),
                 "manifest": str(manifest)}
        db = make_engine(url)
        pids = {name: p.proc.pid for name, p in pipe.procs.items() if p.proc is not None}
        progress = Progress(time.monotonic(), pids["tracker"], cpu_marks=[proc_figures(pids["tracker"])[1]])
        counter = DoneCounter(settings, progress.t0, [pid for name, pid in pids.items() if name != "tracker"])
        counter.start()
        servers = server_pids()
        servers_before = servers_cpu(servers)
        produce(submitter or settings, Topics(settings.topic_prefix).batch_start,
                [(str(BATCH), get_codec().encode("BatchStart", start))])
        status = None
        while time.monotonic() - progress.t0 < timeout and status not in ("Completed", "Failed", "Rejected"):
            time.sleep(0.5)
            status = progress.sample(db)
        elapsed = time.monotonic() - progress.t0
        procs = {name: proc_figures(p.proc.pid) for name, p in pipe.procs.items()
                 if p.proc is not None and p.proc.poll() is None}
        procs.update({f"{name}*": (0.0, cpu - servers_before[name]) for name, cpu in servers_cpu(servers).items()})
        metrics = tracker_metrics(port)
        counter.stop.set()
        pipe.terminate_all(120)
    return {"status": status, "elapsed": elapsed, "progress": progress, "procs": procs, "metrics": metrics, "db": db,
            "done_marks": counter.marks, "done_cpu": counter.cpu_marks}


@contextmanager
def fresh_run(base: Settings, db_server: str, progress_interval: int, **update: object) -> Iterator[tuple[Settings, str, Path]]:
    """(settings, database URL, work folder) of a run on fresh topics and a fresh database, both removed after."""
    prefix = f"bench{uuid.uuid4().hex[:8]}"
    server = create_engine(db_server)
    dbname = f"cofi_test_{prefix}"
    with server.begin() as c:
        c.execute(text(f"CREATE DATABASE `{dbname}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"))
    url = make_url(db_server).set(database=dbname).render_as_string(hide_password=False)
    work = Path(tempfile.mkdtemp(prefix="cofi-bench-"))
    settings = base.model_copy(update={
        "database_url": url, "topic_prefix": prefix, "artifact_root": work / "artifacts",
        "log_file_start_events": False, "progress_update_interval": progress_interval,
        "commit_every_messages": 500, **update})
    try:
        migrate(url)
        ensure_topics(settings, timeout_s=60)
        yield settings, url, work
    finally:
        delete_topics(settings)
        with server.begin() as c:
            c.execute(text(f"DROP DATABASE IF EXISTS `{dbname}`"))
        server.dispose()


def security_cost(args: argparse.Namespace) -> None:
    """The same batch over PLAINTEXT and over SASL_SSL with ACLs, each on a private broker, alternating."""
    from tests.support.recovery import PrivateKafka
    from tests.support.secure_kafka import SecureKafka

    rates: dict[str, list[float]] = {"PLAINTEXT": [], "SASL_SSL": []}
    for r in range(args.rounds):
        for kind in ("PLAINTEXT", "SASL_SSL"):
            broker = SecureKafka() if kind == "SASL_SSL" else PrivateKafka()
            broker.env["KAFKA_HEAP_OPTS"] = "-Xms512m -Xmx512m"
            try:
                broker.start()
                secure = isinstance(broker, SecureKafka)
                base = broker.settings() if secure else Settings(kafka_bootstrap_servers=broker.bootstrap)
                with fresh_run(base, args.db, args.progress_interval) as (settings, url, work):
                    if secure:
                        kafka_security(settings, broker.secrets)
                        submitter = broker.settings(SUBMITTER).model_copy(update={"topic_prefix": settings.topic_prefix})
                        run = run_pipeline(settings, work, url, args.files, args.timeout, broker.secrets, submitter)
                    else:
                        run = run_pipeline(settings, work, url, args.files, args.timeout)
                    run["db"].dispose()
            finally:
                broker.remove()
            rates[kind].append(args.files / run["elapsed"])
            print(f"round {r + 1} {kind:<9}  {run['status']}  {run['elapsed']:6.1f} s  {rates[kind][-1]:6.0f} files/s")
    plain = sum(rates["PLAINTEXT"]) / args.rounds
    secure_rate = sum(rates["SASL_SSL"]) / args.rounds
    print(f"\n{args.files} files, passthrough engines, tracker + 6 stage processes, mean of {args.rounds} round(s):")
    print(f"PLAINTEXT                      {plain:6.0f} files/s")
    print(f"SASL_SSL (TLS, SCRAM, ACLs)    {secure_rate:6.0f} files/s   ({(1 - secure_rate / plain) * 100:+.0f} % cost)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=10_000)
    ap.add_argument("--progress-interval", type=int, default=100)
    ap.add_argument("--kafka", default="localhost:9092")
    ap.add_argument("--db", default="mysql+pymysql://cofi:cofi@127.0.0.1:3306/")
    ap.add_argument("--partitions", type=int, default=6)
    ap.add_argument("--replication", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=3600)
    ap.add_argument("--delay-ms", type=int, default=0,
                    help="each stage's engine takes this long per file (a stage sets the pace, not the tracker)")
    ap.add_argument("--slow-stage", choices=PLAN, help="--delay-ms in this stage only (backpressure holds the ones before it)")
    ap.add_argument("--no-relay", action="store_true", help="skip the raw broker relay")
    ap.add_argument("--no-db-raw", action="store_true", help="skip the plain INSERT/UPDATE loop")
    ap.add_argument("--security-cost", action="store_true", help="PLAINTEXT vs SASL_SSL on private brokers")
    ap.add_argument("--rounds", type=int, default=2, help="--security-cost: alternating rounds of each")
    args = ap.parse_args()
    if args.security_cost:
        security_cost(args)
        return
    n = args.files
    base = Settings(kafka_bootstrap_servers=args.kafka, topic_partitions=args.partitions,
                    topic_replication=args.replication)
    with fresh_run(base, args.db, args.progress_interval) as (settings, url, work):
        relay = {} if args.no_relay else {eos: run_relay(settings, n, eos=eos) for eos in (True, False)}
        run = run_pipeline(settings, work, url, n, args.timeout, delay_ms=args.delay_ms, slow=args.slow_stage)
        db: Engine = run["db"]
        rate = n / run["elapsed"]
        with db.connect() as c:
            rows = {t: c.execute(text(f"SELECT COUNT(*) FROM {t}")).scalar() for t in
                    ("fileDistribution", "processing_logs", "batchExecutionLog", "auditResult", "batchFileCounts")}
            connections = c.execute(text("SHOW STATUS LIKE 'Threads_connected'")).all()[0][1]
        m = run["metrics"]
        stored = stored_rows(db, BATCH)
        where = f"in {args.slow_stage}" if args.slow_stage else "in each stage"
        delay = f", {args.delay_ms} ms per file {where}" if args.delay_ms else ""
        print(f"files                   {n:,} in one batch ({run['status']}); passthrough engines (plumbing only{delay}); "
              f"{args.partitions} partitions, replication {args.replication}")
        print(f"pipeline                {run['elapsed']:.1f} s, {rate:.0f} files/s through 6 stages + tracker")
        print(f"work in progress        at most {run['progress'].ahead:,} files done by {PLAN[0]} and not yet by "
              f"{PLAN[-1]} (as the tracker recorded them; STAGE_MAX_AHEAD={settings.stage_max_ahead})")
        for eos, raw in relay.items():
            kind = "exactly-once relay" if eos else "plain relay       "
            print(f"raw broker, {kind} {raw:.0f} files/s through the same 7 hops, same sizes, just before;"
                  f" pipeline/raw = {rate / raw:.2f}")
        per_100 = 100 * m["transactions"] / max(1.0, m["events"])
        print(f"tracker DB              {m['transactions']:.0f} transactions for {m['events']:.0f} events = "
              f"{per_100:.2f} per 100 events; {stored:,} rows stored in {m['db_seconds']:.1f} s inside transactions"
              f" = {stored / m['db_seconds']:.0f} rows/s")
        if not args.no_db_raw:
            chunk = max(1, round(m["events"] / max(1.0, m["transactions"]) / (len(PLAN) + 1)))
            plain = plain_loop(db, args.db, BATCH, chunk)
            print(f"plain INSERT/UPDATE     same {plain.rows:,} rows, {chunk} files per transaction "
                  f"({plain.transactions} transactions): {plain.seconds:.1f} s = {plain.rows_per_s:.0f} rows/s; "
                  f"tracker/plain = {stored / m['db_seconds'] / plain.rows_per_s:.2f}")
            db_bound = plain.rows_per_s * n / stored  # files/s if writing their rows were the only work
            vs = f" = {db_bound / relay[True]:.2f} of the exactly-once relay" if True in relay else ""
            print(f"database bound          {stored / n:.1f} rows per file at the plain loop's rate: at most "
                  f"{db_bound:.0f} files/s{vs}, with nothing else running")
        progress: Progress = run["progress"]
        if n >= 2 * STEP:
            series = {"on stage.done (workers)": run["done_marks"], "  workers' CPU": run["done_cpu"],
                      "recorded Completed": progress.marks, "  tracker's CPU": progress.cpu_marks}
            print(f"time per {STEP:,} files (the first also holds the intake of the batch and the pipeline's fill):")
            for what, marks in series.items():
                steps = [b - a for a, b in zip(marks, marks[1:], strict=False)] if "CPU" in what else per_step(marks)
                print(f"  {what:<25} {' '.join(f'{x:.0f}' for x in steps)} s; {spread(steps)}")
            for s, marks in progress.stage_marks.items():
                st = per_step(marks)
                print(f"  {s:<8} done:        {' '.join(f'{x:.0f}' for x in st)} s; {spread(st)}")
        expected_log = len(PLAN) * (1 + n // args.progress_interval + 1) + 1
        print(f"batchExecutionLog       {rows['batchExecutionLog']:,} rows (rule: {len(PLAN)} x (1 + "
              f"{n // args.progress_interval:,} + 1) + 1 = {expected_log:,})")
        print(f"processing_logs         {rows['processing_logs']:,} rows (expected {n * len(PLAN):,})")
        print(f"fileDistribution        {rows['fileDistribution']:,} rows; auditResult {rows['auditResult']:,}; "
              f"batchFileCounts {rows['batchFileCounts']}")
        print(f"db connections in use   {connections} (server-wide)")
        for name, (rss, cpu) in run["procs"].items():
            mem = f"peak RSS {rss:4.0f} MB" if not name.endswith("*") else "(server)         "
            print(f"{name:<8} {mem}, CPU {cpu:6.1f} s ({1000 * cpu / n:.2f} ms per file)")
        print(f"* local servers on this machine, CPU during the pipeline run; {os.cpu_count()} cores x "
              f"{run['elapsed']:.0f} s = {os.cpu_count() * run['elapsed']:.0f} CPU s available")
        cores, total = os.cpu_count() or 1, sum(cpu for _, cpu in run["procs"].values())
        ceiling = cores * n / total  # every core busy all the time on this work, nothing else
        vs_relay = f" = {ceiling / relay[True]:.2f} of the exactly-once relay" if True in relay else ""
        print(f"CPU ceiling             {1000 * total / n:.2f} ms of CPU per file, all processes above together: "
              f"{cores} cores do at most {ceiling:.0f} files/s{vs_relay}; the run used "
              f"{total / (cores * run['elapsed']):.0%} of them")


if __name__ == "__main__":
    main()
