"""Where a file's artifacts live between its stages: one filesystem every node mounts, or an S3 API store.

Engines read and write plain files under ARTIFACT_ROOT/<batchId>/<fileId>/ and know nothing else. With
ARTIFACT_STORE empty, that folder is on a filesystem every node shares: nothing to do. With
ARTIFACT_STORE=s3://bucket[/prefix], each node's ARTIFACT_ROOT is only a working copy: before an engine
runs, the file's objects are pulled into it; after the engine succeeds, what it wrote or changed is
pushed and what it deleted (redaction removes the unredacted artifacts) is deleted from the store; then
the working copy goes. Keys are <prefix>/<batchId>/<fileId>/<name>, deterministic, so a retry overwrites.
Events keep the paths under ARTIFACT_ROOT, so every node sets the same ARTIFACT_ROOT (a container path).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, TypeVar
from urllib.parse import urlsplit

from cofi.errors import PermanentError, TransientError
from cofi.pipeline.paths import artifact_dir
from cofi.settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")

# S3 error codes that no retry mends: the store is misconfigured, not busy
_CONFIG_ERRORS = {"NoSuchBucket", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "AllAccessDisabled",
                  "InvalidBucketName", "AuthorizationHeaderMalformed"}


@dataclass(frozen=True)
class Snapshot:
    """The file's artifacts as the store had them when its stage began: name -> MD5 (hex); and each one's
    size in the working copy, whose mtime the pull set to 0 (the epoch): a file still of that size and
    mtime was not written since, and is not hashed again."""

    files: dict[str, str] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)

    def untouched(self, path: Path) -> bool:
        st = path.stat()
        return st.st_mtime_ns == 0 and self.sizes.get(path.name) == st.st_size


class ArtifactStore(Protocol):
    def pull(self, folder: Path, batch_id: int, file_id: str) -> Snapshot:
        """Bring the file's artifacts into `folder`; what the store had."""

    def push(self, folder: Path, batch_id: int, file_id: str, before: Snapshot) -> None:
        """Make the store hold what `folder` holds now (new and changed files up, deleted ones gone)."""

    def drop(self, folder: Path) -> None:
        """The working copy is no longer needed."""

    def health(self) -> tuple[bool, str]:
        """(ok, reason) for /healthz."""


class SharedFilesystem:
    """ARTIFACT_ROOT is the store (a filesystem every node mounts): nothing to copy."""

    def pull(self, folder: Path, batch_id: int, file_id: str) -> Snapshot:
        return Snapshot()

    def push(self, folder: Path, batch_id: int, file_id: str, before: Snapshot) -> None:
        return None

    def drop(self, folder: Path) -> None:
        return None

    def health(self) -> tuple[bool, str]:
        return True, ""


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _artifact_names(folder: Path) -> list[Path]:
    """The artifacts in a working copy: plain files; dotfiles are writers' temporaries (write_json)."""
    if not folder.is_dir():
        return []
    return [p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")]


def _plain_name(name: str) -> bool:
    return bool(name) and "/" not in name and "\\" not in name and not name.startswith(".")


class S3Store:
    """Artifacts in an S3 API bucket (AWS, MinIO, Ceph, s3proxy, ...), through boto3 (its client is thread-safe:
    one per process, shared by a stage's engine threads)."""

    def __init__(self, settings: Settings) -> None:
        import boto3  # the s3 extra; imported only when a store is configured
        from botocore.config import Config

        url = urlsplit(settings.artifact_store)  # s3://bucket[/prefix], checked by Settings
        self.url = settings.artifact_store
        self.bucket = url.netloc
        self.prefix = url.path.strip("/")
        self.keep_local = settings.artifact_keep_local
        secret = settings.s3_secret_access_key.get_secret_value() if settings.s3_secret_access_key else None
        self.client = boto3.session.Session().client(
            "s3", endpoint_url=settings.s3_endpoint_url or None, region_name=settings.s3_region,
            aws_access_key_id=settings.s3_access_key_id or None, aws_secret_access_key=secret,
            config=Config(connect_timeout=5, read_timeout=60, retries={"max_attempts": 3, "mode": "standard"},
                          s3={"addressing_style": "path"} if settings.s3_endpoint_url else None,
                          # checksums only where S3 requires them: many S3 API servers refuse the
                          # flexible-checksum headers botocore >= 1.36 sends by default
                          request_checksum_calculation="when_required",
                          response_checksum_validation="when_required"))

    def key(self, batch_id: int, file_id: str, name: str = "") -> str:
        return "/".join(p for p in (self.prefix, str(batch_id), file_id, name) if p) + ("" if name else "/")

    def _objects(self, batch_id: int, file_id: str) -> dict[str, str]:
        base = self.key(batch_id, file_id)
        found: dict[str, str] = {}
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=base):
            for obj in page.get("Contents", []):
                name = obj["Key"][len(base):]
                if _plain_name(name):  # nested or hidden keys are not this layout's: never written to disk
                    found[name] = obj["ETag"].strip('"')
        return found

    def pull(self, folder: Path, batch_id: int, file_id: str) -> Snapshot:
        with _store_errors(self.url, "read"):
            objects = self._objects(batch_id, file_id)
            for name, etag in objects.items():
                local = folder / name
                if local.is_file() and _md5(local) == etag:
                    continue
                fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".part")
                try:
                    with os.fdopen(fd, "wb") as fh:
                        self.client.download_fileobj(self.bucket, self.key(batch_id, file_id, name), fh)
                    os.replace(tmp, local)
                except BaseException:
                    Path(tmp).unlink(missing_ok=True)
                    raise
                os.utime(local, ns=(0, 0))  # any write after this (an engine's) gives it a later mtime
            stats = {name: (folder / name).stat().st_size for name in objects}
        return Snapshot(objects, stats)

    def push(self, folder: Path, batch_id: int, file_id: str, before: Snapshot) -> None:
        with _store_errors(self.url, "write"):
            now = {p.name: p for p in _artifact_names(folder)}
            for name, path in now.items():
                if before.untouched(path) or before.files.get(name) == _md5(path):
                    continue
                with path.open("rb") as fh:  # one PUT: its ETag is the MD5 the next pull compares
                    self.client.put_object(Bucket=self.bucket, Key=self.key(batch_id, file_id, name), Body=fh)
            for name in before.files.keys() - now.keys():
                self.client.delete_object(Bucket=self.bucket, Key=self.key(batch_id, file_id, name))

    def drop(self, folder: Path) -> None:
        if not self.keep_local:
            shutil.rmtree(folder, ignore_errors=True)

    def health(self) -> tuple[bool, str]:
        try:
            with _store_errors(self.url, "reach"):
                self.client.head_bucket(Bucket=self.bucket)
        except (PermanentError, TransientError) as exc:
            return False, str(exc)
        return True, ""


@contextmanager
def _store_errors(url: str, doing: str) -> Iterator[None]:
    """botocore's errors as the worker's: a misconfigured store is permanent, anything else is retried."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except ClientError as exc:
        err = exc.response.get("Error", {})
        code, message = err.get("Code", "?"), err.get("Message", "")
        why = f"artifact store {url}: cannot {doing}: {code} {message}".rstrip()
        raise (PermanentError(why) if code in _CONFIG_ERRORS else TransientError(why)) from None
    except BotoCoreError as exc:
        raise TransientError(f"artifact store {url}: cannot {doing}: {exc}") from None
    except OSError as exc:
        raise TransientError(f"artifact store {url}: working copy: {exc}") from None


def store_for(settings: Settings) -> ArtifactStore:
    return S3Store(settings) if settings.artifact_store else SharedFilesystem()


class ArtifactSync:
    """A file's working copy around one piece of work (an engine call, a console page)."""

    def __init__(self, settings: Settings, store: ArtifactStore | None = None) -> None:
        self.settings = settings
        self.store = store or store_for(settings)

    def folder(self, batch_id: int, file_id: str) -> Path:
        return artifact_dir(self.settings.artifact_root, batch_id, file_id)

    def around(self, batch_id: int, file_id: str, work: Callable[[], T]) -> T:
        """Pull, work, push what the work changed; the working copy goes whether the work succeeded or not."""
        if isinstance(self.store, SharedFilesystem):
            return work()
        folder = self.folder(batch_id, file_id)
        folder.mkdir(parents=True, exist_ok=True)
        try:
            before = self.store.pull(folder, batch_id, file_id)
            out = work()
            self.store.push(folder, batch_id, file_id, before)
            return out
        finally:
            self.store.drop(folder)

    def fetch(self, batch_id: int, file_id: str) -> Path:
        """The file's artifacts brought here to be read (the console); kept, re-checked on every call."""
        folder = self.folder(batch_id, file_id)
        if not isinstance(self.store, SharedFilesystem):
            folder.mkdir(parents=True, exist_ok=True)
            self.store.pull(folder, batch_id, file_id)
        return folder
