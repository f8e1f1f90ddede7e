"""`python -m services.llm1.server`: the local LLM, llama-cpp-python's OpenAI-compatible server.

Serves the model named by LLM_MODEL from the local catalog (`cofi.models.llm`: Qwen2.5-Coder
1.5B Instruct by default, 0.5B as the fast option), assembled by `make bootstrap` under
MODEL_CACHE_DIR, on the host/port of LLM_BASE_URL (127.0.0.1 unless told otherwise), under the
name LLM_MODEL. The process execs into the server, so signals reach it directly.
Ready = `GET /v1/models` answers.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from urllib.parse import urlparse

from cofi.models.llm import ModelError, lookup, model_path
from cofi.settings import Settings

log = logging.getLogger(__name__)


def server_argv(settings: Settings, model: Path, *, chat_format: str, n_ctx: int, host: str | None = None,
                port: int | None = None) -> list[str]:
    """The llama_cpp.server command line for these settings."""
    url = urlparse(settings.llm_base_url)
    threads = settings.llm_server_threads or max(1, (os.cpu_count() or 2))
    return [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(model),
        "--model_alias", settings.llm_model,
        "--host", host or url.hostname or "127.0.0.1",
        "--port", str(port or url.port or 8080),
        "--n_ctx", str(n_ctx),
        "--chat_format", chat_format,
        "--n_threads", str(threads),
        "--n_threads_batch", str(threads),
        # one request at a time, and a RAM cache of prompt states: every check of one question shares
        # the prefix "system prompt + question", which is then evaluated once, across calls too.
        "--interrupt_requests", "False",
        "--cache", str(settings.llm_server_cache), "--cache_type", "ram", "--cache_size", str(1 << 30),
        "--verbose", "False",
    ]


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
    cmd = server_argv(settings, path, chat_format=args.chat_format or (entry.chat_format if entry else "chatml"),
                      n_ctx=args.n_ctx or (entry.n_ctx if entry else 8192), host=args.host, port=args.port)
    log.info("exec %s", " ".join(cmd))
    sys.stdout.flush()
    os.execv(cmd[0], cmd)


if __name__ == "__main__":
    main()
