"""LlmClient: dialects, validation, retries, re-ask and a dead endpoint.

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

from cofi.audit.llm_client import LlmClient, LlmOutputError, dialect_from_models, response_format_for, validate_json
from cofi.errors import PermanentError, TransientError
from cofi.settings import Settings
from tests.support.scripted_server import Scripted, completion

SCHEMA = {"type": "object", "additionalProperties": False, "required": ["answer"],
          "properties": {"answer": {"type": "string", "enum": ["yes", "no"]}}}


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
    assert response_format_for("openai", SCHEMA, "a") == {
        "response_format": {"type": "json_schema", "json_schema": {"name": "a", "schema": SCHEMA, "strict": True}}}
    assert response_format_for("llamacpp", SCHEMA) == {"response_format": {"type": "json_object", "schema": SCHEMA}}
    assert response_format_for("vllm", SCHEMA) == {"guided_json": SCHEMA}
    with pytest.raises(ValueError, match="unknown LLM dialect"):
        response_format_for("tgi", SCHEMA)
    assert dialect_from_models({"data": [{"owned_by": "vllm"}]}) == "vllm"
    assert dialect_from_models({"data": [{"owned_by": "me"}]}) == "llamacpp"
    assert dialect_from_models({"data": [{"owned_by": "llamacpp"}]}) == "llamacpp"
    assert dialect_from_models({"data": [{"owned_by": "openai"}]}) == "openai"


def test_validate_json_reasons() -> None:
    assert validate_json('{"answer": "yes"}', SCHEMA) == {"answer": "yes"}
    with pytest.raises(ValueError, match="not JSON"):
        validate_json("yes", SCHEMA)
    with pytest.raises(ValueError, match="schema violation at answer: 'maybe' is not one of"):
        validate_json('{"answer": "maybe"}', SCHEMA)


def test_auto_dialect_retries_5xx_and_counts_tokens(scripted: Any) -> None:
    srv = scripted([(503, {"error": "busy"}), (429, {"error": "slow down"}), (200, completion('{"answer": "no"}'))],
                   owned_by="vllm")
    c = client_for(srv.url)
    res = c.chat_json([{"role": "user", "content": "q"}], SCHEMA)
    c.close()
    assert res.data == {"answer": "no"} and res.attempts == 3
    assert (res.usage.prompt_tokens, res.usage.completion_tokens) == (10, 3)
    assert srv.requests[-1]["guided_json"] == SCHEMA and "response_format" not in srv.requests[-1]


def test_invalid_reply_is_reasked_once_then_fails(scripted: Any) -> None:
    srv = scripted([(200, completion('{"answer": "maybe"}')), (200, completion('{"answer": "yes"}'))])
    c = client_for(srv.url, llm_dialect="openai")
    res = c.chat_json([{"role": "user", "content": "q"}], SCHEMA)
    assert res.data == {"answer": "yes"} and res.reasked and res.usage.prompt_tokens == 20
    assert "That reply is invalid" in srv.requests[-1]["messages"][-1]["content"]
    srv.replies = [(200, completion("nonsense")), (200, completion("still nonsense"))]
    with pytest.raises(LlmOutputError, match="returned invalid output twice: not JSON"):
        c.chat_json([{"role": "user", "content": "q"}], SCHEMA)
    c.close()


def test_4xx_is_permanent(scripted: Any) -> None:
    srv = scripted([(400, {"error": "context length exceeded"})])
    c = client_for(srv.url, llm_dialect="llamacpp")
    with pytest.raises(PermanentError, match="HTTP 400: .*context length exceeded"):
        c.chat_json([{"role": "user", "content": "q"}], SCHEMA)
    c.close()
    assert len(srv.requests) == 1


def test_dead_endpoint_raises_transient_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    c = client_for(f"http://127.0.0.1:{port}/v1", llm_max_retries=2)
    with pytest.raises(TransientError, match=rf"LLM endpoint http://127.0.0.1:{port}/v1 still failing after 2 "
                                             "attempts: ConnectError"):
        c.chat_json([{"role": "user", "content": "q"}], SCHEMA)
    c.close()


def test_concurrent_callers_share_one_client(scripted: Any) -> None:
    srv = scripted([(200, completion('{"answer": "yes"}'))] * 8)
    c = client_for(srv.url, llm_dialect="openai", llm_concurrency=2)
    results: list[Any] = []
    threads = [threading.Thread(target=lambda: results.append(c.chat_json([{"role": "user", "content": "q"}], SCHEMA)))
               for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    c.close()
    assert [r.data for r in results] == [{"answer": "yes"}] * 8
