"""The seed's "Test 4" plumbing figures: a large batch (default 10,000 files) through the tracker
and six stage services as separate processes, with `passthrough` engines (no audio or LLM work:
this measures Kafka hand-off, the tracker's DB write path and the logging rules, not models).

Prints time to finish, files/s, the batchExecutionLog row count against the seed's rule, the rows
per table, peak memory of every process and the DB connections in use.

    .venv/bin/python -m bench.throughput --files 10000
    .venv/bin/python -m bench.throughput --files 5000 --security-cost   # PLAINTEXT vs SASL_SSL + ACLs

`--security-cost` runs the same batch on two private brokers started by scripts/kafka.sh (same heap,
free ports), one PLAINTEXT and one with KAFKA_SECURITY=sasl_ssl (TLS, SCRAM-SHA-512, per-service
principals and ACLs), alternating for `--rounds`, and prints files/s of each and the cost of security.
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from cofi.db import make_engine, migrate
from cofi.devtools.pipeline import SERVICES, ServiceProcess, principal_env
from cofi.ops.admin import delete_topics, ensure_topics, kafka_security
from cofi.pipeline import events
from cofi.pipeline.acls import SUBMITTER
from cofi.pipeline.codec import get_codec
from cofi.pipeline.kafka import make_producer
from cofi.pipeline.stages import STAGES
from cofi.pipeline.topics import Topics, stage_plan
from cofi.settings import Settings


@dataclass
class Run:
    files: int
    status: str | None
    elapsed_s: float
    rows: dict[str, int] = field(default_factory=dict)
    connections: str = ""
    peak_rss_mb: dict[str, float] = field(default_factory=dict)

    @property
    def files_per_s(self) -> float:
        return self.files / self.elapsed_s


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def run_batch(base: Settings, db_server: str, files: int, progress_interval: int, timeout: float,
              kafka_secrets: Path | None = None, submitter: Settings | None = None) -> Run:
    """One batch of `files` through fresh topics and a fresh database; `kafka_secrets`: every service logs in
    as its own principal (`base` is then the admin's settings, `submitter` the CLI's)."""
    prefix = f"bench{uuid.uuid4().hex[:8]}"
    server = create_engine(db_server)
    dbname = f"cofi_test_{prefix}"
    with server.begin() as c:
        c.execute(text(f"CREATE DATABASE `{dbname}`"))
    url = make_url(db_server).set(database=dbname).render_as_string(hide_password=False)
    work = Path(tempfile.mkdtemp(prefix="cofi-bench-"))
    update = {"database_url": url, "topic_prefix": prefix, "artifact_root": work / "artifacts",
              "log_file_start_events": False, "progress_update_interval": progress_interval,
              "commit_every_messages": 500}
    settings = base.model_copy(update=update)
    procs: list[ServiceProcess] = []
    try:
        migrate(url)
        ensure_topics(settings)
        if kafka_secrets is not None:
            kafka_security(settings, kafka_secrets)
        manifest = work / "manifest.csv"
        with open(manifest, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["file", "clientCode"])
            for i in range(files):
                w.writerow([f"/calls/call{i:06d}.wav", f"C{i % 97}"])
        env = {f"{s.upper()}_ENGINE": "passthrough" for s in STAGES}
        procs = [ServiceProcess(name, settings, work, WORKER_INSTANCE="bench", **env,
                                **principal_env(kafka_secrets, name)).start() for name in SERVICES]
        time.sleep(5)
        batch_id = 10_000_001
        start = {"eventId": events.new_event_id(), "batchId": batch_id, "submittedAt": events.now(),
                 "manifest": str(manifest)}
        p = make_producer((submitter or base).model_copy(update=update))
        p.produce(Topics(prefix).batch_start, key=str(batch_id), value=get_codec().encode("BatchStart", start))
        p.flush(10)
        t0 = time.monotonic()
        db = make_engine(url)
        status = None
        while time.monotonic() - t0 < timeout:
            with db.connect() as c:
                status = c.execute(text("SELECT status FROM batchStatus WHERE id = :b"), {"b": batch_id}).scalar()
            if status in ("Completed", "Failed", "Rejected"):
                break
            time.sleep(0.5)
        run = Run(files, status, time.monotonic() - t0)
        with db.connect() as c:
            run.rows = {t: c.execute(text(f"SELECT COUNT(*) FROM {t}")).scalar() for t in
                        ("fileDistribution", "processing_logs", "batchExecutionLog", "auditResult")}
            run.connections = c.execute(text("SHOW STATUS LIKE 'Threads_connected'")).all()[0][1]
        db.dispose()
        run.peak_rss_mb = {proc.name: peak_rss_mb(proc.proc.pid) for proc in procs
                           if proc.proc and proc.proc.poll() is None}
        return run
    finally:
        for proc in procs:
            if proc.proc and proc.proc.poll() is None:
                proc.terminate(timeout=60)
            proc.stop()
        delete_topics(settings)
        with server.begin() as c:
            c.execute(text(f"DROP DATABASE IF EXISTS `{dbname}`"))
        server.dispose()


def report(run: Run, progress_interval: int) -> None:
    planned = len(stage_plan())  # the stages a batch without --redact runs
    expected_log = planned * (1 + run.files // progress_interval + 1) + 1
    print(f"files                  {run.files}")
    print(f"status                 {run.status}")
    print(f"time to finish         {run.elapsed_s:.1f} s  ({run.files_per_s:.0f} files/s through 6 stages)")
    print(f"batchExecutionLog      {run.rows['batchExecutionLog']} rows (rule: {planned} x (1 + {run.files // progress_interval}"
          f" + 1) + 1 = {expected_log})")
    print(f"processing_logs        {run.rows['processing_logs']} rows (expected {run.files * planned})")
    print(f"fileDistribution       {run.rows['fileDistribution']} rows")
    print(f"db connections in use  {run.connections} (server-wide)")
    for name, mb in run.peak_rss_mb.items():
        print(f"peak RSS {name:<8}      {mb:.0f} MB")


def security_cost(args: argparse.Namespace) -> None:
    """The same batch over PLAINTEXT and over SASL_SSL with ACLs, each on a private broker, alternating."""
    from tests.support.recovery import PrivateKafka
    from tests.support.secure_kafka import SecureKafka

    figures: dict[str, list[Run]] = {"PLAINTEXT": [], "SASL_SSL": []}
    for r in range(args.rounds):
        for kind in ("PLAINTEXT", "SASL_SSL"):
            broker = SecureKafka() if kind == "SASL_SSL" else PrivateKafka()
            broker.env["KAFKA_HEAP_OPTS"] = "-Xms512m -Xmx512m"
            try:
                broker.start()
                if isinstance(broker, SecureKafka):
                    run = run_batch(broker.settings(), args.db, args.files, args.progress_interval, args.timeout,
                                    kafka_secrets=broker.secrets, submitter=broker.settings(SUBMITTER))
                else:
                    run = run_batch(Settings(kafka_bootstrap_servers=broker.bootstrap), args.db, args.files,
                                    args.progress_interval, args.timeout)
            finally:
                broker.remove()
            figures[kind].append(run)
            print(f"round {r + 1} {kind:<9}  {run.status}  {run.elapsed_s:6.1f} s  {run.files_per_s:6.0f} files/s")
    plain = sum(x.files_per_s for x in figures["PLAINTEXT"]) / args.rounds
    secure = sum(x.files_per_s for x in figures["SASL_SSL"]) / args.rounds
    print(f"\n{args.files} files, passthrough engines, tracker + 6 stage processes, mean of {args.rounds} round(s):")
    print(f"PLAINTEXT                      {plain:6.0f} files/s")
    print(f"SASL_SSL (TLS, SCRAM, ACLs)    {secure:6.0f} files/s   ({(1 - secure / plain) * 100:+.0f} % cost)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=10_000)
    ap.add_argument("--progress-interval", type=int, default=100)
    ap.add_argument("--kafka", default="localhost:9092")
    ap.add_argument("--db", default="mysql+pymysql://cofi:cofi@127.0.0.1:3306/")
    ap.add_argument("--timeout", type=float, default=1800)
    ap.add_argument("--security-cost", action="store_true", help="PLAINTEXT vs SASL_SSL on private brokers")
    ap.add_argument("--rounds", type=int, default=2, help="--security-cost: alternating rounds of each")
    args = ap.parse_args()
    if args.security_cost:
        security_cost(args)
        return
    run = run_batch(Settings(kafka_bootstrap_servers=args.kafka), args.db, args.files, args.progress_interval,
                    args.timeout)
    report(run, args.progress_interval)


if __name__ == "__main__":
    main()
