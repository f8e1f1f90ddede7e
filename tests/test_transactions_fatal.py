"""The transactional sender's policy for fatal producer errors: fencing (another instance owns the
transactional.id) stops the loop; any other fatal error, or an abort that fails, replaces the producer
and re-reads the batch. The broker-level proof is tests/test_cluster_faults.py (the active controller
killed mid-batch leaves producers with INVALID_TXN_STATE); here the policy, with a producer double
that raises librdkafka's own error objects."""

from __future__ import annotations

import threading

import pytest
from confluent_kafka import KafkaError, KafkaException

from cofi.pipeline.transactions import Outgoing, TransactionalSender
from cofi.settings import Settings


class Producer:
    def __init__(self, fail: dict[str, KafkaError]) -> None:
        self.fail, self.calls = fail, list[str]()

    def _call(self, name: str) -> None:
        self.calls.append(name)
        if name in self.fail:
            raise KafkaException(self.fail[name])

    def begin_transaction(self) -> None:
        self._call("begin")

    def produce(self, topic: str, key: object = None, value: bytes = b"", headers: object = None) -> None:
        self._call("produce")

    def send_offsets_to_transaction(self, offsets: object, meta: object, timeout: float) -> None:
        self._call("offsets")

    def commit_transaction(self, timeout: float) -> None:
        self._call("commit")

    def abort_transaction(self, timeout: float) -> None:
        self._call("abort")

    def flush(self, timeout: float) -> int:
        self._call("flush")
        return 0


def sender(fail: dict[str, KafkaError]) -> tuple[TransactionalSender, list[Producer]]:
    s = TransactionalSender(Settings(), "txn-1", "test", threading.Event())
    made: list[Producer] = []

    def connect() -> bool:  # what renew() does, without a broker: a new producer
        made.append(Producer({}))
        s.producer = made[-1]  # type: ignore[assignment]
        return True
    s.connect = connect  # type: ignore[method-assign]
    s.producer = Producer(fail)  # type: ignore[assignment]
    s.stopping.wait = lambda timeout=None: False  # type: ignore[method-assign]  # no 1 s pause in a unit test
    return s, made


def commit(s: TransactionalSender) -> bool:
    return s.commit([Outgoing("t", "k", b"v")], {("t", 0): 5}, object())


def fatal(code: int) -> KafkaError:
    return KafkaError(code, "boom", fatal=True)


def test_retriable_failure_aborts_and_keeps_the_producer() -> None:
    s, made = sender({"offsets": KafkaError(KafkaError._TRANSPORT, "coordinator gone")})
    first = s.producer
    assert commit(s) is False
    assert first.calls[-1] == "abort" and made == [] and s.producer is first  # type: ignore[union-attr]


def test_failed_abort_replaces_the_producer() -> None:
    """The controller-kill case: the coordinator moved, the abort fails with INVALID_TXN_STATE."""
    s, made = sender({"offsets": KafkaError(KafkaError._TRANSPORT, "coordinator gone"),
                      "abort": fatal(KafkaError.INVALID_TXN_STATE)})
    assert commit(s) is False
    assert len(made) == 1 and s.producer is made[0] and not s.stopping.is_set()
    assert commit(s) is True  # the next transaction goes through on the new producer
    assert made[0].calls == ["begin", "produce", "offsets", "commit"]


def test_fatal_error_that_is_not_fencing_replaces_the_producer() -> None:
    s, made = sender({"commit": fatal(KafkaError.INVALID_TXN_STATE)})
    assert commit(s) is False
    assert len(made) == 1 and not s.stopping.is_set()


@pytest.mark.parametrize("code", [KafkaError._FENCED, KafkaError.PRODUCER_FENCED,
                                  KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED])
def test_fencing_stops_the_loop(code: int) -> None:
    s, made = sender({"commit": fatal(code)})
    with pytest.raises(KafkaException):
        commit(s)
    assert s.stopping.is_set() and made == []


def test_fenced_abort_stops_the_loop_too() -> None:
    s, made = sender({"offsets": KafkaError(KafkaError._TRANSPORT, "x"), "abort": fatal(KafkaError._FENCED)})
    with pytest.raises(KafkaException):
        commit(s)
    assert s.stopping.is_set() and made == []


def test_close_of_a_fatal_producer_does_not_raise() -> None:
    s, _ = sender({"flush": fatal(KafkaError.INVALID_TXN_STATE)})
    s.close()
    assert s.producer is None
