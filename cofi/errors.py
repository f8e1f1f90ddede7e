"""Every exception cofi raises on purpose, and the exit codes of its commands.

One place, so a caller can see what may come out of a call and how an operator's shell sees it.
"""

from __future__ import annotations

# ---- exit codes of `cofi`, `python -m cofi.ops.demo` and `python -m cofi.ops.admin` ----------------

EXIT_OK = 0
EXIT_NOT_COMPLETED = 1  # the batch is not Completed, or not found; admin: setup failed
EXIT_INVALID = 2  # invalid input: nothing was sent
EXIT_UNREACHABLE = 3  # Kafka or the database is unreachable (or not set up)
EXIT_INTERRUPTED = 130  # Ctrl-C (the batch itself keeps running)


# ---- stage engines: steer the worker's retries -----------------------------------------------------

class PermanentError(Exception):
    """Input that will never succeed (unreadable audio, invalid questionnaire): no retry."""


class TransientError(Exception):
    """Worth retrying with backoff (server busy or down, timeout)."""


class PathRefused(PermanentError):
    """A path outside AUDIO_ROOTS / ARTIFACT_ROOT, a URL, `~`: never read or written (cofi.pipeline.paths)."""


class ResultError(PermanentError):
    """An engine's result does not fit its stage's result model or Avro record (a bug, not bad input):
    the file fails with the reason instead of the worker crashing."""


class EventTooLarge(PermanentError):
    """An event over MAX_EVENT_BYTES: its file (or batch) fails with the sizes, nothing is sent."""


class DeadlineExceeded(PermanentError):
    """An engine still busy on one file past its deadline: the file fails, the stage goes on."""


# ---- events, stages, topics -------------------------------------------------------------------------

class DecodeError(ValueError):
    """Bytes that are not a known Avro single-object message."""


class UnknownStageError(ValueError):
    """A stage name that is not in the registry, or a mandatory stage asked to be skipped."""


class ManifestError(ValueError):
    """A batch manifest (directory, CSV, JSON) that cannot be read as a list of calls."""


# ---- servers ----------------------------------------------------------------------------------------

class KafkaUnavailable(RuntimeError):
    """The broker did not answer: say where we looked."""


class TransactionStuck(Exception):
    """A librdkafka transactional call outlived its own timeout: replace the producer."""


class AdminError(RuntimeError):
    """Setup could not be done (broker or database unreachable, bad config)."""


# ---- operator commands ----------------------------------------------------------------------------

class CliError(Exception):
    """A one-line failure shown without a traceback; `code` is the exit status."""

    def __init__(self, message: str, code: int = EXIT_INVALID) -> None:
        super().__init__(message)
        self.code = code


class BatchRejected(Exception):
    """A batch the tracker cannot run; the message is stored for the operator."""
