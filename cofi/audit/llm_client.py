"""OpenAI-compatible chat client with constrained short replies, retries and bounded concurrency.

One async httpx client runs on a private event-loop thread; `LlmClient.chat` is the thread-safe
sync facade a stage worker's pool threads call. A per-process semaphore (`LLM_CONCURRENCY`)
bounds requests in flight. Connection errors, timeouts, 429 and 5xx are retried with exponential
backoff (tenacity); an endpoint still down after that raises `TransientError`, so the worker
retries the file later and the batch goes on.

Replies are constrained to a `LinesFormat` (cofi.audit.formats) in the server's dialect
(`LLM_DIALECT`): a GBNF grammar for llama.cpp servers, a regex for vLLM, a JSON schema for
OpenAI-style servers; `auto` probes /models once (owned_by) and picks one. Whatever the server
promises, the reply is parsed and checked here, and the model is asked once more with the reason
before giving up.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
from tenacity import (
    AsyncRetrying,
    RetryError,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

from cofi.audit.formats import LinesFormat, request_fields
from cofi.pipeline.engine import PermanentError, TransientError
from cofi.settings import Settings

log = logging.getLogger(__name__)

DIALECTS = ("auto", "openai", "llamacpp", "vllm")
T = TypeVar("T")


class LlmOutputError(PermanentError):
    """The model's reply stayed invalid for its format after one re-ask (tokens spent in `usage`)."""

    def __init__(self, message: str, usage: Usage | None = None) -> None:
        super().__init__(message)
        self.usage = usage or Usage()


class _Retryable(Exception):
    """A failure worth another attempt (429, 5xx, connection, timeout)."""


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def add(self, other: Usage) -> None:
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens


@dataclass
class ChatResult:
    records: list[dict[str, Any]]
    usage: Usage = field(default_factory=Usage)
    model: str = ""
    attempts: int = 1
    reasked: bool = False
    raw: str = ""


def dialect_from_models(payload: dict[str, Any]) -> str:
    """Guess the dialect from a /models answer (owned_by differs per server)."""
    owners = {str(m.get("owned_by", "")).lower() for m in payload.get("data", []) if isinstance(m, dict)}
    if "vllm" in owners:
        return "vllm"
    if owners & {"llamacpp", "me", "llama.cpp"}:  # llama.cpp server / llama-cpp-python
        return "llamacpp"
    return "openai"


class _LoopThread:
    """A private asyncio loop on a daemon thread, so sync callers can share one async client."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="llm-client-loop", daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
        self.loop.close()


class LlmClient:
    """Thread-safe: any number of threads may call `chat_json`; at most LLM_CONCURRENCY run at once."""

    def __init__(self, settings: Settings) -> None:
        if settings.llm_dialect not in DIALECTS:
            raise ValueError(f"LLM_DIALECT={settings.llm_dialect!r}; expected one of {', '.join(DIALECTS)}")
        self.settings = settings
        self.base_url = settings.llm_base_url.rstrip("/")
        self.model = settings.llm_model
        self._dialect: str | None = None if settings.llm_dialect == "auto" else settings.llm_dialect
        self._loop = _LoopThread()
        self._client: httpx.AsyncClient = self._loop.run(self._make_client())
        self._sem: asyncio.Semaphore = self._loop.run(self._make_sem(max(1, settings.llm_concurrency)))
        self._closed = False

    async def _make_client(self) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {self.settings.llm_api_key}"} if self.settings.llm_api_key else {}
        return httpx.AsyncClient(base_url=self.base_url, headers=headers,
                                 timeout=httpx.Timeout(self.settings.llm_timeout_s, connect=10.0))

    @staticmethod
    async def _make_sem(n: int) -> asyncio.Semaphore:
        return asyncio.Semaphore(n)

    # -- sync facade -------------------------------------------------------------------

    def chat(self, messages: list[dict[str, str]], fmt: LinesFormat, *, max_tokens: int | None = None,
             temperature: float = 0.0) -> ChatResult:
        """Ask for a reply in `fmt`; parsed and checked here, re-asked once if invalid."""
        if self._closed:
            raise RuntimeError("LlmClient is closed")
        return self._loop.run(self.achat(messages, fmt, max_tokens=max_tokens, temperature=temperature))

    def probe(self, timeout_s: float = 3.0) -> tuple[bool, str]:
        """(True, "") when the endpoint answers /models and lists LLM_MODEL, else (False, why)."""
        headers = {"Authorization": f"Bearer {self.settings.llm_api_key}"} if self.settings.llm_api_key else {}
        try:
            resp = httpx.get(f"{self.base_url}/models", headers=headers, timeout=timeout_s)
        except httpx.HTTPError as exc:
            return False, f"LLM endpoint {self.base_url} unreachable: {type(exc).__name__}: {exc}"
        if resp.status_code != 200:
            return False, f"LLM endpoint {self.base_url}/models answered HTTP {resp.status_code}"
        try:
            ids = [str(m.get("id")) for m in resp.json().get("data", []) if isinstance(m, dict)]
        except ValueError:
            return False, f"LLM endpoint {self.base_url}/models answered no JSON"
        if ids and self.model not in ids:
            return False, f"LLM endpoint {self.base_url} serves {ids[:5]}, not LLM_MODEL={self.model}"
        return True, ""

    def dialect(self) -> str:
        return self._loop.run(self._resolve_dialect())

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._loop.run(self._client.aclose())
        self._loop.stop()

    # -- async core --------------------------------------------------------------------

    async def achat(self, messages: list[dict[str, str]], fmt: LinesFormat, *, max_tokens: int | None = None,
                    temperature: float = 0.0) -> ChatResult:
        dialect = await self._resolve_dialect()
        body: dict[str, Any] = {
            "model": self.model,
            "messages": list(messages),
            "temperature": temperature,
            "max_tokens": max_tokens or min(self.settings.llm_max_tokens, fmt.max_tokens()),
            **request_fields(fmt, dialect),
        }
        usage = Usage()
        reply, model, attempts = await self._post_chat(body, usage)
        try:
            return ChatResult(fmt.parse(reply), usage, model, attempts, raw=reply)
        except ValueError as first:
            log.info("LLM reply invalid (%s); asking once more", first)
            body["messages"] = [*messages, {"role": "assistant", "content": reply},
                                {"role": "user", "content": f"That reply is invalid: {first}. "
                                                            f"{fmt.instructions()}, nothing else."}]
            reply2, model, more = await self._post_chat(body, usage)
            try:
                return ChatResult(fmt.parse(reply2), usage, model, attempts + more, reasked=True, raw=reply2)
            except ValueError as second:
                raise LlmOutputError(f"LLM {self.model} at {self.base_url} returned invalid output twice: "
                                     f"{second}; reply starts {reply2[:200]!r}", usage) from second

    async def _resolve_dialect(self) -> str:
        if self._dialect is None:
            try:
                payload = await self._with_retries(self._get_models)
                self._dialect = dialect_from_models(payload)
            except TransientError:
                raise
            except Exception as exc:  # a server without /models: assume plain OpenAI
                log.warning("cannot probe %s/models (%s); using the openai dialect", self.base_url, exc)
                self._dialect = "openai"
            log.info("LLM dialect for %s: %s", self.base_url, self._dialect)
        return self._dialect

    async def _get_models(self) -> dict[str, Any]:
        resp = await self._client.get("/models")
        _raise_for(resp, self.base_url)
        return resp.json()

    async def _post_chat(self, body: dict[str, Any], usage: Usage) -> tuple[str, str, int]:
        attempts = 0

        async def once() -> dict[str, Any]:
            nonlocal attempts
            attempts += 1
            async with self._sem:
                resp = await self._client.post("/chat/completions", json=body)
            _raise_for(resp, self.base_url)
            return resp.json()

        payload = await self._with_retries(once)
        try:
            content = payload["choices"][0]["message"]["content"] or ""
        except (KeyError, IndexError, TypeError) as exc:
            raise TransientError(f"LLM {self.base_url} answered without choices[0].message: {str(payload)[:300]}") from exc
        u = payload.get("usage") or {}
        usage.add(Usage(int(u.get("prompt_tokens") or 0), int(u.get("completion_tokens") or 0)))
        return content, str(payload.get("model") or self.model), attempts

    async def _with_retries(self, fn: Any) -> Any:
        s = self.settings
        retrying = AsyncRetrying(
            stop=stop_after_attempt(max(1, s.llm_max_retries)),
            wait=wait_exponential(multiplier=s.llm_retry_backoff_s, max=30),
            retry=retry_if_exception(lambda e: isinstance(e, _Retryable | httpx.TransportError)),
            reraise=False,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    return await fn()
        except RetryError as exc:
            last = exc.last_attempt.exception()
            raise TransientError(f"LLM endpoint {self.base_url} still failing after {s.llm_max_retries} attempts: "
                                 f"{type(last).__name__}: {last}") from last
        raise AssertionError("unreachable")


def _raise_for(resp: httpx.Response, base_url: str) -> None:
    if resp.status_code == 429 or resp.status_code >= 500:
        raise _Retryable(f"HTTP {resp.status_code} from {base_url}: {resp.text[:300]}")
    if resp.status_code >= 400:
        raise PermanentError(f"LLM {base_url} rejected the request: HTTP {resp.status_code}: {resp.text[:500]}")
