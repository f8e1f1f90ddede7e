"""Failure isolation, measured: a good batch alone, then the same good batch with a hostile one in flight.

Both runs use the tracker and six stage services as processes (passthrough engines; lid runs the hostile
engine of `cofi.devtools.hostile`, which misbehaves only on files whose names ask for it). The hostile
load: a batch whose files hang past the lid deadline, raise, return invalid, unencodable or too-large
results; FileFailed events the database refuses (the tracker falls back to one message at a time);
undecodable FileEvents on stage topics; undecodable, newer-schema and unusable BatchStarts; undecodable
commands. Prints the good batch's wall time alone and beside the hostile one, whether its tables are
exact both times, and what became of the hostile input.

    .venv/bin/python -m bench.isolation --files 2000
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from cofi.db import make_engine
from cofi.devtools import hostile
from cofi.devtools.checks import batch_row, exactly_once_problems, read_messages, rows
from cofi.devtools.pipeline import Pipeline, produce, scratch
from cofi.pipeline import events
from cofi.pipeline.codec import get_codec
from cofi.pipeline.stages import STAGES
from cofi.pipeline.topics import Topics, stage_plan
from cofi.settings import Settings

GOOD, HOSTILE = 20_000_001, 20_000_002
PLAN = stage_plan()  # a batch's default stages
MARKS = ["hang", "bug", "badresult", "noencode", "huge", "dberr"]


def start_record(batch_id: int, files: list[str], **extra: Any) -> dict[str, Any]:
    return {"eventId": events.new_event_id(), "batchId": batch_id, "submittedAt": events.now(),
            "files": [{"file": f, "metadata": {}} for f in files], **extra}


def hostile_files(n: int, hangs: int) -> list[str]:
    """n files, one in three misbehaving (at most `hangs` of them hang), the rest good."""
    out, hung = [], 0
    for i in range(n):
        mark = MARKS[(i // 3) % len(MARKS)] if i % 3 == 0 else "ok"
        if mark == "hang":
            hung += 1
            mark = "hang" if hung <= hangs else "bug"
        out.append(f"/calls/hostile/{i:05d}-{mark}.wav")
    return out


def send_hostile(s: Settings, files: list[str], parts: set[str]) -> None:
    codec, topics = get_codec(), Topics(s.topic_prefix)
    send = lambda topic, pairs: produce(s, topic, pairs)  # noqa: E731
    send(topics.batch_start, [(str(HOSTILE), codec.encode("BatchStart", start_record(HOSTILE, files)))])
    if "messages" not in parts:
        return
    send(topics.batch_start, [(str(30_000_000 + i), hostile.garbage(i)) for i in range(20)]
         + [(str(30_000_100 + i), hostile.from_the_future(i)) for i in range(5)]
         + [(str(30_000_200), codec.encode("BatchStart", start_record(30_000_200, ["/c/a.wav"], trades=[{
             "tradeId": "T", "clientCode": "C", "symbol": "S", "side": "buy", "quantity": math.nan, "price": 1.0,
             "tradeTime": "2026-01-15T09:00:00", "phone": None}])))])
    send(topics.batch_control, [(str(HOSTILE), hostile.garbage(100 + i)) for i in range(10)])
    for i, stage in enumerate(STAGES):  # undecodable events keyed by hostile files: the workers fail them
        send(topics.stage(stage), [(events.file_id(HOSTILE, f), hostile.garbage(200 + i))
                                   for f in files if f.endswith(f"{i:1d}-ok.wav")][:10])
    if "dberr" in parts:
        send(topics.failed, [(events.file_id(HOSTILE, f), hostile.refused_failure(codec, HOSTILE, f, "lid"))
                             for f in files if f.endswith("dberr.wav")])


def wait_final(db: Engine, batch_id: int, timeout: float) -> float:
    """Seconds from now until the batch is Completed/Failed (polled every 50 ms)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        row = batch_row(db, batch_id)
        if row is not None and row["status"] in ("Completed", "Failed", "Cancelled", "Rejected"):
            return time.monotonic() - t0
        time.sleep(0.05)
    raise SystemExit(f"batch {batch_id} not finished within {timeout:.0f}s: {batch_row(db, batch_id)}")


def run(args: argparse.Namespace, with_hostile: bool) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="cofi-bench-"))
    base = Settings(kafka_bootstrap_servers=args.kafka, topic_prefix=f"bench{uuid.uuid4().hex[:8]}",
                    topic_partitions=6, artifact_root=work / "artifacts", log_file_start_events=False,
                    progress_update_interval=100, commit_every_messages=200, max_event_bytes=1024 * 1024)
    out: dict[str, Any] = {}
    with scratch(base, args.db) as s:
        db = make_engine(s.database_url)
        env = {"lid": {"LID_ENGINE": "hostile", "HOSTILE_SLOW": "0", "STAGE_CONCURRENCY": "4",
                       "LID_FILE_DEADLINE_S": str(args.deadline), "CARRY_AFTER_S": "0.5"}}
        try:
            with Pipeline(s, work, env, modules={"lid": "cofi.devtools.hostile"},
                          MAX_EVENT_BYTES=str(s.max_event_bytes)) as pipe:
                pipe.start()
                pipe.wait_started()
                pids = pipe.pids()
                good = [f"/calls/good/call{i:06d}.wav" for i in range(args.files)]
                if with_hostile:
                    send_hostile(s, hostile_files(args.hostile_files, args.hangs), set(args.parts.split(",")))
                produce(s, Topics(s.topic_prefix).batch_start, [(str(GOOD), get_codec().encode(
                    "BatchStart", start_record(GOOD, good)))])
                out["good_s"] = wait_final(db, GOOD, args.timeout)
                if with_hostile:
                    wait_final(db, HOSTILE, args.timeout)
                    out["hostile"] = Counter(f"{st}{'@' + fs if fs else ''}" for st, fs in rows(
                        db, "SELECT status, failedStage FROM fileDistribution WHERE batchId = :b", b=HOSTILE))
                    out["rejected"] = rows(db, "SELECT COUNT(*) FROM batchStatus WHERE status = 'Rejected'")[0][0]
                out["same_pids"] = pipe.pids() == pids and pipe.exited() == {}
                pipe.terminate_all()
            out["problems"] = exactly_once_problems(s, db, GOOD, args.files, PLAN)
            out["dead_letters"] = len(read_messages(s, Topics(s.topic_prefix).dead_letter)) if with_hostile else 0
        finally:
            db.dispose()
    return out


def _line(label: str, runs: list[dict[str, Any]], median: float) -> str:
    each = ", ".join(f"{r['good_s']:.1f}" for r in runs)
    return (f"  {label:22s} {median:6.1f} s ({each})   tables exact: {all(r['problems'] == [] for r in runs)}   "
            f"same pids: {all(r['same_pids'] for r in runs)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=2000, help="files of the good batch")
    ap.add_argument("--hostile-files", type=int, default=300)
    ap.add_argument("--hangs", type=int, default=2, help="hostile files whose engine call hangs")
    ap.add_argument("--deadline", type=float, default=2.0, help="LID_FILE_DEADLINE_S")
    ap.add_argument("--kafka", default="localhost:9092")
    ap.add_argument("--db", default="mysql+pymysql://cofi:cofi@127.0.0.1:3306/")
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--parts", default="messages,dberr",
                    help="hostile load besides the hostile batch: messages (undecodable and unusable ones), dberr "
                         "(FileFailed events the database refuses)")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each kind, alternated; medians are printed")
    args = ap.parse_args()
    alones, besides = [], []
    for _ in range(args.repeat):
        alones.append(run(args, with_hostile=False))
        besides.append(run(args, with_hostile=True))
    alone_s = statistics.median(r["good_s"] for r in alones)
    beside_s = statistics.median(r["good_s"] for r in besides)
    ratio = beside_s / alone_s
    beside = besides[-1]
    print(f"good batch, {args.files} files, six stages (passthrough; lid hostile engine, deadline {args.deadline:g}s), "
          f"median of {args.repeat}")
    print(_line("alone:", alones, alone_s))
    print(_line("beside a hostile one:", besides, beside_s) + f"   ({ratio:.2f}x, {100 * (ratio - 1):+.0f}%)")
    print(f"  hostile batch ({args.hostile_files} files): {json.dumps(dict(sorted(beside['hostile'].items())))}")
    print(f"  other hostile BatchStarts rejected: {beside['rejected']}   dead letters: {beside['dead_letters']}")
    for problem in [p for r in alones + besides for p in r["problems"]]:
        print(f"  PROBLEM: {problem}")

if __name__ == "__main__":
    main()
