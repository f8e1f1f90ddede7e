"""Attempts of one engine call: the first runs bare, a failure that is not permanent goes on under
tenacity's rules (MAX_ATTEMPTS, exponential backoff between RETRY_BACKOFF_MS and RETRY_BACKOFF_MAX_MS).

Most files take one attempt, and tenacity's machinery cost a fifth of a fast stage's CPU per file; so
the first failure is replayed into tenacity as its first attempt, which counts, logs and waits as
if tenacity had run it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from cofi.errors import PermanentError
from cofi.settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")


class EngineAttempts:
    """`run(call)` returns the call's result, or raises PermanentError (no retry) or tenacity's RetryError
    (attempts used up); `attempts` says how many ran."""

    def __init__(self, settings: Settings, sleep: Callable[[float], None], what: str,
                 on_retry: Callable[[], Any] = lambda: None) -> None:
        self.settings, self.sleep, self.what, self.on_retry = settings, sleep, what, on_retry
        self.attempts = 0
        self.seen: list[Exception] = []

    def run(self, call: Callable[[], T]) -> T:
        try:
            return self._attempt(call)
        except PermanentError:
            raise
        except Exception as exc:  # noqa: BLE001 - retried, or failed by tenacity's rules
            self.seen.append(exc)
        s = self.settings
        retrying = Retrying(stop=stop_after_attempt(max(1, s.max_attempts)),
                            wait=wait_exponential(multiplier=s.retry_backoff_ms / 1000, max=s.retry_backoff_max_ms / 1000),
                            retry=retry_if_exception(lambda exc: not isinstance(exc, PermanentError)),
                            sleep=self.sleep, reraise=False,
                            before_sleep=lambda rs: log.warning("%s attempt %d failed (%s); retrying", self.what,
                                                                rs.attempt_number, rs.outcome.exception()))
        return retrying(self._attempt, call)

    def _attempt(self, call: Callable[[], T]) -> T:
        if self.seen:  # the bare first attempt's failure, replayed as tenacity's first attempt
            raise self.seen.pop()
        self.attempts += 1
        if self.attempts > 1:
            self.on_retry()
        return call()
