"""The engine interface every stage implements.

The stage worker owns Kafka, retries, metrics, result validation and failure events; an
engine only turns one FileEvent into its stage's result. Raise `PermanentError` /
`TransientError` (re-exported here from `cofi.errors`) to steer the worker's retries.
"""

from __future__ import annotations

import json
import os
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from cofi.errors import PermanentError, TransientError
from cofi.pipeline.paths import artifact_dir
from cofi.settings import Settings

__all__ = ["Engine", "PermanentError", "StageContext", "StageOutput", "TransientError", "write_json"]


@dataclass
class StageContext:
    stage: str
    worker: str
    settings: Settings
    batch_id: int
    file_id: str

    @property
    def artifact_dir(self) -> Path:
        """ARTIFACT_ROOT/<batchId>/<fileId>: deterministic, so a retry overwrites."""
        d = artifact_dir(self.settings.artifact_root, self.batch_id, self.file_id)  # PathRefused if it escapes
        d.mkdir(parents=True, exist_ok=True)
        return d

    def artifact(self, ext: str, suffix: str = "") -> Path:
        return self.artifact_dir / f"{self.stage}{suffix}.{ext}"


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    """A JSON artifact written atomically (tmp + rename): a crashed retry never leaves half a file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, ensure_ascii=False)
    os.replace(tmp, path)


@dataclass
class StageOutput:
    """What an engine returns: its result record's own fields (the worker adds worker, engine and
    durationMs, then validates the whole against the stage's result model) and, for audio stages,
    the audio later stages read."""

    result: Mapping[str, Any]
    audio_path: str | None = None


class Engine(ABC):
    stage: ClassVar[str]
    name: ClassVar[str]
    #: slow engines (models, servers) take one micro-batch of STAGE_CONCURRENCY files per
    #: transaction; fast ones take COMMIT_EVERY_MESSAGES.
    slow: ClassVar[bool] = True

    @abstractmethod
    def process(self, event: dict[str, Any], ctx: StageContext) -> StageOutput:
        """Process one file. Raise PermanentError / TransientError to steer the worker."""

    def health(self) -> tuple[bool, str]:
        """(ok, reason) for /healthz: False when the engine cannot work now (its server is down, say).

        The worker calls it from a background thread at most every few seconds, never from the poll
        loop, so it may block briefly (a short HTTP probe)."""
        return True, ""

    def close(self) -> None:
        """Release models, sessions, servers."""
