"""Prints the console's response times on a large passthrough batch (real Kafka + MariaDB):

    PYTHONPATH=$PWD .venv/bin/python -m tests.console.measure_pages --files 5000

Creates and drops its own database and topics; figures only, no assertions."""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from pathlib import Path
from tempfile import TemporaryDirectory

from cofi.db import make_engine
from cofi.ops.admin import delete_topics, ensure_topics
from cofi.settings import Settings
from tests.support.console import ConsoleServer, Pipeline, login
from tests.support.servers import LOCAL_DATABASE, LOCAL_KAFKA, fresh_database
from tests.support.servers import server_url as _server_url
from tests.support.tracker import batch_start, submit, wait_status


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    prefix = f"m{uuid.uuid4().hex[:8]}"
    db_gen = fresh_database(_server_url(LOCAL_DATABASE))
    url = next(db_gen)
    with TemporaryDirectory() as tmp:
        settings = Settings(kafka_bootstrap_servers=LOCAL_KAFKA, database_url=url, topic_prefix=prefix,
                            topic_partitions=3, artifact_root=Path(tmp), metrics_port=0,
                            worker_instance=prefix, log_file_start_events=False, progress_update_interval=100)
        ensure_topics(settings)
        engine = make_engine(url)
        try:
            with Pipeline(settings), ConsoleServer(settings) as console:
                t0 = time.monotonic()
                submit(settings, batch_start(1, args.files))  # passthrough engines never open the (absent) files
                wait_status(engine, 1, timeout=600)
                print(f"batch of {args.files} files final after {time.monotonic() - t0:.1f} s")
                client = login(console.url, "rita")
                fid = client.get("/batches/1/files").text.split('href="/batches/1/files/')[1].split('"')[0]
                for path in ("/batches", "/batches/rows", "/batches/1", "/batches/1/live", "/batches/1/files",
                             "/batches/1/details", "/batches/1/results.csv", f"/batches/1/files/{fid}"):
                    times = []
                    for _ in range(args.repeat):
                        started = time.perf_counter()
                        assert client.get(path).status_code == 200, path
                        times.append((time.perf_counter() - started) * 1000)
                    print(f"{path:32s} median {statistics.median(times):7.1f} ms   max {max(times):7.1f} ms")
        finally:
            engine.dispose()
            delete_topics(settings)
            for _ in db_gen:
                pass


if __name__ == "__main__":
    main()
