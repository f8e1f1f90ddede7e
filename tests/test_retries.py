"""EngineAttempts: the bare first attempt and tenacity's rules after it behave as one retry policy."""

from __future__ import annotations

import pytest
from tenacity import RetryError

from cofi.errors import PermanentError, TransientError
from cofi.pipeline.retries import EngineAttempts
from cofi.settings import Settings

S = Settings(max_attempts=3, retry_backoff_ms=100, retry_backoff_max_ms=1000)


def failing(times: int, exc: Exception) -> tuple[list[int], object]:
    calls: list[int] = []

    def call() -> str:
        calls.append(1)
        if len(calls) <= times:
            raise exc
        return f"ok after {len(calls)}"
    return calls, call


def recorded() -> tuple[EngineAttempts, list[float], list[int]]:
    """Attempts whose backoff waits and retry counts are written down instead of slept and counted."""
    sleeps: list[float] = []
    retries: list[int] = []
    return EngineAttempts(S, sleeps.append, "x", lambda: retries.append(1)), sleeps, retries


def test_first_attempt_success_neither_sleeps_nor_counts_a_retry() -> None:
    tries, sleeps, retries = recorded()
    calls, call = failing(0, TransientError("boom"))
    assert tries.run(call) == "ok after 1"
    assert (tries.attempts, len(calls), sleeps, retries) == (1, 1, [], [])


def test_transient_failures_are_retried_with_growing_backoff() -> None:
    tries, sleeps, retries = recorded()
    calls, call = failing(2, TransientError("boom"))
    assert tries.run(call) == "ok after 3"
    assert (tries.attempts, len(calls), len(retries)) == (3, 3, 2)
    assert len(sleeps) == 2 and 0 < sleeps[0] < sleeps[1] <= 1.0


def test_attempts_used_up_give_retry_error_with_the_last_failure() -> None:
    tries = EngineAttempts(S, lambda s: None, "x")
    calls, call = failing(10, TransientError("still down"))
    with pytest.raises(RetryError) as info:
        tries.run(call)
    assert (tries.attempts, len(calls)) == (3, 3)
    assert str(info.value.last_attempt.exception()) == "still down"


@pytest.mark.parametrize("transient_first", [0, 1])
def test_a_permanent_error_stops_at_once(transient_first: int) -> None:
    tries = EngineAttempts(S, lambda s: None, "x")
    calls: list[int] = []

    def call() -> str:
        calls.append(1)
        raise TransientError("transient") if len(calls) <= transient_first else PermanentError("bad file")
    with pytest.raises(PermanentError):
        tries.run(call)
    assert tries.attempts == len(calls) == transient_first + 1


def test_one_attempt_allowed_fails_without_a_retry() -> None:
    tries = EngineAttempts(S.model_copy(update={"max_attempts": 1}), lambda s: None, "x")
    calls, call = failing(1, TransientError("boom"))
    with pytest.raises(RetryError):
        tries.run(call)
    assert (tries.attempts, len(calls)) == (1, 1)
