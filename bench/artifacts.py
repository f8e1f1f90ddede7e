"""What an S3 artifact store costs a stage, measured: the same stage-like work on a shared filesystem and
through `ArtifactStore` against a real S3 API server (a private s3proxy on 127.0.0.1), same files.

Each "stage" reads the file's previous artifact (MB-sized, like a cleaned WAV) and writes its own; with
S3 the worker pulls the previous one first, pushes the new one after and drops its working copy, as
`cofi.pipeline.artifacts.ArtifactSync.around` does around every engine call. `--threads` files at once,
as STAGE_CONCURRENCY. Prints files/s, MB moved per second and the added wall time per file.

    .venv/bin/python -m bench.artifacts --files 200 --mb 2 --threads 2
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from cofi.devtools.s3server import s3proxy
from cofi.pipeline.artifacts import ArtifactSync
from cofi.settings import Settings


def seed(sync: ArtifactSync, files: int, size: int) -> None:
    """Every file's first artifact (`denoise.wav`), in the store (or the shared folder)."""
    blob = os.urandom(size)

    def one(i: int) -> None:
        def work() -> None:
            folder = sync.folder(1, f"f{i:06d}")
            folder.mkdir(parents=True, exist_ok=True)  # as StageContext.artifact_dir does
            (folder / "denoise.wav").write_bytes(blob)

        sync.around(1, f"f{i:06d}", work)

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(one, range(files)))


def stage(sync: ArtifactSync, files: int, threads: int) -> float:
    """Seconds for every file: read denoise.wav, write ivr.wav of the same size (the artifact folder is
    the engine's, through `around`)."""

    def one(i: int) -> None:
        def work() -> None:
            folder = sync.folder(1, f"f{i:06d}")
            data = (folder / "denoise.wav").read_bytes()
            (folder / "ivr.wav").write_bytes(data[::-1])

        sync.around(1, f"f{i:06d}", work)

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, range(files)))
    return time.perf_counter() - started


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=200)
    ap.add_argument("--mb", type=float, default=2.0, help="size of each artifact")
    ap.add_argument("--threads", type=int, default=2, help="files at once (STAGE_CONCURRENCY)")
    args = ap.parse_args()
    size = int(args.mb * 1024 * 1024)
    moved_mb = 2 * args.files * size / 1e6  # each file: one artifact read, one written
    with tempfile.TemporaryDirectory(prefix="cofi-bench-artifacts-") as tmp:
        work = Path(tmp)
        shared = ArtifactSync(Settings(artifact_root=work / "shared"))
        seed(shared, args.files, size)
        local_s = stage(shared, args.files, args.threads)
        with s3proxy(work) as server:
            s3 = ArtifactSync(server.settings(Settings(artifact_root=work / "node"), uuid.uuid4().hex[:8]))
            seed(s3, args.files, size)
            s3_s = stage(s3, args.files, args.threads)
    print(f"{args.files} files, {args.mb:g} MB artifacts, {args.threads} at once "
          f"(each file: read one artifact, write one)")
    print(f"  shared filesystem   {local_s:7.2f} s  {args.files / local_s:8.1f} files/s  {moved_mb / local_s:7.1f} MB/s")
    print(f"  S3 store (s3proxy)  {s3_s:7.2f} s  {args.files / s3_s:8.1f} files/s  {moved_mb / s3_s:7.1f} MB/s"
          f"  (pull + push + drop around each file)")
    print(f"  added wall time per file: {(s3_s - local_s) / args.files * 1000 * args.threads:.1f} ms "
          f"(per file in its thread); S3/shared throughput = {local_s / s3_s:.2f}")


if __name__ == "__main__":
    main()
