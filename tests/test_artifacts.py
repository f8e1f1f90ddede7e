"""Artifacts without a shared filesystem (cofi.pipeline.artifacts) against a real S3 API server (s3proxy):
two working copies see each other's artifacts only through the store, deletions reach the store, a
failed engine pushes nothing, errors say which store and why; and a batch through the real denoise
and ivr engines, Kafka, MariaDB and the tracker with every working copy dropped after its stage, its
audio then served by the console from a node that never had it."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError
from sqlalchemy import Engine

from cofi.devtools.checks import exactly_once_problems, rows
from cofi.devtools.synth import make_call
from cofi.errors import PermanentError, TransientError
from cofi.pipeline.artifacts import ArtifactSync, S3Store
from cofi.pipeline.stages import STAGES
from cofi.settings import Settings
from services.denoise.engines import SpectralDenoise
from services.ivr.engines import VadIvr
from tests.support.console import ConsoleServer, login
from tests.support.harness import ThreadedWorkers
from tests.support.s3 import S3Server, running_s3
from tests.support.servers import free_port
from tests.support.tracker import RunningTracker, batch_start, submit, wait_status


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    with running_s3(tmp_path_factory.mktemp("s3proxy")) as server:
        yield server


def node(s3: S3Server, root: Path, prefix: str, **extra: object) -> ArtifactSync:
    """One node's view: its own working copy under `root`, the shared store."""
    return ArtifactSync(s3.settings(Settings(artifact_root=root), prefix, **extra))


def objects(sync: ArtifactSync, batch_id: int, file_id: str) -> dict[str, bytes]:
    store = sync.store
    assert isinstance(store, S3Store)
    return {name: store.client.get_object(Bucket=store.bucket, Key=store.key(batch_id, file_id, name))["Body"].read()
            for name in store._objects(batch_id, file_id)}


def test_two_nodes_share_artifacts_only_through_the_store(s3: S3Server, tmp_path: Path) -> None:
    prefix = uuid.uuid4().hex[:8]
    a, b = node(s3, tmp_path / "a", prefix), node(s3, tmp_path / "b", prefix)
    wav = bytes(range(256)) * 4000  # ~1 MB

    def first() -> str:
        folder = a.folder(5, "f1")
        (folder / "denoise.wav").write_bytes(wav)
        (folder / "stt.json").write_text('{"text": "hello"}')
        (folder / ".stt.json.123.tmp").write_text("half")  # a writer's temporary: never pushed
        return "done"

    assert a.around(5, "f1", first) == "done"
    assert not a.folder(5, "f1").exists()  # the working copy went once pushed
    assert objects(a, 5, "f1") == {"denoise.wav": wav, "stt.json": b'{"text": "hello"}'}

    seen: list[str] = []

    def second() -> None:  # like redact: reads what the other node wrote, deletes the unredacted transcript
        folder = b.folder(5, "f1")
        seen.extend(sorted(p.name for p in folder.iterdir()))
        assert (folder / "denoise.wav").read_bytes() == wav
        (folder / "stt.json").unlink()
        (folder / "redact.json").write_text("{}")

    b.around(5, "f1", second)
    assert seen == ["denoise.wav", "stt.json"]
    assert objects(b, 5, "f1") == {"denoise.wav": wav, "redact.json": b"{}"}  # the deletion reached the store
    assert not (tmp_path / "b" / "5" / "f1").exists()
    assert objects(a, 5, "other") == {}  # another file's prefix is its own


def test_a_failed_engine_pushes_nothing_and_leaves_no_working_copy(s3: S3Server, tmp_path: Path) -> None:
    sync = node(s3, tmp_path, uuid.uuid4().hex[:8])
    sync.around(6, "f1", lambda: (sync.folder(6, "f1") / "denoise.wav").write_bytes(b"good"))

    def crash() -> None:
        (sync.folder(6, "f1") / "denoise.wav").write_bytes(b"half written")
        raise TransientError("engine died")

    with pytest.raises(TransientError, match="engine died"):
        sync.around(6, "f1", crash)
    assert objects(sync, 6, "f1") == {"denoise.wav": b"good"}
    assert not sync.folder(6, "f1").exists()


def test_a_same_size_rewrite_right_after_the_pull_is_pushed(s3: S3Server, tmp_path: Path) -> None:
    sync = node(s3, tmp_path, uuid.uuid4().hex[:8])
    sync.around(4, "f1", lambda: (sync.folder(4, "f1") / "stt.json").write_text("aaaa"))
    sync.around(4, "f1", lambda: (sync.folder(4, "f1") / "stt.json").write_text("bbbb"))  # same size, at once
    sync.around(4, "f1", lambda: None)  # read only: nothing written, nothing pushed or deleted
    assert objects(sync, 4, "f1") == {"stt.json": b"bbbb"}


def test_a_kept_working_copy_is_refreshed_when_another_node_changed_the_store(s3: S3Server, tmp_path: Path) -> None:
    prefix = uuid.uuid4().hex[:8]
    a = node(s3, tmp_path / "a", prefix, artifact_keep_local=True)
    b = node(s3, tmp_path / "b", prefix)
    a.around(7, "f1", lambda: (a.folder(7, "f1") / "stt.json").write_text("v1"))
    assert (a.folder(7, "f1") / "stt.json").read_text() == "v1"  # kept
    b.around(7, "f1", lambda: (b.folder(7, "f1") / "stt.json").write_text("v2 (a reaudit)"))
    assert (a.fetch(7, "f1") / "stt.json").read_text() == "v2 (a reaudit)"


def test_keys_outside_the_layout_never_reach_the_disk(s3: S3Server, tmp_path: Path) -> None:
    sync = node(s3, tmp_path, uuid.uuid4().hex[:8])
    store = sync.store
    assert isinstance(store, S3Store)
    for name in ("ok.json", "nested/evil.json", ".hidden", "odd name %2f.json"):
        store.client.put_object(Bucket=store.bucket, Key=store.key(8, "f1", name), Body=b"x")
    folder = sync.fetch(8, "f1")
    assert sorted(p.name for p in folder.rglob("*")) == ["odd name %2f.json", "ok.json"]  # plain, however odd


def test_errors_name_the_store_and_whether_a_retry_can_help(s3: S3Server, tmp_path: Path) -> None:
    wrong = node(s3, tmp_path, "p", s3_secret_access_key=SecretStr("not-the-secret"))
    with pytest.raises(PermanentError, match=r"artifact store s3://artifacts/p: cannot read: SignatureDoesNotMatch"):
        wrong.around(9, "f1", lambda: None)
    ok, reason = wrong.store.health()
    assert not ok and "403" in reason
    no_bucket = ArtifactSync(s3.settings(Settings(artifact_root=tmp_path), "p").model_copy(
        update={"artifact_store": "s3://no-such-bucket/p"}))
    with pytest.raises(PermanentError, match="NoSuchBucket"):
        no_bucket.around(9, "f1", lambda: None)
    down = node(s3, tmp_path, "p", s3_endpoint_url=f"http://127.0.0.1:{free_port()}")  # nobody listens there
    with pytest.raises(TransientError, match="Could not connect to the endpoint URL"):
        down.around(9, "f1", lambda: None)
    assert not down.store.health()[0]
    for wrong in ("https://example.invalid/bucket", "s3://", "/data/artifacts", "s3://b/p?x=1"):
        with pytest.raises(ValidationError, match=r"ARTIFACT_STORE .*: give s3://bucket\[/prefix\]"):
            Settings(artifact_root=tmp_path, artifact_store=wrong)  # every service stops at start
    assert ArtifactSync(Settings(artifact_root=tmp_path)).store.health() == (True, "")  # a shared filesystem


@pytest.mark.integration
def test_a_batch_runs_with_no_shared_filesystem(s3: S3Server, settings: Settings, db_engine: Engine,
                                                 tmp_path: Path) -> None:
    """Real denoise and ivr engines, every stage's working copy dropped once pushed: ivr can only read
    denoise's output from the store; the console's fetch brings back what each stage wrote."""
    s = s3.settings(settings, uuid.uuid4().hex[:8], progress_update_interval=1)
    calls = [tmp_path / "calls" / f"call{i}.wav" for i in range(3)]
    for i, path in enumerate(calls):
        make_call(path, turns=2, ivr=True, dtmf=str(i + 1), seed=i)
    start = batch_start(950, 0)
    start["files"] = [{"file": str(p), "metadata": {"clientCode": "C1"}} for p in calls]
    with RunningTracker(s), ThreadedWorkers(s, list(STAGES), {"denoise": SpectralDenoise(s), "ivr": VadIvr(s)}):
        submit(s, start)
        row = wait_status(db_engine, 950, timeout=180)
    assert row["status"] == "Completed", row
    assert exactly_once_problems(s, db_engine, 950, len(calls)) == []
    files = rows(db_engine, "SELECT fileId FROM fileDistribution WHERE batchId = 950 AND status = 'Completed'")
    assert len(files) == len(calls)
    left = [p for p in Path(s.artifact_root).rglob("*") if p.is_file() and ".inflight" not in p.parts]
    assert left == []  # no node kept a copy: the store alone carried the audio between stages
    # the console, on its own node (its own empty ARTIFACT_ROOT), serves the trimmed audio from the store
    on_console = s.model_copy(update={"artifact_root": tmp_path / "console"})
    sync = ArtifactSync(on_console)
    with ConsoleServer(on_console) as console:
        client = login(console.url, "rita")
        for (file_id,) in files:
            stored = objects(sync, 950, file_id)
            assert sorted(stored) == ["denoise.wav", "ivr.wav"]  # ivr found the IVR prelude in denoise's output
            audio = client.get(f"/batches/950/files/{file_id}/audio")
            assert audio.status_code == 200 and audio.content == stored["ivr.wav"]
            folder = sync.folder(950, file_id)
            assert {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in folder.iterdir()} == \
                {n: hashlib.md5(v).hexdigest() for n, v in stored.items()}


@pytest.mark.integration
def test_an_unreachable_store_fails_each_file_with_the_reason(s3: S3Server, settings: Settings, db_engine: Engine,
                                                              tmp_path: Path) -> None:
    """No store, no artifact: the file fails at its stage after its retries, the reason in processing_logs;
    the batch still finishes."""
    s = s3.settings(settings, "down", s3_endpoint_url=f"http://127.0.0.1:{free_port()}", max_attempts=2)
    path = tmp_path / "call.wav"
    make_call(path, turns=2, ivr=False)
    start = batch_start(951, 0)
    start["files"] = [{"file": str(path), "metadata": {"clientCode": "C1"}}]
    with RunningTracker(s), ThreadedWorkers(s, list(STAGES), {"denoise": SpectralDenoise(s)}):
        submit(s, start)
        row = wait_status(db_engine, 951, timeout=120)
    assert row["status"] in ("Failed", "Completed") and row["failedFiles"] == 1, row
    ((stage, error),) = rows(db_engine, "SELECT stage_name, error FROM processing_logs WHERE batch_id = '951' "
                                        "AND status = 'failed'")
    assert stage == "denoise" and "gave up after 2 attempts" in error
    assert "artifact store s3://artifacts/down: cannot read: Could not connect to the endpoint URL" in error
