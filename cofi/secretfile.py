"""Secrets kept in files (`<dir>/<name>.password`, mode 0600), made once at random: Kafka SCRAM users
(`cofi.pipeline.acls`) and database roles (`cofi.ops.dbroles`)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def secret_in(folder: Path, name: str) -> str:
    """The secret in `<folder>/<name>.password`, made (random, mode 0600) when missing."""
    path = folder / f"{name}.password"
    if not path.is_file() or not path.read_text().strip():
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as fh:
            fh.write(secrets.token_urlsafe(32))
    return path.read_text().strip()
