"""The stage worker's edges on the real broker: a result that does not fit its stage's model becomes that
file's FileFailed (real batch id, the batch goes on), outputs say which stage they completed, and an
engine's health shows on /healthz."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from cofi.pipeline.engine import StageContext, StageOutput
from cofi.pipeline.events import EMITTER_STAGE
from cofi.pipeline.passthrough import PassthroughEngine
from cofi.pipeline.topics import Topics
from cofi.settings import Settings
from tests.support.harness import Collector, ThreadedWorkers, counts_by_file, decode_all, file_event, produce_events

pytestmark = pytest.mark.integration

BAD_RESULTS: dict[str, dict[str, Any]] = {
    "f00001": {"language": "en", "probability": "very"},  # not a number
    "f00002": {"language": "en", "probability": 0.9, "confidence": 0.5},  # a field the schema does not have
    "f00003": {"probability": 0.9},  # language missing
    "f00004": {"language": "\ud800", "probability": 0.9},  # valid for pydantic, not UTF-8: Avro cannot encode it
}


class BadResultEngine(PassthroughEngine):
    """lid engine whose result is wrong for some files."""

    def __init__(self) -> None:
        super().__init__("lid")

    def process(self, event: dict[str, Any], ctx: StageContext) -> StageOutput:
        bad = BAD_RESULTS.get(event["fileId"])
        return StageOutput(result=bad) if bad is not None else super().process(event, ctx)


class SwitchableHealthEngine(PassthroughEngine):
    def __init__(self) -> None:
        super().__init__("lid")
        self.state = (True, "")

    def health(self) -> tuple[bool, str]:
        return self.state


def test_invalid_results_fail_their_files_with_the_reason_and_the_batch_goes_on(settings: Settings) -> None:
    topics = Topics(settings.topic_prefix)
    out = Collector(settings, [topics.stage("stt"), topics.failed])
    with ThreadedWorkers(settings, ["lid"], {"lid": BadResultEngine()}):
        produce_events(settings, "lid", [file_event(i, ["lid", "stt"], batch_id=4242) for i in range(8)])
        assert out.wait(lambda: len(out.on(topics.stage("stt"))) >= 4 and len(out.on(topics.failed)) >= 4, 60)
        time.sleep(1)
    out.stop()
    failed = {f["fileId"]: f for f in decode_all("FileFailed", out.on(topics.failed))}
    assert set(failed) == set(BAD_RESULTS)
    assert all(f["batchId"] == 4242 and f["errorType"] == "ResultError" and f["permanent"] for f in failed.values())
    assert "probability: Input should be a valid number" in failed["f00001"]["message"]
    assert "confidence: Extra inputs are not permitted" in failed["f00002"]["message"]
    assert "language: Field required" in failed["f00003"]["message"]
    assert "does not encode: UnicodeEncodeError" in failed["f00004"]["message"]
    assert counts_by_file(out.on(topics.stage("stt"))) == {f"f{i:05d}": 1 for i in (0, 5, 6, 7)}
    forwarded = decode_all("FileEvent", out.on(topics.stage("stt")))
    assert {(e["emitter"], e["completedStage"]) for e in forwarded} == {(EMITTER_STAGE, "lid")}
    assert all(e["results"]["lid"]["engine"] == "passthrough" for e in forwarded)


def test_engine_health_shows_on_healthz(settings: Settings) -> None:
    engine = SwitchableHealthEngine()
    fast = settings.model_copy(update={"engine_health_interval_s": 0.2})

    def healthz(port: int, want: int) -> httpx.Response:
        deadline = time.monotonic() + 30
        while True:
            r = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
            if r.status_code == want or time.monotonic() > deadline:
                return r
            time.sleep(0.2)

    with ThreadedWorkers(fast, ["lid"], {"lid": engine}) as tw:
        worker = tw.workers[0]
        deadline = time.monotonic() + 30
        while worker.health is None or worker.consumer is None:
            assert time.monotonic() < deadline, "the worker did not start"
            time.sleep(0.1)
        port = worker.health.port
        assert healthz(port, 200).json()["ok"] is True
        engine.state = (False, "LLM server at 127.0.0.1:8080 does not answer")
        down = healthz(port, 503)
        assert down.status_code == 503
        assert down.json()["ok"] is False and down.json()["reason"] == "LLM server at 127.0.0.1:8080 does not answer"
        engine.state = (True, "")
        assert healthz(port, 200).status_code == 200
