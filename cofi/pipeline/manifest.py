"""Read a batch's file list: a directory of audio, a CSV/JSON manifest, or one audio file.

Shared by the CLI (validates before submitting) and the tracker (expands
`BatchStart.manifest` at intake), so both accept and reject exactly the same input.
Audio existence is NOT checked here: one missing call must fail that file at its
stage, not reject a 10,000-call batch (`missing_files` lets the CLI warn).
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from cofi.errors import ManifestError, PathRefused
from cofi.pipeline.batchcheck import spec_problem
from cofi.pipeline.paths import AudioRoots, check_text

# What call recorders and telephony platforms write, each decoded by cofi.audio.io (libsndfile or FFmpeg):
# tests/audio/test_audio_io.py decodes one of every kind.
AUDIO_EXTENSIONS: frozenset[str] = frozenset({
    ".wav", ".flac", ".mp3", ".ogg", ".oga", ".opus", ".webm", ".m4a", ".aac", ".3gp", ".wma", ".aif", ".aiff",
    ".au", ".caf", ".gsm"})
FILE_COLUMN = "file"
TIME_COLUMNS: tuple[str, ...] = ("callStart",)


@dataclass(frozen=True)
class FileSpec:
    """One call of a batch: absolute audio path plus its per-call metadata (strings)."""

    file: str
    metadata: dict[str, str] = field(default_factory=dict)

    def to_record(self) -> dict[str, Any]:
        """Shape of the Avro `FileSpec` record in BatchStart."""
        return {"file": self.file, "metadata": dict(self.metadata)}


def is_audio(path: str | Path) -> bool:
    return Path(path).suffix.lower() in AUDIO_EXTENSIONS


def read_manifest(path: str | Path, roots: AudioRoots | None = None) -> list[FileSpec]:
    """Expand `path` into FileSpecs; raise ManifestError on anything unusable, or outside `roots`."""
    roots = roots or AudioRoots()
    try:
        check_text(os.fspath(path), "manifest")
        p = Path(path)
        if not p.exists():
            raise ManifestError(f"manifest {p} does not exist")
        p = Path(roots.confine(p.absolute(), "manifest"))
    except PathRefused as exc:
        raise ManifestError(str(exc)) from None
    if p.is_dir():
        return _read_directory(p, roots)
    suffix = p.suffix.lower()
    if suffix in AUDIO_EXTENSIONS:
        return [_checked(str(p), FileSpec(os.path.normpath(p)))]
    if suffix == ".csv":
        rows = _load_csv(p)
    elif suffix == ".json":
        rows = _load_json(p)
    else:
        raise ManifestError(
            f"{p}: unsupported manifest type {suffix or '(no extension)'!r}; "
            f"use a directory, .csv, .json or an audio file ({', '.join(sorted(AUDIO_EXTENSIONS))})"
        )
    return _to_specs(p, rows, roots)


def missing_files(specs: Iterable[FileSpec]) -> list[str]:
    """Files of `specs` that do not exist on this machine (for a warning, not an error)."""
    return [s.file for s in specs if not os.path.isfile(s.file)]


def _read_directory(root: Path, roots: AudioRoots) -> list[FileSpec]:
    files: list[str] = []
    for dirpath, _dirs, names in os.walk(root):
        files.extend(os.path.join(dirpath, n) for n in names if os.path.splitext(n)[1].lower() in AUDIO_EXTENSIONS)
    if not files:
        raise ManifestError(f"{root}: no audio files ({', '.join(sorted(AUDIO_EXTENSIONS))}) in this directory")
    try:  # a symlink in the folder may point anywhere
        return [_checked(str(root), FileSpec(roots.confine(f, "directory entry"))) for f in sorted(files)]
    except PathRefused as exc:
        raise ManifestError(f"{root}: {exc}") from None


def _read_text(p: Path) -> str:
    try:
        return p.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{p}: cannot read manifest: {exc}") from exc


def _load_csv(p: Path) -> list[tuple[int, dict[str, Any]]]:
    """Rows numbered as a spreadsheet shows them (header = line 1)."""
    text = _read_text(p)
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        header = [h.strip() for h in (reader.fieldnames or [])]
        if not header:
            raise ManifestError(f"{p}: empty manifest (no header row)")
        if FILE_COLUMN not in header:
            raise ManifestError(f"{p}: no {FILE_COLUMN!r} column (columns: {', '.join(header)})")
        reader.fieldnames = header
        rows = []
        for i, row in enumerate(reader, start=2):
            if None in row:
                raise ManifestError(f"{p}: row {i} has more cells than the header")
            if not any((v or "").strip() for v in row.values()):
                continue  # blank line
            rows.append((i, row))
    except csv.Error as exc:
        raise ManifestError(f"{p}: malformed CSV: {exc}") from exc
    return rows


def _load_json(p: Path) -> list[tuple[int, dict[str, Any]]]:
    """Items numbered from 1 in the list."""
    try:
        data = json.loads(_read_text(p))
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{p}: malformed JSON: {exc}") from exc
    if isinstance(data, dict):
        if "files" not in data:
            raise ManifestError(f"{p}: JSON object without a 'files' list")
        data = data["files"]
    if not isinstance(data, list):
        raise ManifestError(f"{p}: JSON manifest must be a list of objects or {{\"files\": [...]}}")
    rows = []
    for i, item in enumerate(data, start=1):
        if isinstance(item, str):
            item = {FILE_COLUMN: item}
        if not isinstance(item, dict):
            raise ManifestError(f"{p}: item {i} is {type(item).__name__}, expected an object with a {FILE_COLUMN!r} key")
        if FILE_COLUMN not in item:
            raise ManifestError(f"{p}: item {i} has no {FILE_COLUMN!r} key")
        rows.append((i, item))
    return rows


def _to_specs(p: Path, rows: list[tuple[int, dict[str, Any]]], roots: AudioRoots) -> list[FileSpec]:
    if not rows:
        raise ManifestError(f"{p}: empty manifest (no rows)")
    what = "row" if p.suffix.lower() == ".csv" else "item"
    base = str(p.parent)
    seen: dict[str, int] = {}
    specs: list[FileSpec] = []
    for n, row in rows:
        raw = row.get(FILE_COLUMN)
        if not isinstance(raw, str) or not raw.strip():
            raise ManifestError(f"{p}: {what} {n}: empty or non-text {FILE_COLUMN!r}")
        try:
            check_text(raw.strip(), FILE_COLUMN)
            f = roots.confine(os.path.join(base, raw.strip()), FILE_COLUMN)
        except PathRefused as exc:
            raise ManifestError(f"{p}: {what} {n}: {exc}") from None
        if f in seen:
            raise ManifestError(f"{p}: {what} {n}: duplicate file {raw.strip()!r} (first at {what} {seen[f]})")
        seen[f] = n
        specs.append(_checked(f"{p}: {what} {n}", FileSpec(f, _metadata(p, what, n, row))))
    return specs


def _checked(where: str, spec: FileSpec) -> FileSpec:
    """The spec, or ManifestError naming the row or folder of a name or metadata no event or table can hold
    (undecodable bytes, NUL, too long): refused at submit, never a crash or a lost file later."""
    problem = spec_problem(spec.file, spec.metadata)
    if problem is not None:
        raise ManifestError(f"{where}: {problem}")
    return spec


def _metadata(p: Path, what: str, n: int, row: dict[str, Any]) -> dict[str, str]:
    meta: dict[str, str] = {}
    for key, value in row.items():
        if key == FILE_COLUMN or value is None:
            continue
        text = value.strip() if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        if text == "":
            continue  # an empty CSV cell means "not given"
        if key in TIME_COLUMNS:
            _check_time(p, what, n, key, text)
        meta[str(key)] = text
    return meta


def _check_time(p: Path, what: str, n: int, key: str, text: str) -> None:
    try:
        datetime.fromisoformat(text)
    except ValueError:
        raise ManifestError(
            f"{p}: {what} {n}: {key} {text!r} is not an ISO 8601 date-time (e.g. 2026-01-15T09:30:00+00:00)"
        ) from None
