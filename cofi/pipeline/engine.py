"""The engine interface every stage implements, and the errors that steer retries.

The stage worker owns Kafka, retries, metrics and failure events; an engine only
turns one FileEvent into its stage's result.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from cofi.settings import Settings


class PermanentError(Exception):
    """Input that will never succeed (unreadable audio, invalid questionnaire): no retry."""


class TransientError(Exception):
    """Worth retrying with backoff (server busy or down, timeout)."""


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
        d = Path(self.settings.artifact_root) / str(self.batch_id) / self.file_id
        d.mkdir(parents=True, exist_ok=True)
        return d

    def artifact(self, ext: str, suffix: str = "") -> Path:
        return self.artifact_dir / f"{self.stage}{suffix}.{ext}"


@dataclass
class StageOutput:
    """What an engine returns: its result record's own fields (the worker adds
    worker, engine and durationMs) and, for audio stages, the audio later stages read."""

    result: dict[str, Any]
    audio_path: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Engine(ABC):
    stage: ClassVar[str]
    name: ClassVar[str]
    #: slow engines (models, servers) take one micro-batch of STAGE_CONCURRENCY files per
    #: transaction; fast ones take COMMIT_EVERY_MESSAGES.
    slow: ClassVar[bool] = True

    @abstractmethod
    def process(self, event: dict[str, Any], ctx: StageContext) -> StageOutput:
        """Process one file. Raise PermanentError / TransientError to steer the worker."""

    def close(self) -> None:
        """Release models, sessions, servers."""
