"""Stage results: each pydantic model against its Avro record (names, order, optionality, types, ranges),
the registry against the schema and the tables, and what validation refuses."""

from __future__ import annotations

import json
import types
import typing
from typing import Any

import pytest
from annotated_types import Ge, Le
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from cofi import db
from cofi.pipeline.codec import CURRENT, SCHEMA_DIR, get_codec
from cofi.pipeline.results import Llm1Result, Record, SttResult
from cofi.pipeline.stages import REGISTRY, STAGES, StageResults, audit_owner, empty_results, results_of
from cofi.pipeline.topics import stage_plan
from cofi.settings import Settings

AVRO_SCALARS: dict[str, type] = {"string": str, "boolean": bool, "double": float, "float": float, "int": int,
                                 "long": int}
AVRO_RANGES = {"int": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)}


def _file_event_schema() -> dict[str, Any]:
    return json.loads((SCHEMA_DIR / CURRENT["FileEvent"]).read_text())


def _results_record() -> dict[str, Any]:
    return next(f for f in _file_event_schema()["fields"] if f["name"] == "results")["type"]


def _bounds(info: FieldInfo) -> tuple[int | None, int | None]:
    lo = next((m.ge for m in info.metadata if isinstance(m, Ge)), None)
    hi = next((m.le for m in info.metadata if isinstance(m, Le)), None)
    return lo, hi


def _check_type(avro: Any, annotation: Any, info: FieldInfo | None, where: str) -> None:
    """The pydantic annotation holds exactly what the Avro type holds (one level of a record field)."""
    if isinstance(avro, list):  # a union: only ["null", X] is used
        assert avro[0] == "null" and len(avro) == 2, f"{where}: unexpected union {avro}"
        args = typing.get_args(annotation)
        assert typing.get_origin(annotation) in (typing.Union, types.UnionType) and type(None) in args, \
            f"{where}: Avro allows null, the model does not ({annotation})"
        (inner,) = [a for a in args if a is not type(None)]
        _check_type(avro[1], inner, info, where)
        return
    assert typing.get_origin(annotation) not in (typing.Union, types.UnionType), \
        f"{where}: the model allows None, Avro does not"
    if isinstance(avro, str):
        assert annotation is AVRO_SCALARS[avro], f"{where}: Avro {avro}, model {annotation}"
        if avro in AVRO_RANGES:
            assert info is not None and _bounds(info) == AVRO_RANGES[avro], f"{where}: {avro} range not enforced"
        return
    if avro["type"] == "array":
        assert typing.get_origin(annotation) is list, f"{where}: Avro array, model {annotation}"
        (item,) = typing.get_args(annotation)
        _check_type(avro["items"], item, None, f"{where}[]")
        return
    assert avro["type"] == "record", f"{where}: unexpected Avro type {avro}"
    assert isinstance(annotation, type) and issubclass(annotation, Record), f"{where}: record, model {annotation}"
    check_record(avro, annotation, where)


def check_record(avro: dict[str, Any], model: type[BaseModel], where: str) -> None:
    names = [f["name"] for f in avro["fields"]]
    assert list(model.model_fields) == names, f"{where}: model fields {list(model.model_fields)}, Avro {names}"
    for f in avro["fields"]:
        info = model.model_fields[f["name"]]
        has_default = "default" in f
        assert (not info.is_required()) == has_default, f"{where}.{f['name']}: optional in one, required in the other"
        if has_default:
            assert info.get_default(call_default_factory=True) == f["default"], f"{where}.{f['name']}: defaults differ"
        _check_type(f["type"], info.annotation, info, f"{where}.{f['name']}")


def test_results_record_has_one_field_per_registry_stage_in_order() -> None:
    record = _results_record()
    assert [f["name"] for f in record["fields"]] == list(STAGES)
    assert list(StageResults.model_fields) == list(STAGES)
    assert all(f["default"] is None and f["type"][0] == "null" for f in record["fields"])


@pytest.mark.parametrize("spec", REGISTRY, ids=STAGES)
def test_each_stage_model_mirrors_its_avro_record(spec) -> None:
    avro = next(f for f in _results_record()["fields"] if f["name"] == spec.name)["type"][1]
    check_record(avro, spec.result, spec.result.__name__)


@pytest.mark.parametrize("spec", REGISTRY, ids=STAGES)
def test_passthrough_result_validates_encodes_and_reads_back_as_the_model(spec) -> None:
    full = {"worker": "w", "engine": "passthrough", "durationMs": 3, **spec.result.passthrough("/a.wav")}
    typed = spec.result.model_validate(full)
    event = {"eventId": "e", "batchId": 1, "fileId": "f", "file": "a.wav", "audioPath": "/a.wav",
             "currentAudio": "/a.wav", "stages": list(STAGES), "emittedAt": 0,
             "results": {**empty_results(), spec.name: typed.record()}}
    codec = get_codec()
    read = codec.decode_as("FileEvent", codec.encode("FileEvent", event))
    assert getattr(results_of(read), spec.name) == typed


def test_audit_columns_are_auditresult_columns() -> None:
    columns = set(db.audit_result.c.keys())
    filled = [c for s in REGISTRY for c in s.result.AUDIT_COLUMNS]
    assert set(filled) <= columns
    shared = {c for c in filled if filled.count(c) > 1}
    assert shared == {"transcriptPath", "transcript"}, "only redact replaces columns of an earlier stage (stt's)"
    # the last stage of a batch's plan that fills a column owns it: a batch that redacts stores redact's text
    assert audit_owner(stage_plan())["transcript"] == "stt"
    assert audit_owner(stage_plan(enable=["redact"]))["transcript"] == "redact"
    assert audit_owner(stage_plan(enable=["redact"]))["speech"] == "stt"
    for s in REGISTRY:
        typed = s.result.model_validate({"worker": "w", "engine": "e", "durationMs": 0, **s.result.passthrough("/a")})
        assert tuple(typed.audit_columns()) == s.result.AUDIT_COLUMNS


def test_registry_drives_tables_and_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    fd, bs = set(db.file_distribution.c.keys()), set(db.batch_status.c.keys())
    assert all(s.done_column in fd and s.status_column in bs for s in REGISTRY)
    assert db.DONE_COLUMNS == tuple(f"{s}Done" for s in STAGES)  # the seed's names
    for s in REGISTRY:
        assert Settings().engine_for(s.name) == s.default_engine
        monkeypatch.setenv(f"{s.name.upper()}_ENGINE", "passthrough")
        assert Settings().engine_for(s.name) == "passthrough"


@pytest.mark.parametrize(("result", "message"), [
    ({"language": "en", "transcriptPath": "/t.json", "text": "hi", "words": 2**31}, "words: Input should be less"),
    ({"language": "en", "transcriptPath": "/t.json", "text": "hi"}, "speech: Field required"),
    ({"language": "en", "transcriptPath": "/t.json", "text": 5, "speech": {}}, "text: Input should be a valid string"),
    ({"language": "en", "transcriptPath": "/t", "text": "", "speech": {}, "tone": "x"}, "tone: Extra inputs"),
])
def test_validation_refuses_what_avro_would_refuse_or_silently_drop(result: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as exc:
        SttResult.model_validate({"worker": "w", "engine": "e", "durationMs": 1, **result})
    text = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.value.errors())
    assert message in text, text


def test_llm1_engine_output_as_it_is_today_validates(tmp_path) -> None:
    """llm1 returns a dict (the lead rewrites it later): the worker's validation must accept it."""
    from cofi.pipeline.engine import StageContext
    from services.llm1.engines import build_engine
    from tests.support.llm_events import make_event

    questionnaire = ("questions:\n  - {id: quiet, text: Quiet, type: speech, speech: {metric: silenceRatio, "
                     "op: '<', threshold: 0.3}}\n  - {id: trades_ok, text: Trades ok, type: trade}\n")
    settings = Settings(llm_base_url="http://127.0.0.1:9/v1", artifact_root=tmp_path)
    engine = build_engine("llm", settings)
    try:
        out = engine.process(make_event("agent: hello", questionnaire=questionnaire),
                             StageContext("llm1", "w", settings, 7, "f1"))
    finally:
        engine.close()
    typed = Llm1Result.model_validate({"worker": "w", "engine": "llm", "durationMs": 1, **out.result})
    assert [a.questionId for a in typed.answers] == ["quiet", "trades_ok"]
