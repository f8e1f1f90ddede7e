"""Where audio may come from and where artifacts may go.

Every path a batch brings (manifest rows, directory entries, the manifest itself, the paths in a
FileEvent) is resolved, symlinks included, and must stay under one of AUDIO_ROOTS; URLs and other
schemes, and `~`, are refused with the reason. Artifacts are written under
ARTIFACT_ROOT/<batchId>/<fileId>/ only, whatever an event says. Without AUDIO_ROOTS input paths are
not confined (local development); the artifact rule always holds.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from cofi.errors import PathRefused

# `http://…`, `s3://…`, `file:/…`, `data:…`: input is a local path, never something to fetch
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://|^(file|data|ftp|https?|s3|gs|smb|nfs|sftp):", re.IGNORECASE)
_SAFE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def check_text(raw: str, what: str = "file") -> None:
    """Refuse what is not a plain local path, before anything touches the filesystem."""
    if not raw or not raw.strip():
        raise PathRefused(f"{what}: empty path")
    if "\x00" in raw:
        raise PathRefused(f"{what} {raw!r}: NUL byte in the path")
    if _SCHEME.match(raw.strip()):
        raise PathRefused(f"{what} {raw!r}: URLs and other schemes are not read; give a local path under AUDIO_ROOTS")
    if raw.strip().startswith("~"):
        raise PathRefused(f"{what} {raw!r}: `~` is not expanded; give the full path")


def within(path: str | os.PathLike[str], root: str | os.PathLike[str]) -> bool:
    """Is the resolved `path` the resolved `root` or below it (symlinks followed on both sides)?"""
    return _under(os.path.realpath(path), os.path.realpath(root))


def _under(real: str, base: str) -> bool:
    return real == base or real.startswith(base.rstrip(os.sep) + os.sep)


@lru_cache(maxsize=16)
def _root_real(root: str) -> str:
    """ARTIFACT_ROOT resolved once per process, as AUDIO_ROOTS are (a stage checks it for every event:
    resolving it each time was a third of a passthrough stage's CPU)."""
    return os.path.realpath(root)


class AudioRoots:
    """AUDIO_ROOTS: the directories input may come from (empty: not confined)."""

    def __init__(self, roots: Iterable[str | os.PathLike[str]] = ()) -> None:
        self.roots = tuple(Path(os.path.realpath(r)) for r in roots)

    @classmethod
    def of(cls, settings: Any) -> AudioRoots:
        return cls(getattr(settings, "audio_roots", ()) or ())

    def __bool__(self) -> bool:
        return bool(self.roots)

    def confine(self, path: str | os.PathLike[str], what: str = "file") -> str:
        """`path`, normalized, when it is allowed (absolute and under a root when there are roots);
        PathRefused with the reason otherwise."""
        raw = os.fspath(path)
        check_text(raw, what)
        clean = os.path.normpath(raw)
        if not self.roots:
            return clean
        if not os.path.isabs(raw):
            raise PathRefused(f"{what} {raw!r}: not an absolute path")
        real = os.path.realpath(clean)  # once: the roots were resolved when they were read
        if not any(_under(real, os.fspath(r)) for r in self.roots):
            shown = f" (resolves to {real})" if real != clean else ""
            raise PathRefused(f"{what} {raw!r}{shown} is outside AUDIO_ROOTS "
                              f"({', '.join(str(r) for r in self.roots)})")
        return clean


def artifact_dir(root: str | os.PathLike[str], batch_id: int, file_id: str) -> Path:
    """ARTIFACT_ROOT/<batchId>/<fileId>; PathRefused for an id that is not a plain token or a folder
    that would resolve outside the root (a planted symlink)."""
    _check_ids(batch_id, file_id)
    d = Path(root) / str(batch_id) / file_id
    real = os.path.realpath(d)
    if not _under(real, _root_real(os.fspath(root))):
        raise PathRefused(f"artifact folder {d} resolves to {real}, outside ARTIFACT_ROOT {root}")
    return d


def _check_ids(batch_id: object, file_id: object) -> None:
    if not isinstance(batch_id, int) or isinstance(batch_id, bool):
        raise PathRefused(f"batch id {batch_id!r} is not an integer")
    if not isinstance(file_id, str) or not _SAFE_ID.match(file_id):
        raise PathRefused(f"fileId {file_id!r} is not a plain id (letters, digits, - and _): artifacts stay "
                          "under ARTIFACT_ROOT")


def confine_event(event: Mapping[str, Any], roots: AudioRoots, artifact_root: str | os.PathLike[str]) -> None:
    """The paths a FileEvent carries, checked before a stage touches them: the call under AUDIO_ROOTS,
    the audio to read (the current audio, and the ivr stage's input that stt reads the prelude from) under
    AUDIO_ROOTS or the file's own artifact folder (where it really is: its resolved path, symlinks followed,
    under the resolved ARTIFACT_ROOT/<batchId>/<fileId>)."""
    _check_ids(event["batchId"], event["fileId"])
    for key in ("file", "audioPath"):
        if event.get(key):
            roots.confine(event[key], f"event {key}")
    own = os.path.join(_root_real(os.fspath(artifact_root)), str(event["batchId"]), event["fileId"])
    ivr = (event.get("results") or {}).get("ivr") or {}
    for path, what in ((event.get("currentAudio"), "event currentAudio"), (ivr.get("inputPath"), "ivr inputPath")):
        if path:
            check_text(path, what)
            if not _under(os.path.realpath(path), own):
                roots.confine(path, what)


def check_content(text: str | None, what: str) -> None:
    """A questionnaire or rules carried in an event is YAML/JSON content (a mapping or a list), never a path
    for a service to open."""
    if text is None or not text.strip():
        return
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        data = None
    if not isinstance(data, dict | list):
        raise PathRefused(f"{what}: not YAML/JSON content ({text[:60]!r}); a batch carries the {what} itself, "
                          "never a path (cofi submit reads the file)")


def confine_batch(start: Mapping[str, Any], roots: AudioRoots) -> None:
    """A BatchStart's inline files, and its questionnaire and rules as content, before intake reads any of it."""
    for f in start.get("files") or []:
        roots.confine(f["file"], "file")
    check_content(start.get("questionnaire"), "questionnaire")
    check_content(start.get("rules"), "rules")
