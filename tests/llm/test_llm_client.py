"""LlmClient: dialects, constrained replies, retries, re-ask, a dead endpoint and the health probe.

The HTTP behaviours (503 then success, invalid JSON then valid) are driven by a small real
HTTP server started here that scripts the replies; the real-model checks are in
test_llm_real.py.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from cofi.audit.formats import LinesFormat, WordField, request_fields
from cofi.audit.llm_client import LlmClient, LlmOutputError, dialect_from_models
from cofi.errors import PermanentError, TransientError
from cofi.settings import Settings
from tests.support.scripted_server import Scripted, completion

FMT = LinesFormat.of([[WordField("answer", ("yes", "no"))]])
Q = [{"role": "user", "content": "q"}]


@pytest.fixture
def scripted() -> Iterator[Any]:
    servers: list[Scripted] = []

    def make(replies: list[tuple[int, Any]], owned_by: str = "openai") -> Scripted:
        servers.append(Scripted(replies, owned_by))
        return servers[-1]

    yield make
    for s in servers:
        s.stop()


def client_for(url: str, **kw: Any) -> LlmClient:
    return LlmClient(Settings(**{"llm_base_url": url, "llm_retry_backoff_s": 0.01, "llm_max_retries": 3, **kw}))


def test_dialect_request_shapes() -> None:
    assert request_fields(FMT, "llamacpp") == {"grammar": FMT.gbnf()}
    assert request_fields(FMT, "vllm") == {"guided_regex": "(?:yes|no)"}
    assert request_fields(FMT, "openai")["response_format"]["json_schema"]["schema"] == {
        "type": "object", "additionalProperties": False, "required": ["answer"],
        "properties": {"answer": {"type": "string", "enum": ["yes", "no"]}}}
    with pytest.raises(ValueError, match="unknown LLM dialect"):
        request_fields(FMT, "tgi")
    assert dialect_from_models({"data": [{"owned_by": "vllm"}]}) == "vllm"
    assert dialect_from_models({"data": [{"owned_by": "me"}]}) == "llamacpp"
    assert dialect_from_models({"data": [{"owned_by": "llamacpp"}]}) == "llamacpp"
    assert dialect_from_models({"data": [{"owned_by": "openai"}]}) == "openai"


def test_auto_dialect_retries_5xx_and_counts_tokens(scripted: Any) -> None:
    srv = scripted([(503, {"error": "busy"}), (429, {"error": "slow down"}), (200, completion("no"))],
                   owned_by="vllm")
    c = client_for(srv.url)
    res = c.chat(Q, FMT)
    c.close()
    assert res.records == [{"answer": "no"}] and res.attempts == 3
    assert (res.usage.prompt_tokens, res.usage.completion_tokens) == (10, 3)
    assert srv.requests[-1]["guided_regex"] == "(?:yes|no)" and "response_format" not in srv.requests[-1]


def test_a_json_reply_is_read_too(scripted: Any) -> None:
    srv = scripted([(200, completion('{"answer": "yes"}'))])
    c = client_for(srv.url, llm_dialect="openai")
    assert c.chat(Q, FMT).records == [{"answer": "yes"}]
    c.close()


def test_invalid_reply_is_reasked_once_then_fails(scripted: Any) -> None:
    srv = scripted([(200, completion("maybe")), (200, completion("yes"))])
    c = client_for(srv.url, llm_dialect="llamacpp")
    res = c.chat(Q, FMT)
    assert res.records == [{"answer": "yes"}] and res.reasked and res.usage.prompt_tokens == 20
    assert "That reply is invalid" in srv.requests[-1]["messages"][-1]["content"]
    assert srv.requests[-1]["grammar"] == FMT.gbnf()
    srv.replies = [(200, completion("nonsense here")), (200, completion("still nonsense"))]
    with pytest.raises(LlmOutputError, match=r"returned invalid output twice: expected 1 fields \(answer\), got"):
        c.chat(Q, FMT)
    c.close()


def test_4xx_is_permanent(scripted: Any) -> None:
    srv = scripted([(400, {"error": "context length exceeded"})])
    c = client_for(srv.url, llm_dialect="llamacpp")
    with pytest.raises(PermanentError, match="HTTP 400: .*context length exceeded"):
        c.chat(Q, FMT)
    c.close()
    assert len(srv.requests) == 1


def test_dead_endpoint_raises_transient_error_and_probe_says_why() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    c = client_for(f"http://127.0.0.1:{port}/v1", llm_max_retries=2)
    with pytest.raises(TransientError, match=rf"LLM endpoint http://127.0.0.1:{port}/v1 still failing after 2 "
                                             "attempts: ConnectError"):
        c.chat(Q, FMT)
    ok, why = c.probe()
    assert not ok and why.startswith(f"LLM endpoint http://127.0.0.1:{port}/v1 unreachable: ConnectError")
    c.close()


def test_probe_wants_the_configured_model(scripted: Any) -> None:
    srv = scripted([])
    assert client_for(srv.url, llm_model="scripted").probe() == (True, "")
    ok, why = client_for(srv.url, llm_model="qwen").probe()
    assert not ok and "serves ['scripted'], not LLM_MODEL=qwen" in why


def test_concurrent_callers_share_one_client(scripted: Any) -> None:
    srv = scripted([(200, completion("yes"))] * 8)
    c = client_for(srv.url, llm_dialect="openai", llm_concurrency=2)
    results: list[Any] = []
    threads = [threading.Thread(target=lambda: results.append(c.chat(Q, FMT))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    c.close()
    assert [r.records for r in results] == [[{"answer": "yes"}]] * 8
