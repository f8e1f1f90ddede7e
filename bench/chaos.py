"""Chaos benchmark: one batch through the whole pipeline (every service its own process, passthrough
engines) while a seeded random schedule kills (-9) and restarts services; then the same batch fault-free.

Prints every kill and restart, both times to finish, the exactly-once checks of the chaos run and a
diff of the final tables (fileDistribution, batchStatus, processing_logs, batchExecutionLog,
auditResult) against the fault-free run, which must be empty once timestamps, workers, ids, event
ids and durations are normalized. Each run uses its own topic prefix and database, removed afterwards.

    .venv/bin/python bench/chaos.py                          # 2,000 files, seed 7, 2 ms per file per stage
    .venv/bin/python bench/chaos.py --files 500 --seed 3 --delay-ms 5 --gap 2 6
    .venv/bin/python bench/chaos.py --files 10000 --progress-interval 100 --no-file-start   # the seed's Test 4

Needs the broker and MariaDB (KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL, defaults localhost:9092 and
cofi:cofi@127.0.0.1:3306). Exit status 1 when a check fails or the diff is not empty.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from cofi.db import make_engine, migrate  # noqa: E402
from cofi.devtools.checks import batch_row, exactly_once_problems  # noqa: E402
from cofi.devtools.pipeline import SERVICES, Pipeline, produce  # noqa: E402
from cofi.ops.admin import delete_topics, ensure_topics  # noqa: E402
from cofi.pipeline import events  # noqa: E402
from cofi.pipeline.codec import get_codec  # noqa: E402
from cofi.pipeline.topics import Topics  # noqa: E402
from cofi.settings import Settings  # noqa: E402

BATCH_ID = 424242
TABLES = {  # table -> columns left out of the comparison (besides every timestamp column)
    "fileDistribution": {"id", "worker", "gpu"},
    "batchStatus": set(),
    "processing_logs": {"id", "eventId", "worker", "duration"},
    "batchExecutionLog": {"id"},
    "auditResult": set(),
}
TIMESTAMPS = {"createdAt", "updatedAt", "startedAt", "completedAt", "created_at", "sentAt"}


@dataclass
class Run:
    name: str
    seconds: float = 0.0
    events: list[str] = field(default_factory=list)
    kills: int = 0
    problems: list[str] = field(default_factory=list)
    tables: dict[str, Counter] = field(default_factory=dict)


def batch_start(n: int, seed: int) -> dict[str, Any]:
    """The same BatchStart (event id included) for both runs."""
    return {"eventId": f"chaos-{seed}-{n}", "batchId": BATCH_ID, "submittedAt": events.now(),
            "files": [{"file": f"/calls/chaos/call{i:05d}.wav", "metadata": {"clientCode": f"C{i % 7}"}}
                      for i in range(n)], "skip": []}


def run_once(name: str, args: argparse.Namespace, chaos: bool) -> Run:
    run = Run(name)
    kafka = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "localhost:9092")
    server_url = make_url(os.environ.get("DATABASE_URL", "mysql+pymysql://cofi:cofi@127.0.0.1:3306/cofi"))
    db_name = f"cofi_chaos_{uuid.uuid4().hex[:10]}"
    server = create_engine(server_url.set(database=""))
    with server.begin() as c:
        c.execute(text(f"CREATE DATABASE `{db_name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"))
    url = server_url.set(database=db_name).render_as_string(hide_password=False)
    prefix = f"chaos{uuid.uuid4().hex[:8]}"
    s = Settings(kafka_bootstrap_servers=kafka, database_url=url, topic_prefix=prefix, topic_partitions=6,
                 metrics_port=0, session_timeout_ms=6000, commit_every_messages=100, commit_every_ms=200,
                 artifact_root=Path(tempfile.gettempdir()) / prefix, log_file_start_events=not args.no_file_start,
                 progress_update_interval=args.progress_interval)
    db = make_engine(url)
    log_dir = Path(tempfile.mkdtemp(prefix=f"{prefix}-logs-"))
    ok = False
    try:
        migrate(url)
        ensure_topics(s)
        with Pipeline(s, log_dir, PASSTHROUGH_DELAY_MS=str(args.delay_ms)) as pipe:
            pipe.start()
            start = batch_start(args.files, args.seed)
            t0 = time.monotonic()
            produce(s, Topics(prefix).batch_start, [(str(BATCH_ID), get_codec().encode("BatchStart", start))])
            rng = random.Random(args.seed)
            next_kill = t0 + rng.uniform(*args.gap)
            while True:
                row = batch_row(db, BATCH_ID)
                if row is not None and row["status"] in ("Completed", "Failed"):
                    break
                now = time.monotonic()
                if now - t0 > args.timeout:
                    raise SystemExit(f"{name}: batch not finished after {args.timeout:.0f}s: {row}\n{pipe.logs()}")
                if chaos and now >= next_kill:
                    victim = rng.choice(SERVICES)
                    down = rng.uniform(*args.down)
                    pipe.kill(victim)
                    run.kills += 1
                    run.events.append(f"{now - t0:7.1f}s kill -9 {victim}, restart after {down:.1f}s")
                    time.sleep(down)
                    pipe.restart(victim)
                    next_kill = time.monotonic() + rng.uniform(*args.gap)
                time.sleep(0.2)
            run.seconds = time.monotonic() - t0
            crashed = pipe.exited()
            if crashed:
                run.problems.append(f"services exited on their own: {crashed}")
            codes = pipe.terminate_all()
            if set(codes.values()) != {0}:
                run.problems.append(f"SIGTERM exit codes: {codes}")
        run.problems += exactly_once_problems(s, db, BATCH_ID, args.files)
        run.tables = dump(db, prefix)
        ok = not run.problems
    finally:
        if ok:
            shutil.rmtree(log_dir, ignore_errors=True)
        else:
            print(f"{name}: service logs kept in {log_dir}", flush=True)
        db.dispose()
        delete_topics(s)
        with server.begin() as c:
            c.execute(text(f"DROP DATABASE IF EXISTS `{db_name}`"))
        server.dispose()
    return run


def dump(db: Any, prefix: str) -> dict[str, Counter]:
    """Each table as a multiset of normalized rows (row order is timing, not content)."""
    out = {}
    with db.connect() as c:
        for table, skip in TABLES.items():
            result = c.execute(text(f"SELECT * FROM {table}"))
            cols = list(result.keys())
            rows = Counter()
            for r in result:
                rows[tuple((k, normalize(table, k, v, prefix)) for k, v in zip(cols, r, strict=True)
                           if k not in skip and k not in TIMESTAMPS)] += 1
            out[table] = rows
    return out


def normalize(table: str, col: str, value: Any, prefix: str) -> Any:
    if col == "lastEvent" and value is not None:
        ev = get_codec().decode_as("FileEvent", value)
        ev["eventId"] = ev["eventId"] if ev["emitter"] == events.EMITTER_TRACKER else "*"  # the tracker's are stable
        ev["emittedAt"] = 0
        for res in ev["results"].values():
            if res is not None:
                res["worker"], res["durationMs"] = "*", 0
        return json.dumps(ev, sort_keys=True, default=str)
    if col == "dedupKey" and isinstance(value, str) and value[:3] in ("fs:", "fc:", "fe:"):
        return value[:3] + "*"  # file_start / file_complete / file_error rows are keyed by event id
    if isinstance(value, str):
        return value.replace(prefix, "<prefix>")
    return value


def diff(a: Run, b: Run, limit: int = 5) -> list[str]:
    lines = []
    for table in TABLES:
        only_a, only_b = a.tables[table] - b.tables[table], b.tables[table] - a.tables[table]
        if only_a or only_b:
            lines.append(f"{table}: {sum(only_a.values())} rows only in {a.name}, {sum(only_b.values())} only in "
                         f"{b.name}")
            lines += [f"  - {dict(r)}"[:400] for r in list(only_a)[:limit]]
            lines += [f"  + {dict(r)}"[:400] for r in list(only_b)[:limit]]
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--delay-ms", type=int, default=2, help="PASSTHROUGH_DELAY_MS of every stage")
    ap.add_argument("--gap", type=float, nargs=2, default=(2.0, 5.0), help="seconds between kills (uniform)")
    ap.add_argument("--down", type=float, nargs=2, default=(0.5, 3.0), help="seconds a victim stays dead")
    ap.add_argument("--timeout", type=float, default=900.0)
    ap.add_argument("--progress-interval", type=int, default=1, help="PROGRESS_UPDATE_INTERVAL (seed Test 4: 100)")
    ap.add_argument("--no-file-start", action="store_true", help="LOG_FILE_START_EVENTS=false (seed Test 4)")
    args = ap.parse_args()
    print(f"chaos: {args.files} files, seed {args.seed}, {args.delay_ms} ms per file per stage, kill every "
          f"{args.gap[0]:g}-{args.gap[1]:g}s, down {args.down[0]:g}-{args.down[1]:g}s; services: {', '.join(SERVICES)}; "
          f"PROGRESS_UPDATE_INTERVAL={args.progress_interval} LOG_FILE_START_EVENTS={not args.no_file_start}",
          flush=True)
    chaos = run_once("chaos", args, chaos=True)
    for line in chaos.events:
        print("  " + line)
    print(f"chaos run: {chaos.kills} kills, {chaos.kills} restarts, finished in {chaos.seconds:.1f}s", flush=True)
    calm = run_once("fault-free", args, chaos=False)
    print(f"fault-free run: finished in {calm.seconds:.1f}s")
    print(f"slowdown under chaos: {chaos.seconds / calm.seconds:.2f}x")
    ok = True
    for run in (chaos, calm):
        if run.problems:
            ok = False
            print(f"{run.name}: exactly-once checks FAILED:\n  " + "\n  ".join(run.problems))
        else:
            print(f"{run.name}: exactly-once checks passed (each file once per stage topic and on done; one "
                  "processing_logs row per file and stage; every flag set; log rows as configured)")
    lines = diff(calm, chaos)
    rows = {t: sum(c.values()) for t, c in calm.tables.items()}
    print(f"table diff fault-free vs chaos ({', '.join(f'{t} {n}' for t, n in rows.items())} rows): "
          + ("EMPTY" if not lines else f"{len(lines)} lines"))
    for line in lines:
        print("  " + line)
    return 0 if ok and not lines else 1


if __name__ == "__main__":
    sys.exit(main())
