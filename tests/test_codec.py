"""Avro single-object codec: round trips, old writers read by the current reader, bad bytes
rejected with DecodeError, and every kept schema version resolvable into the current one."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import fastavro
import pytest
from fastavro.schema import fingerprint, to_parsing_canonical_form

from cofi.errors import DecodeError
from cofi.pipeline.codec import CURRENT, MAGIC, SCHEMA_DIR, Codec

T0 = datetime(2026, 1, 15, 9, 30, 0, 123000, tzinfo=timezone.utc)  # millisecond precision survives
HISTORY = sorted((SCHEMA_DIR / "history").glob("*.avsc"))


@pytest.fixture(scope="module")
def codec() -> Codec:
    return Codec()


def trade(i: int = 1) -> dict[str, Any]:
    return {"tradeId": f"T{i}", "clientCode": "C042", "symbol": "INFY", "side": "BUY", "quantity": 100.0,
            "price": 1520.5, "tradeTime": "2026-01-15T09:12:00+05:30", "phone": "+919800000001"}


def full_file_event() -> dict[str, Any]:
    """A FileEvent after llm2: every stage result filled, every optional field set."""
    common = {"worker": "w-1", "engine": "test", "durationMs": 1234}
    return {
        "eventId": "e" * 32, "batchId": 9_000_000_001, "fileId": "f" * 20, "file": "calls/a.wav",
        "audioPath": "/data/calls/a.wav", "currentAudio": "/art/9000000001/fff/ivr.wav",
        "stages": ["denoise", "ivr", "lid", "stt", "llm1", "llm2"], "generation": 2,
        "metadata": {"clientCode": "C042", "phone": "+919800000001", "callStart": "2026-01-15T09:10:00"},
        "emittedAt": T0,
        "results": {
            "denoise": {**common, "outputPath": "/art/denoise.wav", "sampleRate": 16000, "noiseReductionDb": 7.5},
            "ivr": {**common, "ivrDetected": True, "ivrEndSec": 12.25, "dtmfDigits": "12#",
                    "reason": "dtmf then prompt", "outputPath": "/art/ivr.wav", "inputPath": "/art/denoise.wav"},
            "lid": {**common, "language": "en", "probability": 0.97,
                    "top": [{"language": "en", "probability": 0.97}, {"language": "hi", "probability": 0.02}]},
            "stt": {**common, "language": "en", "transcriptPath": "/art/stt.json",
                    "text": "AGENT: hello\nCUSTOMER: hi", "words": 2,
                    "speech": {"durationSec": 60.0, "talkTimeAgentSec": 30.0, "talkTimeCustomerSec": 20.0,
                               "talkRatio": 0.6, "silenceRatio": 0.2, "longestSilenceSec": 3.5,
                               "overtalkSec": 1.0, "speechRateWpm": 140.0}},
            "redact": {**common, "transcriptPath": "/art/redact.json", "text": "AGENT: hello [PERSON_1]",
                       "outputPath": "/art/redact.wav",
                       "entities": [{"placeholder": "[PERSON_1]", "type": "PERSON", "mentions": 2, "seconds": 0.8}],
                       "policy": ["PERSON"], "originalKept": False, "maskedSec": 0.8},
            "llm1": {**common, "model": "gemma-3-270m",
                     "answers": [{"questionId": "q1", "answer": "yes", "evidence": "hello", "source": "llm",
                                  "evidenceLine": 1, "check": "verified"}],
                     "tradeChecks": [{"tradeId": "T1", "status": "confirmed", "evidence": "buy 100 infy",
                                      "mismatches": [], "evidenceLine": 2, "source": "facts"}],
                     "promptTokens": 900, "completionTokens": 40},
            "llm2": {**common,
                     "answers": [{"questionId": "q1", "raw": "yes", "normalized": "Yes", "points": 1.0,
                                  "maxPoints": 1.0}],
                     "rules": [{"ruleId": "r1", "kind": "expression", "passed": False, "severity": "critical",
                                "reason": "no disclosure"}],
                     "score": 0.5, "verdict": "critical_fail", "reasons": ["r1: no disclosure"]},
        },
        "trades": [trade(1), trade(2)],
        "questionnaire": json.dumps({"questions": [{"id": "q1", "text": "Greeted?"}]}),
        "rules": json.dumps([{"id": "r1", "expr": "answers.q1 == 'Yes'"}]),
        "emitter": "stage", "completedStage": "llm2",
        "instruments": [{"symbol": "INFY", "name": "Infosys", "aliases": ["Infosys Limited"]}],
        "vocabulary": ["Infosys", "Infosys Limited"],
        "redactPolicy": {"entities": ["ACCOUNT_NUMBER"], "audio": "silence"},
    }


SAMPLES: dict[str, dict[str, Any]] = {
    "BatchStart": {
        "eventId": "b1", "batchId": 42, "submittedAt": T0,
        "files": [{"file": "a.wav", "metadata": {"clientCode": "C042"}}, {"file": "b.wav", "metadata": {}}],
        "manifest": "/data/manifest.csv", "skip": ["denoise"], "questionnaire": "{}", "rules": "[]",
        "trades": [trade()], "callback": "http://127.0.0.1:9/hook", "submittedBy": "ops",
        "instruments": [{"symbol": "INFY", "name": "Infosys", "aliases": []}],
        "redact": {"entities": ["ACCOUNT_NUMBER", "PERSON"], "audio": "tone"},
    },
    "FileEvent": full_file_event(),
    "FileFailed": {
        "eventId": "x1", "batchId": 42, "fileId": "f1", "file": "a.wav", "stage": "stt",
        "errorType": "PermanentError", "message": "unreadable audio: not a RIFF file", "permanent": True,
        "attempts": 1, "worker": "w-1", "engine": "whisper", "durationMs": 15, "generation": 1,
        "failedAt": T0, "originalTopic": "cofi.stage.stt", "originalPartition": 2, "originalOffset": 1234,
        "originalEvent": b"\xc3\x01raw",
    },
    "BatchControl": {
        "eventId": "c1", "batchId": 42, "action": "reaudit", "fromStage": "llm1", "rules": "[]",
        "questionnaire": None, "requestedAt": T0, "requestedBy": "ops",
    },
}


@pytest.mark.parametrize("name", sorted(CURRENT))
def test_round_trip(codec: Codec, name: str) -> None:
    data = codec.encode(name, SAMPLES[name])
    assert data[:2] == MAGIC
    assert codec.decode(data) == (name, SAMPLES[name])
    assert codec.decode_as(name, data) == SAMPLES[name]


def test_file_event_without_results_round_trips(codec: Codec) -> None:
    event = full_file_event()
    event["results"] = {s: None for s in event["results"]}
    event["trades"], event["questionnaire"], event["rules"] = [], None, None
    assert codec.decode_as("FileEvent", codec.encode("FileEvent", event)) == event


def _single_object(schema_path: Path, record: dict[str, Any]) -> bytes:
    """Encode as an old producer did: magic + that schema's fingerprint + body, fastavro only."""
    parsed = fastavro.parse_schema(json.loads(schema_path.read_text()), named_schemas={})
    fp = bytes.fromhex(fingerprint(to_parsing_canonical_form(parsed), "CRC-64-AVRO"))
    buf = io.BytesIO(MAGIC + fp)
    buf.seek(0, io.SEEK_END)
    fastavro.schemaless_writer(buf, parsed, record)
    return buf.getvalue()


V3_FIELDS = ("emitter", "completedStage")
def as_v5(event: dict[str, Any]) -> dict[str, Any]:
    """The event without what v6 added (the audio the ivr stage cut its prelude from)."""
    ivr = {k: v for k, v in event["results"]["ivr"].items() if k != "inputPath"}
    return {**event, "results": {**event["results"], "ivr": ivr}}


def with_v6_defaults(event: dict[str, Any]) -> dict[str, Any]:
    """What the current reader makes of an event written before v6: no prelude source (stt skips the prelude)."""
    return {**event, "results": {**event["results"], "ivr": {**event["results"]["ivr"], "inputPath": ""}}}


def as_v3(event: dict[str, Any]) -> dict[str, Any]:
    """The event without what v4 added (answer/trade-check evidence lines, instruments, vocabulary)."""
    event = as_v5(event)
    ev = {k: v for k, v in event.items() if k not in ("instruments", "vocabulary", "redactPolicy")}
    ev["results"] = {k: v for k, v in event["results"].items() if k != "redact"}
    llm1 = ev["results"]["llm1"]
    ev["results"] = {**ev["results"], "llm1": {
        **llm1, "answers": [{k: v for k, v in a.items() if k not in ("evidenceLine", "check")} for a in llm1["answers"]],
        "tradeChecks": [{k: v for k, v in t.items() if k not in ("evidenceLine", "source")} for t in llm1["tradeChecks"]]}}
    return ev


def with_v4_defaults(event: dict[str, Any]) -> dict[str, Any]:
    """What the current reader makes of an event written before v4."""
    event = with_v6_defaults(event)
    llm1 = event["results"]["llm1"]
    return {**event, "instruments": [], "vocabulary": [], "redactPolicy": None, "results": {
        **event["results"], "redact": None, "llm1": {
        **llm1, "answers": [{**a, "evidenceLine": 0, "check": ""} for a in llm1["answers"]],
        "tradeChecks": [{**t, "evidenceLine": 0, "source": "facts"} for t in llm1["tradeChecks"]]}}}


def test_v1_file_event_is_read_by_current_reader(codec: Codec) -> None:
    v1 = as_v3(full_file_event())
    for field in ("trades", "questionnaire", "rules", *V3_FIELDS):  # v2 and v3 fields
        del v1[field]
    data = _single_object(SCHEMA_DIR / "history" / "file_event.v1.avsc", v1)
    assert data[2:10] != codec.current["FileEvent"].fingerprint
    name, event = codec.decode(data)
    assert name == "FileEvent"
    assert event == with_v4_defaults({**v1, "trades": [], "questionnaire": None, "rules": None, "emitter": None,
                                      "completedStage": None})


def test_v2_file_event_without_transition_fields_is_read_with_nulls(codec: Codec) -> None:
    """A FileEvent written before v3 says nothing of its transition: the tracker infers it (tests/test_filestate.py)."""
    v2 = as_v3(full_file_event())
    for field in V3_FIELDS:
        del v2[field]
    data = _single_object(SCHEMA_DIR / "history" / "file_event.v2.avsc", v2)
    assert data[2:10] != codec.current["FileEvent"].fingerprint
    assert codec.decode_as("FileEvent", data) == with_v4_defaults({**v2, "emitter": None, "completedStage": None})


def test_v4_file_event_reads_without_redaction(codec: Codec) -> None:
    """Events written before the redact stage existed: no redact result, no policy (the batch did not redact)."""
    v4 = {k: v for k, v in as_v5(full_file_event()).items() if k != "redactPolicy"}
    v4["results"] = {k: v for k, v in v4["results"].items() if k != "redact"}
    data = _single_object(SCHEMA_DIR / "history" / "file_event.v4.avsc", v4)
    assert codec.decode_as("FileEvent", data) == with_v6_defaults(
        {**v4, "redactPolicy": None, "results": {**v4["results"], "redact": None}})


def test_v5_file_event_reads_without_a_prelude_source(codec: Codec) -> None:
    """Events written before stt transcribed the IVR prelude: the ivr result names no input, stt skips it."""
    v5 = as_v5(full_file_event())
    data = _single_object(SCHEMA_DIR / "history" / "file_event.v5.avsc", v5)
    assert data[2:10] != codec.current["FileEvent"].fingerprint
    assert codec.decode_as("FileEvent", data) == with_v6_defaults(v5)


def test_v3_file_event_reads_with_v4_defaults(codec: Codec) -> None:
    v3 = as_v3(full_file_event())
    data = _single_object(SCHEMA_DIR / "history" / "file_event.v3.avsc", v3)
    assert codec.decode_as("FileEvent", data) == with_v4_defaults(v3)


def test_unknown_fingerprint(codec: Codec) -> None:
    body = codec.encode("BatchControl", SAMPLES["BatchControl"])[10:]
    with pytest.raises(DecodeError, match="unknown schema fingerprint"):
        codec.decode(MAGIC + b"\x00\x11\x22\x33\x44\x55\x66\x77" + body)


@pytest.mark.parametrize("data", [b"", None, b"\xc3", b"hello, this is not avro at all",
                                  b'{"batchId": 1, "file": "a.wav"}'], ids=["empty", "none", "magic-only",
                                                                          "garbage", "json"])
def test_garbage_and_empty_bytes(codec: Codec, data: bytes | None) -> None:
    with pytest.raises(DecodeError, match="not an Avro single-object message"):
        codec.decode(data)


@pytest.mark.parametrize("name", sorted(CURRENT))
def test_truncated_body(codec: Codec, name: str) -> None:
    data = codec.encode(name, SAMPLES[name])
    for cut in (11, len(data) // 2, len(data) - 1):
        with pytest.raises(DecodeError, match=f"corrupt {name} body"):
            codec.decode(data[:cut])
    with pytest.raises(DecodeError):
        codec.decode(data[:10])  # header only, no body


def test_expected_type_is_enforced(codec: Codec) -> None:
    data = codec.encode("FileFailed", SAMPLES["FileFailed"])
    with pytest.raises(DecodeError, match="expected FileEvent, got FileFailed"):
        codec.decode_as("FileEvent", data)


# ---- schema evolution: every kept version resolves into the current schema of its name ----

def _sample(schema: Any, named: dict[str, Any]) -> Any:
    """A record that exercises every field of `schema` (non-null union branches, one array item)."""
    if isinstance(schema, str):
        if schema in named:
            return _sample(named[schema], named)
        return {"null": None, "boolean": True, "int": 7, "long": 7, "float": 1.5, "double": 2.5,
                "bytes": b"\x01\x02", "string": "s"}[schema]
    if isinstance(schema, list):
        branch = next((b for b in schema if b != "null"), "null")
        return _sample(branch, named)
    kind = schema["type"]
    if schema.get("logicalType") == "timestamp-millis":
        return T0
    if kind == "record":
        named[schema["name"]] = schema
        if "namespace" in schema:
            named[f"{schema['namespace']}.{schema['name']}"] = schema
        return {f["name"]: _sample(f["type"], named) for f in schema["fields"]}
    if kind == "enum":
        named[schema["name"]] = schema
        return schema["symbols"][0]
    if kind == "array":
        return [_sample(schema["items"], named)]
    if kind == "map":
        return {"k": _sample(schema["values"], named)}
    return _sample(kind, named)


def _keeps(read: Any, written: Any) -> bool:
    """`read` holds everything `written` did: equal, or a record with more fields (their defaults)."""
    if isinstance(written, dict) and isinstance(read, dict):
        return all(k in read and _keeps(read[k], v) for k, v in written.items())
    if isinstance(written, list) and isinstance(read, list):
        return len(read) == len(written) and all(_keeps(r, w) for r, w in zip(read, written, strict=True))
    return read == written


def test_history_is_kept() -> None:
    assert HISTORY, "schemas/history/ must keep every past version"


@pytest.mark.parametrize("path", HISTORY, ids=[p.name for p in HISTORY])
def test_history_schema_resolves_into_current(codec: Codec, path: Path) -> None:
    raw = json.loads(path.read_text())
    assert raw["name"] in CURRENT, f"{path.name}: no current schema named {raw['name']}"
    writer = fastavro.parse_schema(raw, named_schemas={})
    reader = codec.current[raw["name"]].parsed
    record = _sample(raw, {})
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, writer, record)
    buf.seek(0)
    read = fastavro.schemaless_reader(buf, writer, reader)
    current = json.loads((SCHEMA_DIR / CURRENT[raw["name"]]).read_text())["fields"]
    assert list(read) == [f["name"] for f in current]
    dropped = [f["name"] for f in raw["fields"] if f["name"] not in read]
    assert not dropped, f"{path.name}: fields dropped since then (their data would be lost): {dropped}"
    for field in raw["fields"]:  # what the old writer wrote reads back unchanged (nested records may gain fields) ...
        assert _keeps(read[field["name"]], record[field["name"]]), field["name"]
    for field in current:  # ... and a field it did not know reads as its default
        if field["name"] not in record:
            assert read[field["name"]] == field["default"], field["name"]
    # and the codec recognises that version's fingerprint
    fp = bytes.fromhex(fingerprint(to_parsing_canonical_form(writer), "CRC-64-AVRO"))
    assert codec.by_fp[fp].name == raw["name"]


@pytest.mark.parametrize("path", HISTORY, ids=[p.name for p in HISTORY])
def test_new_fields_have_defaults(path: Path) -> None:
    """A field added to the current schema without a default would break every old writer."""
    old = json.loads(path.read_text())
    current = json.loads((SCHEMA_DIR / CURRENT[old["name"]]).read_text())
    old_fields = dict(_fields(old))
    # a field of a record that is new itself needs no default: the record's field has one (or is checked)
    added = [(name, f) for name, f in _fields(current)
             if name not in old_fields and ("." not in name or name.rsplit(".", 1)[0] in old_fields)]
    assert added, f"{path.name} is the current {old['name']} schema again: keep only past versions in history/"
    missing = [name for name, f in added if "default" not in f]
    assert not missing, f"{old['name']}: fields added since {path.name} need defaults: {missing}"


def _fields(schema: Any, prefix: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """(dotted name, field) of every field of a record schema, nested records (in unions, arrays, maps) too."""
    if isinstance(schema, list):
        for branch in schema:
            yield from _fields(branch, prefix)
    elif isinstance(schema, dict):
        if schema.get("type") == "record":
            for f in schema["fields"]:
                yield f"{prefix}{f['name']}", f
                yield from _fields(f["type"], f"{prefix}{f['name']}.")
        elif schema.get("type") in ("array", "map"):
            yield from _fields(schema.get("items", schema.get("values")), prefix)
