"""`python -m services.llm1.server`: the local LLM, llama-cpp-python's OpenAI-compatible server.

Serves the model named by LLM_MODEL from the local catalog (`cofi.models.llm`: Qwen2.5-Coder
1.5B Instruct by default, 0.5B as the fast option), assembled by `make bootstrap` under
MODEL_CACHE_DIR, on the host/port of LLM_BASE_URL (127.0.0.1 unless told otherwise), under the
name LLM_MODEL, in this process (uvicorn): at most SERVER_THREADS requests at once (503 beyond), request
bodies bounded by `cofi.httpguard.BodyLimit`, LLM_API_KEY required when set. Ready = `GET /v1/models` answers.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from cofi.httpguard import BodyLimit
from cofi.models.llm import ModelError, lookup, model_path
from cofi.settings import Settings

if TYPE_CHECKING:
    from llama_cpp import Llama

log = logging.getLogger(__name__)


def build_app(settings: Settings, model: Path, *, chat_format: str, n_ctx: int) -> BodyLimit:
    """llama-cpp-python's OpenAI-compatible app for these settings, behind the body and time limits."""
    from llama_cpp.server.app import create_app
    from llama_cpp.server.settings import ModelSettings, ServerSettings

    from services.llm1.prompt_cache import BoundedRamCache

    threads = settings.llm_server_threads or max(1, (os.cpu_count() or 2))
    key = settings.llm_api_key if settings.llm_api_key not in ("", "none") else None  # LLM_API_KEY set: required
    # one request at a time, and a RAM cache of prompt states: every check of one question shares the
    # prefix "system prompt + question", which is then evaluated once, across calls too.
    server = ServerSettings(interrupt_requests=False, api_key=key)
    models = [ModelSettings(model=str(model), model_alias=settings.llm_model, n_ctx=n_ctx, chat_format=chat_format,
                            n_threads=threads, n_threads_batch=threads, verbose=False, cache=False)]
    app = create_app(server_settings=server, model_settings=models)
    if settings.llm_server_cache and settings.llm_server_cache_mb > 0:
        # not the library's cache (`cache=True`): it counts the KV bytes only and grows without bound
        served_model(settings).set_cache(BoundedRamCache(settings.llm_server_cache_mb << 20))
    return BodyLimit(app, settings.server_max_body_mb << 20, settings.server_timeout_s)


def served_model(settings: Settings) -> Llama:
    """The Llama that `create_app` loaded (llama-cpp-python keeps it in its module's proxy)."""
    from llama_cpp.server import app as server_app

    proxy = server_app._llama_proxy  # the one loaded model: no public accessor
    if proxy is None:
        raise RuntimeError("llama-cpp-python's server app holds no model")
    return proxy(settings.llm_model)


def listen_address(settings: Settings, host: str | None, port: int | None) -> tuple[str, int]:
    """--host/--port, else the host and port of LLM_BASE_URL (127.0.0.1:8080 when it names none)."""
    url = urlparse(settings.llm_base_url)
    return host or url.hostname or "127.0.0.1", port or url.port or 8080


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", help="default: host of LLM_BASE_URL")
    parser.add_argument("--port", type=int, help="default: port of LLM_BASE_URL, else 8080")
    parser.add_argument("--n-ctx", type=int, help="context length (default: the model's catalog value)")
    parser.add_argument("--model-path", type=Path, help="a GGUF to serve instead of LLM_MODEL's catalog file")
    parser.add_argument("--chat-format", help="llama-cpp-python chat format (default: the model's, chatml)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = Settings()
    try:
        entry = lookup(settings.llm_model) if args.model_path is None else None
        path = args.model_path or model_path(settings.llm_model, Path(settings.model_cache_dir))
    except ModelError as exc:
        log.error("%s", exc)
        sys.exit(2)
    import uvicorn

    app = build_app(settings, path, chat_format=args.chat_format or (entry.chat_format if entry else "chatml"),
                    n_ctx=args.n_ctx or (entry.n_ctx if entry else 8192))
    host, port = listen_address(settings, args.host, args.port)
    log.info("serving %s as %s on %s:%d (at most %d requests at once)", path.name, settings.llm_model, host, port,
             settings.server_threads)
    uvicorn.run(app, host=host, port=port, limit_concurrency=settings.server_threads, timeout_keep_alive=5,
                log_level="warning")


if __name__ == "__main__":
    main()
