"""A private s3proxy (a real S3 API server on its filesystem backend) for tests and benchmarks of the
artifact store: its own port on 127.0.0.1 and data folder; the jar comes from scripts/s3proxy.sh (Maven,
cached in ~/.m2)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from cofi.devtools.pipeline import REPO, end_process, free_port
from cofi.settings import Settings

IDENTITY, CREDENTIAL, BUCKET = "cofi-test", "cofi-test-secret", "artifacts"


class S3ServerUnavailable(RuntimeError):
    """The jar could not be fetched or the server did not start (the reason, with its log's tail)."""


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    data: Path

    def settings(self, base: Settings, prefix: str, **extra: Any) -> Settings:
        """`base` with its artifacts in this server's bucket under `prefix`."""
        return base.model_copy(update={"artifact_store": f"s3://{BUCKET}/{prefix}", "s3_endpoint_url": self.endpoint,
                                       "s3_access_key_id": IDENTITY, "s3_secret_access_key": SecretStr(CREDENTIAL),
                                       **extra})


@contextmanager
def s3proxy(workdir: Path) -> Iterator[S3Server]:
    try:
        jar = subprocess.run(["bash", str(REPO / "scripts" / "s3proxy.sh"), "jar"], capture_output=True, text=True,
                             check=True, timeout=600).stdout.strip()
    except subprocess.CalledProcessError as exc:
        raise S3ServerUnavailable(f"s3proxy jar: {exc.stderr.strip()[-500:]}") from None
    port = free_port()
    data = workdir / "s3data"
    (data / BUCKET).mkdir(parents=True)
    conf, log_path = workdir / "s3proxy.conf", workdir / "s3proxy.log"
    conf.write_text(f"s3proxy.endpoint=http://127.0.0.1:{port}\ns3proxy.authorization=aws-v2-or-v4\n"
                    f"s3proxy.identity={IDENTITY}\ns3proxy.credential={CREDENTIAL}\n"
                    f"jclouds.provider=filesystem-nio2\njclouds.filesystem.basedir={data}\n")
    with log_path.open("w") as log:
        proc = subprocess.Popen(["java", "-Xmx256m", "-jar", jar, "--properties", str(conf)], stdout=log,
                                stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 60
            while "Started Server" not in log_path.read_text():
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise S3ServerUnavailable(f"s3proxy did not start: {log_path.read_text()[-1000:]}")
                time.sleep(0.2)
            yield S3Server(f"http://127.0.0.1:{port}", data)
        finally:
            end_process(proc)
