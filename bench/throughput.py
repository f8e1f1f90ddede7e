"""The seed's "Test 4" plumbing figures: a large batch (default 10,000 files) through the tracker
and six stage services as separate processes, with `passthrough` engines (no audio or LLM work:
this measures Kafka hand-off, the tracker's DB write path and the logging rules, not models).

Prints time to finish, files/s, the batchExecutionLog row count against the seed's rule, the rows
per table, peak memory of every process and the DB connections in use.

    .venv/bin/python -m bench.throughput --files 10000
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from cofi.db import make_engine, migrate
from cofi.devtools.pipeline import SERVICES, ServiceProcess
from cofi.ops.admin import delete_topics, ensure_topics
from cofi.pipeline import events
from cofi.pipeline.codec import get_codec
from cofi.pipeline.kafka import make_producer
from cofi.pipeline.stages import STAGES
from cofi.pipeline.topics import Topics, stage_plan
from cofi.settings import Settings


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=10_000)
    ap.add_argument("--progress-interval", type=int, default=100)
    ap.add_argument("--kafka", default="localhost:9092")
    ap.add_argument("--db", default="mysql+pymysql://cofi:cofi@127.0.0.1:3306/")
    ap.add_argument("--timeout", type=float, default=1800)
    args = ap.parse_args()

    prefix = f"bench{uuid.uuid4().hex[:8]}"
    server = create_engine(args.db)
    dbname = f"cofi_test_{prefix}"
    with server.begin() as c:
        c.execute(text(f"CREATE DATABASE `{dbname}`"))
    url = make_url(args.db).set(database=dbname).render_as_string(hide_password=False)
    work = Path(tempfile.mkdtemp(prefix="cofi-bench-"))
    settings = Settings(kafka_bootstrap_servers=args.kafka, database_url=url, topic_prefix=prefix,
                        artifact_root=work / "artifacts", log_file_start_events=False,
                        progress_update_interval=args.progress_interval, commit_every_messages=500)
    procs: list[ServiceProcess] = []
    try:
        migrate(url)
        ensure_topics(settings)
        manifest = work / "manifest.csv"
        with open(manifest, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["file", "clientCode"])
            for i in range(args.files):
                w.writerow([f"/calls/call{i:06d}.wav", f"C{i % 97}"])
        env = {f"{s.upper()}_ENGINE": "passthrough" for s in STAGES}
        procs = [ServiceProcess(name, settings, work, WORKER_INSTANCE="bench", **env).start()
                 for name in SERVICES]
        time.sleep(5)
        batch_id = 10_000_001
        start = {"eventId": events.new_event_id(), "batchId": batch_id, "submittedAt": events.now(),
                 "manifest": str(manifest)}
        p = make_producer(settings)
        p.produce(Topics(prefix).batch_start, key=str(batch_id), value=get_codec().encode("BatchStart", start))
        p.flush(10)
        t0 = time.monotonic()
        db = make_engine(url)
        status = None
        while time.monotonic() - t0 < args.timeout:
            with db.connect() as c:
                status = c.execute(text("SELECT status FROM batchStatus WHERE id = :b"), {"b": batch_id}).scalar()
            if status in ("Completed", "Failed", "Rejected"):
                break
            time.sleep(0.5)
        elapsed = time.monotonic() - t0
        with db.connect() as c:
            rows = {t: c.execute(text(f"SELECT COUNT(*) FROM {t}")).scalar() for t in
                    ("fileDistribution", "processing_logs", "batchExecutionLog", "auditResult")}
            connections = c.execute(text("SHOW STATUS LIKE 'Threads_connected'")).all()[0][1]
        planned = len(stage_plan())  # the stages a batch without --redact runs
        expected_log = planned * (1 + args.files // args.progress_interval + 1) + 1
        print(f"files                  {args.files}")
        print(f"status                 {status}")
        print(f"time to finish         {elapsed:.1f} s  ({args.files / elapsed:.0f} files/s through 6 stages)")
        print(f"batchExecutionLog      {rows['batchExecutionLog']} rows (rule: 6 x (1 + {args.files // args.progress_interval}"
              f" + 1) + 1 = {expected_log})")
        print(f"processing_logs        {rows['processing_logs']} rows (expected {args.files * planned})")
        print(f"fileDistribution       {rows['fileDistribution']} rows")
        print(f"db connections in use  {connections} (server-wide)")
        for proc in procs:
            if proc.proc and proc.proc.poll() is None:
                print(f"peak RSS {proc.name:<8}      {peak_rss_mb(proc.proc.pid):.0f} MB")
    finally:
        for proc in procs:
            if proc.proc and proc.proc.poll() is None:
                proc.terminate(timeout=60)
            proc.stop()
        delete_topics(settings)
        with server.begin() as c:
            c.execute(text(f"DROP DATABASE IF EXISTS `{dbname}`"))


if __name__ == "__main__":
    main()
