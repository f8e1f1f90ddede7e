"""Confined input: with AUDIO_ROOTS set, a batch can only name calls under those folders (symlinks
resolved), never a URL or `~`; a stage writes artifacts only under ARTIFACT_ROOT/<batchId>/<fileId>,
whatever an event says. Each refusal is asserted, and that nothing else changed."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from cofi.errors import ManifestError, PathRefused
from cofi.pipeline.engine import Engine as StageEngine
from cofi.pipeline.engine import StageContext, StageOutput
from cofi.pipeline.manifest import read_manifest
from cofi.pipeline.paths import AudioRoots, artifact_dir, confine_event
from cofi.pipeline.topics import Topics
from cofi.settings import Settings
from tests.support.harness import Collector, ThreadedWorkers, decode_all, file_event, produce_events
from tests.support.tracker import RunningTracker, batch_start, dump, submit, wait_status


@pytest.fixture
def layout(tmp_path: Path) -> dict[str, Path]:
    """calls/ (the root) with one call and a manifest; secret/ outside it; a symlink from inside to outside."""
    root, outside = tmp_path / "calls", tmp_path / "secret"
    root.mkdir()
    outside.mkdir()
    (root / "a.wav").write_bytes(b"RIFF")
    (outside / "b.wav").write_bytes(b"RIFF")
    (outside / "passwd").write_text("root:x:0:0\n")
    os.symlink(outside / "b.wav", root / "link.wav")
    return {"root": root, "outside": outside}


def _csv(folder: Path, row: str) -> Path:
    m = folder / f"m-{uuid.uuid4().hex[:6]}.csv"
    m.write_text(f"file,clientCode\na.wav,C1\n{row},C2\n")
    return m


@pytest.mark.parametrize(("row", "reason"), [
    ("../secret/b.wav", "outside AUDIO_ROOTS"),
    ("../../../../../../etc/passwd", "outside AUDIO_ROOTS"),
    ("ABSOLUTE", "outside AUDIO_ROOTS"),
    ("link.wav", r"resolves to .*secret/b.wav.*outside AUDIO_ROOTS"),
    ("http://169.254.169.254/latest/meta-data", "URLs and other schemes are not read"),
    ("file:///etc/passwd", "URLs and other schemes are not read"),
    ("s3://bucket/call.wav", "URLs and other schemes are not read"),
    ("~/call.wav", "`~` is not expanded"),
])
def test_manifest_rows_outside_the_roots_are_refused(layout: dict[str, Path], row: str, reason: str) -> None:
    row = str(layout["outside"] / "b.wav") if row == "ABSOLUTE" else row
    roots = AudioRoots([layout["root"]])
    with pytest.raises(ManifestError, match=rf"row 3: .*{reason}"):
        read_manifest(_csv(layout["root"], row), roots)
    [a] = read_manifest(layout["root"] / "a.wav", roots)
    assert a.file == str(layout["root"] / "a.wav")


def test_a_directory_with_a_symlink_out_and_a_manifest_outside_are_refused(layout: dict[str, Path]) -> None:
    roots = AudioRoots([layout["root"]])
    with pytest.raises(ManifestError, match=r"directory entry .*link.wav.*outside AUDIO_ROOTS"):
        read_manifest(layout["root"], roots)
    with pytest.raises(ManifestError, match="manifest '/' is outside AUDIO_ROOTS"):
        read_manifest("/", roots)
    with pytest.raises(ManifestError, match="manifest .*outside AUDIO_ROOTS"):
        read_manifest(layout["outside"], roots)
    os.unlink(layout["root"] / "link.wav")
    assert [s.file for s in read_manifest(layout["root"], roots)] == [str(layout["root"] / "a.wav")]


def test_artifacts_stay_under_the_root_whatever_the_ids(tmp_path: Path) -> None:
    root = tmp_path / "artifacts"
    assert artifact_dir(root, 7, "f" * 20) == root / "7" / ("f" * 20)
    for bad in ("/etc", "../../x", "..", "a/b", "", "x" * 65, "a.b"):
        with pytest.raises(PathRefused, match="not a plain id"):
            artifact_dir(root, 7, bad)
    (root / "7").mkdir(parents=True)
    os.symlink(tmp_path, root / "7" / "planted")
    with pytest.raises(PathRefused, match="outside ARTIFACT_ROOT"):
        artifact_dir(root, 7, "planted")


def test_event_paths_are_checked_before_a_stage_reads_them(layout: dict[str, Path], tmp_path: Path) -> None:
    roots, art = AudioRoots([layout["root"]]), tmp_path / "art"
    good = {"batchId": 1, "fileId": "f1", "file": str(layout["root"] / "a.wav"),
            "audioPath": str(layout["root"] / "a.wav"), "currentAudio": str(art / "1" / "f1" / "denoise.wav")}
    confine_event(good, roots, art)
    for key, value, reason in [("file", "/etc/passwd", "outside AUDIO_ROOTS"),
                               ("currentAudio", str(art / "1" / "other" / "denoise.wav"), "outside AUDIO_ROOTS"),
                               ("currentAudio", "http://10.0.0.1/a.wav", "URLs"),
                               ("fileId", "/tmp/evil", "not a plain id")]:
        with pytest.raises(PathRefused, match=reason):
            confine_event({**good, key: value}, roots, art)
    # the audio stt reads the IVR prelude from is checked like the current audio
    own = {"ivr": {"inputPath": str(art / "1" / "f1" / "denoise.wav")}}
    confine_event({**good, "results": own}, roots, art)
    for value, reason in [("/etc/passwd", "ivr inputPath .* outside AUDIO_ROOTS"), ("file:///etc/passwd", "URLs")]:
        with pytest.raises(PathRefused, match=reason):
            confine_event({**good, "results": {"ivr": {"inputPath": value}}}, roots, art)
    # a file's own artifact folder planted as a symlink to elsewhere: its audio is not "its own" any more
    (tmp_path / "elsewhere").mkdir()
    (art / "1").mkdir(parents=True)
    os.symlink(tmp_path / "elsewhere", art / "1" / "planted")
    with pytest.raises(PathRefused, match="outside AUDIO_ROOTS"):
        confine_event({**good, "fileId": "planted", "currentAudio": str(art / "1" / "planted" / "denoise.wav")},
                      roots, art)


# ---- through the services, on the real broker and database -------------------------------------------------

def test_the_tracker_rejects_a_batch_naming_a_path_outside_the_roots_or_costly_rules(settings: Settings, db_engine: Engine,
                                                                    layout: dict[str, Path]) -> None:
    s = settings.model_copy(update={"audio_roots": [layout["root"]]})
    first = Topics(s.topic_prefix).stage("denoise")
    collector = Collector(s, [first])
    try:
        with RunningTracker(s):
            submit(s, batch_start(9401, 1) | {"files": [], "manifest": str(_csv(layout["root"], "../secret/b.wav"))})
            row = wait_status(db_engine, 9401, ("Rejected",), timeout=60)
            assert "outside AUDIO_ROOTS" in row["reason"]
            before = dump(db_engine)
            submit(s, batch_start(9402, 1) | {"files": [{"file": str(layout["root"] / "link.wav"), "metadata": {}}]})
            assert "outside AUDIO_ROOTS" in wait_status(db_engine, 9402, ("Rejected",), timeout=60)["reason"]
            submit(s, batch_start(9403, 1) | {"files": [{"file": str(layout["root"] / "a.wav"), "metadata": {}}],
                                              "rules": str(layout["outside"] / "passwd")})
            row = wait_status(db_engine, 9403, ("Rejected",), timeout=60)
            assert "rules: not YAML/JSON content" in row["reason"] and "root:x" not in row["reason"]
            submit(s, batch_start(9404, 1) | {"files": [], "manifest": "/"})
            assert "manifest '/' is outside AUDIO_ROOTS" in wait_status(db_engine, 9404, ("Rejected",))["reason"]
            costly = json.dumps({"rules": [{"id": "costly", "when": "(10**4000000)*(10**4000000)*(10**4000000)>1"}]})
            submit(s, batch_start(9405, 1) | {"files": [{"file": str(layout["root"] / "a.wav"), "metadata": {}}],
                                              "rules": costly})
            assert "literal exponent" in wait_status(db_engine, 9405, ("Rejected",))["reason"]
        after = dump(db_engine)
        assert after["fileDistribution"] == before["fileDistribution"] == []
        assert collector.wait(lambda: False, timeout=2) is False and collector.on(first) == []
    finally:
        collector.stop()


class WritesArtifacts(StageEngine):
    """Writes its result where the context says (as the real audio stages do)."""

    stage, name, slow = "denoise", "writes-artifacts", False

    def process(self, event: dict[str, Any], ctx: StageContext) -> StageOutput:
        path = ctx.artifact("wav")
        path.write_bytes(b"cleaned")
        return StageOutput(result={"outputPath": str(path), "noiseReductionDb": 0.0}, audio_path=str(path))


def test_a_forged_event_with_an_absolute_file_id_writes_nothing_outside(settings: Settings, tmp_path: Path) -> None:
    target = tmp_path / "escaped"
    topics = Topics(settings.topic_prefix)
    collector = Collector(settings, [topics.failed, topics.stage("ivr")])
    try:
        with ThreadedWorkers(settings, ["denoise"], {"denoise": WritesArtifacts()}):
            produce_events(settings, "denoise", [file_event(1, ["denoise", "ivr", "lid", "stt"]),
                                                 file_event(2, ["denoise", "ivr", "lid", "stt"], fileId=str(target))])
            assert collector.wait(lambda: len(collector.on(topics.failed)) + len(collector.on(topics.stage("ivr"))) >= 2)
        [failed] = decode_all("FileFailed", collector.on(topics.failed))
        assert failed["errorType"] == "PathRefused" and "not a plain id" in failed["message"]
        assert failed["fileId"] == str(target)
        [ok] = decode_all("FileEvent", collector.on(topics.stage("ivr")))
        assert ok["fileId"] == "f00001"
        assert ok["currentAudio"] == str(settings.artifact_root / "1" / "f00001" / "denoise.wav")
        assert not target.exists() and not list(tmp_path.glob("escaped*"))
    finally:
        collector.stop()


def test_cofi_submit_refuses_what_the_tracker_would(layout: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from cofi.ops.cli import app
    from cofi.settings import get_settings

    monkeypatch.setenv("AUDIO_ROOTS", str(layout["root"]))
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")  # nothing may be sent anyway
    get_settings.cache_clear()
    try:
        for target in (layout["outside"], _csv(layout["root"], "../secret/b.wav"), layout["root"]):
            result = CliRunner().invoke(app, ["submit", str(target)])
            assert result.exit_code == 2 and "outside AUDIO_ROOTS" in result.output, result.output
    finally:
        get_settings.cache_clear()
