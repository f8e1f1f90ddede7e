"""The private S3 API server of the artifact-store tests (cofi.devtools.s3server), missing = unavailable."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cofi.devtools.s3server import S3Server, S3ServerUnavailable, s3proxy
from tests.support.servers import unavailable

__all__ = ["S3Server", "running_s3"]


@contextmanager
def running_s3(workdir: Path) -> Iterator[S3Server]:
    try:
        with s3proxy(workdir) as server:
            yield server
    except S3ServerUnavailable as exc:
        unavailable(str(exc))
