"""read_manifest: every accepted shape and every rejection, with the row named."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from cofi.errors import ManifestError
from cofi.pipeline.manifest import FileSpec, missing_files, read_manifest


def _touch(p: Path) -> Path:
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(b"RIFF")
    return p


def test_directory_recursive_sorted_audio_only(tmp_path: Path) -> None:
    _touch(tmp_path / "b.wav")
    _touch(tmp_path / "a.MP3")
    _touch(tmp_path / "sub" / "c.flac")
    _touch(tmp_path / "sub" / "deeper" / "d.ogg")
    _touch(tmp_path / "sub" / "e.Opus")
    _touch(tmp_path / "f.m4a")
    _touch(tmp_path / "notes.txt")
    _touch(tmp_path / "manifest.csv")
    specs = read_manifest(tmp_path)
    assert [Path(s.file).relative_to(tmp_path).as_posix() for s in specs] == [
        "a.MP3", "b.wav", "f.m4a", "sub/c.flac", "sub/deeper/d.ogg", "sub/e.Opus"]
    assert all(os.path.isabs(s.file) and s.metadata == {} for s in specs)


def test_empty_directory(tmp_path: Path) -> None:
    _touch(tmp_path / "readme.txt")
    with pytest.raises(ManifestError, match="no audio files"):
        read_manifest(tmp_path)


def test_single_audio_file(tmp_path: Path) -> None:
    f = _touch(tmp_path / "call.wav")
    assert read_manifest(f) == [FileSpec(str(f))]


def test_csv_relative_absolute_and_metadata(tmp_path: Path) -> None:
    absolute = _touch(tmp_path / "elsewhere" / "x.wav")
    m = tmp_path / "m" / "manifest.csv"
    m.parent.mkdir()
    m.write_text(
        "file,clientCode,phone,callStart,desk\n"
        "calls/a.wav,C1,+15550001,2026-01-15T09:00:00+00:00,fx\n"
        f"{absolute},C2,,2026-01-15T09:07:12Z,\n"
        "\n"
        "../b.wav,C3,+15550003,,rates\n"
    )
    specs = read_manifest(m)
    assert [s.file for s in specs] == [str(m.parent / "calls" / "a.wav"), str(absolute), str(tmp_path / "b.wav")]
    assert specs[0].metadata == {"clientCode": "C1", "phone": "+15550001",
                                 "callStart": "2026-01-15T09:00:00+00:00", "desk": "fx"}
    assert specs[1].metadata == {"clientCode": "C2", "callStart": "2026-01-15T09:07:12Z"}
    assert specs[2].metadata == {"clientCode": "C3", "phone": "+15550003", "desk": "rates"}
    assert specs[0].to_record() == {"file": specs[0].file, "metadata": specs[0].metadata}
    assert missing_files(specs) == [specs[0].file, specs[2].file]


def test_csv_with_bom_and_relative_manifest_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "m.csv").write_bytes("\ufefffile,phone\na.wav,0044\n".encode())
    monkeypatch.chdir(tmp_path)
    specs = read_manifest("m.csv")
    assert specs == [FileSpec(str(tmp_path / "a.wav"), {"phone": "0044"})]


def test_json_list_and_files_object(tmp_path: Path) -> None:
    items = [{"file": "a.wav", "clientCode": "C1", "phone": 15550001, "vip": True, "note": None},
             "b.wav"]
    (tmp_path / "list.json").write_text(json.dumps(items))
    (tmp_path / "obj.json").write_text(json.dumps({"files": items}))
    for name in ("list.json", "obj.json"):
        specs = read_manifest(tmp_path / name)
        assert specs == [FileSpec(str(tmp_path / "a.wav"), {"clientCode": "C1", "phone": "15550001", "vip": "true"}),
                         FileSpec(str(tmp_path / "b.wav"))]


def test_synth_manifest_reads(tmp_path: Path) -> None:
    """The manifest.csv cofi.devtools.synth writes (same columns) is accepted as is."""
    (tmp_path / "manifest.csv").write_text(
        "file,clientCode,phone,callStart\ncall_0000.wav,C12345,+15551234567,2026-01-15T09:00:41+00:00\n")
    [spec] = read_manifest(tmp_path / "manifest.csv")
    assert spec.file == str(tmp_path / "call_0000.wav") and spec.metadata["clientCode"] == "C12345"


def test_ten_thousand_rows(tmp_path: Path) -> None:
    lines = ["file,clientCode,phone,callStart"]
    lines += [f"calls/c{i:05d}.wav,C{i},+1555{i:07d},2026-01-15T09:00:00+00:00" for i in range(12_000)]
    (tmp_path / "big.csv").write_text("\n".join(lines) + "\n")
    specs = read_manifest(tmp_path / "big.csv")
    assert len(specs) == 12_000 and specs[-1].metadata["clientCode"] == "C11999"


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("m.csv", "path,phone\na.wav,1\n", "no 'file' column"),
        ("m.csv", "", "empty manifest"),
        ("m.csv", "file,phone\n", "empty manifest"),
        ("m.csv", "file,phone\n\n\n", "empty manifest"),
        ("m.csv", "file,callStart\na.wav,2026-01-15T09:00:00\nb.wav,yesterday\n", "row 3: callStart 'yesterday'"),
        ("m.csv", "file,phone\na.wav,1\nb.wav,2\n./a.wav,3\n", r"row 4: duplicate file './a.wav' \(first at row 2\)"),
        ("m.csv", "file,phone\na.wav,1,extra\n", "row 2 has more cells"),
        ("m.csv", "file,phone\n,1\n", "row 2: empty or non-text 'file'"),
        ("m.json", "[]", "empty manifest"),
        ("m.json", '{"files": []}', "empty manifest"),
        ("m.json", '{"calls": []}', "without a 'files' list"),
        ("m.json", '"a.wav"', "must be a list"),
        ("m.json", '[{"phone": "1"}]', "item 1 has no 'file' key"),
        ("m.json", '[{"file": "a.wav"}, 3]', "item 2 is int"),
        ("m.json", '[{"file": 7}]', "item 1: empty or non-text 'file'"),
        ("m.json", '[{"file": "a.wav", "callStart": "15/01/2026"}]', "item 1: callStart '15/01/2026'"),
        ("m.json", '[{"file": "a.wav"}, {"file": "a.wav"}]', "item 2: duplicate file"),
        ("m.json", "[{", "malformed JSON"),
        ("m.txt", "a.wav\n", "unsupported manifest type '.txt'"),
    ],
)
def test_rejections(tmp_path: Path, name: str, content: str, message: str) -> None:
    (tmp_path / name).write_text(content)
    with pytest.raises(ManifestError, match=message):
        read_manifest(tmp_path / name)


def test_missing_and_unreadable(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="does not exist"):
        read_manifest(tmp_path / "nope.csv")
    (tmp_path / "bin.csv").write_bytes(b"file\n\xff\xfe\x00bad\n")
    with pytest.raises(ManifestError, match="cannot read manifest"):
        read_manifest(tmp_path / "bin.csv")
