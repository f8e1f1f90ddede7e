"""The stage worker on the real broker: routing, exactly-once, failures, retries, slow engines,
scaling, kill -9 recovery and metrics."""

from __future__ import annotations

import re
import time

import httpx
import pytest

from cofi.devtools.pipeline import ServiceProcess, produce
from cofi.pipeline.codec import get_codec
from cofi.pipeline.stages import STAGES
from cofi.pipeline.topics import Topics
from cofi.settings import Settings
from tests.support.engines import ScriptedEngine
from tests.support.harness import Collector, ThreadedWorkers, counts_by_file, decode_all, file_event, produce_events

pytestmark = pytest.mark.integration


def test_200_files_each_exactly_once_with_every_enabled_stage(settings: Settings) -> None:
    topics = Topics(settings.topic_prefix)
    full = list(STAGES)
    reduced = [s for s in STAGES if s not in ("denoise", "llm2")]
    evs = [file_event(i, full if i % 2 else reduced) for i in range(200)]
    out = Collector(settings, [topics.done, topics.failed])
    with ThreadedWorkers(settings, list(STAGES)):
        produce_events(settings, "denoise", [e for e in evs if e["stages"] == full])
        produce_events(settings, "ivr", [e for e in evs if e["stages"] == reduced])
        assert out.wait(lambda: len(out.on(topics.done)) >= 200, 90)
        time.sleep(1)
    out.stop()
    done = decode_all("FileEvent", out.on(topics.done))
    assert counts_by_file(out.on(topics.done)) == {e["fileId"]: 1 for e in evs}
    assert out.on(topics.failed) == []
    for e in done:
        ran = {s for s, r in e["results"].items() if r is not None}
        assert ran == set(e["stages"]), e["fileId"]
        if e["stages"] == reduced:
            assert e["results"]["denoise"] is None and e["results"]["llm2"] is None
        assert all(e["results"][s]["engine"] == "passthrough" for s in ran)


def test_poison_message_and_permanent_error_each_yield_one_file_failed(settings: Settings) -> None:
    topics = Topics(settings.topic_prefix)
    plan = ["lid", "stt"]
    evs = [file_event(i, plan) for i in range(20)]
    engine = ScriptedEngine("lid", permanent={"f00007"})
    out = Collector(settings, [topics.done, topics.failed])
    with ThreadedWorkers(settings, plan, {"lid": engine}):
        produce_events(settings, "lid", evs)
        produce(settings, topics.stage("lid"), [(b"junk", bytes(range(256)) * 3)])
        assert out.wait(lambda: len(out.on(topics.done)) >= 19 and len(out.on(topics.failed)) >= 2, 60)
        time.sleep(1)
    out.stop()
    failed = decode_all("FileFailed", out.on(topics.failed))
    assert len(failed) == 2
    by_type = {f["errorType"]: f for f in failed}
    assert by_type["PermanentError"]["fileId"] == "f00007"
    assert "not a RIFF/WAVE" in by_type["PermanentError"]["message"]
    assert by_type["PermanentError"]["attempts"] == 1
    assert by_type["DecodeError"]["batchId"] == -1
    assert by_type["DecodeError"]["fileId"] == "junk"  # the key: the tracker finds the file and its batch by it
    assert by_type["DecodeError"]["originalEvent"] == bytes(range(256)) * 3
    assert get_codec().decode_as("FileEvent", by_type["PermanentError"]["originalEvent"])["fileId"] == "f00007"
    assert set(counts_by_file(out.on(topics.done))) == {e["fileId"] for e in evs} - {"f00007"}


def test_transient_error_healing_on_third_attempt_succeeds(settings: Settings) -> None:
    topics = Topics(settings.topic_prefix)
    engine = ScriptedEngine("lid", flaky={"f00003": 3})
    out = Collector(settings, [topics.done, topics.failed])
    with ThreadedWorkers(settings.model_copy(update={"max_attempts": 3}), ["lid"], {"lid": engine}):
        produce_events(settings, "lid", [file_event(i, ["lid"]) for i in range(5)])
        assert out.wait(lambda: len(out.on(topics.done)) >= 5, 60)
        time.sleep(1)
    out.stop()
    assert engine.calls["f00003"] == 3
    assert out.on(topics.failed) == []
    assert counts_by_file(out.on(topics.done))["f00003"] == 1


def test_exhausted_retries_fail_the_file_and_the_batch_goes_on(settings: Settings) -> None:
    topics = Topics(settings.topic_prefix)
    engine = ScriptedEngine("lid", flaky={"f00001": 99})
    out = Collector(settings, [topics.done, topics.failed])
    with ThreadedWorkers(settings.model_copy(update={"max_attempts": 3}), ["lid"], {"lid": engine}):
        produce_events(settings, "lid", [file_event(i, ["lid"]) for i in range(4)])
        assert out.wait(lambda: len(out.on(topics.done)) >= 3 and out.on(topics.failed), 60)
    out.stop()
    [failed] = decode_all("FileFailed", out.on(topics.failed))
    assert failed["attempts"] == 3 and failed["errorType"] == "TransientError"
    assert "gave up after 3 attempts" in failed["message"] and failed["permanent"] is False


def test_engine_slower_than_max_poll_interval_completes_without_rebalance(settings: Settings) -> None:
    topics = Topics(settings.topic_prefix)
    tight = settings.model_copy(update={"max_poll_interval_ms": 6000, "session_timeout_ms": 6000})
    engine = ScriptedEngine("stt", sleep_s=8.0, slow=True)
    out = Collector(settings, [topics.done, topics.failed])
    with ThreadedWorkers(tight, ["stt"], {"stt": engine}) as tw:
        produce_events(settings, "stt", [file_event(i, ["stt"]) for i in range(2)])
        assert out.wait(lambda: len(out.on(topics.done)) >= 2, 60)
        time.sleep(1)
        revokes = tw.workers[0].metrics.transactions.labels("stt", "aborted")._value.get()
    out.stop()
    assert counts_by_file(out.on(topics.done)) == {"f00000": 1, "f00001": 1}
    assert engine.calls == {"f00000": 1, "f00001": 1}, "a rebalance would have re-run a file"
    assert revokes == 0


def test_two_instances_split_partitions_and_both_work(settings: Settings) -> None:
    topics = Topics(settings.topic_prefix)
    a, b = ScriptedEngine("lid", sleep_s=0.01), ScriptedEngine("lid", sleep_s=0.01)
    out = Collector(settings, [topics.done])
    s_a = settings.model_copy(update={"worker_instance": "a", "worker_id": "wa"})
    s_b = settings.model_copy(update={"worker_instance": "b", "worker_id": "wb"})
    with ThreadedWorkers(s_a, ["lid"], {"lid": a}) as ta, ThreadedWorkers(s_b, ["lid"], {"lid": b}) as tb:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (ta.workers[0].assigned and tb.workers[0].assigned):
            time.sleep(0.2)
        produce_events(settings, "lid", [file_event(i, ["lid"]) for i in range(300)])
        assert out.wait(lambda: len(out.on(topics.done)) >= 300, 90)
        time.sleep(1)
        assert ta.workers[0].assigned.isdisjoint(tb.workers[0].assigned)
    out.stop()
    assert a.calls and b.calls, "both instances must have processed files"
    assert set(a.calls).isdisjoint(b.calls)
    assert counts_by_file(out.on(topics.done)) == {f"f{i:05d}": 1 for i in range(300)}


def test_kill_minus_9_mid_batch_then_restart_delivers_each_file_once(settings: Settings, tmp_path) -> None:
    topics = Topics(settings.topic_prefix)
    n = 500
    out = Collector(settings, [topics.done, topics.failed])
    produce_events(settings, "lid", [file_event(i, ["lid"]) for i in range(n)])
    env = {"LID_ENGINE": "passthrough", "PASSTHROUGH_DELAY_MS": "10", "WORKER_INSTANCE": "k"}
    first = ServiceProcess("lid", settings, tmp_path, **env).start()
    try:
        assert out.wait(lambda: len(out.on(topics.done)) >= 100, 90), first.output()[-3000:]
        first.kill()
        killed_at = len(out.on(topics.done))
        assert killed_at < n, "the kill must land mid-batch"
        second = ServiceProcess("lid", settings, tmp_path, **env).start()
        try:
            assert out.wait(lambda: len(out.on(topics.done)) >= n, 120), second.output()[-3000:]
            time.sleep(2)
            assert second.terminate() == 0, "SIGTERM must exit cleanly"
        finally:
            second.stop()
    finally:
        first.stop()
        out.stop()
    assert counts_by_file(out.on(topics.done)) == {f"f{i:05d}": 1 for i in range(n)}
    assert out.on(topics.failed) == []


def test_metrics_endpoint_shows_counters_and_health(settings: Settings) -> None:
    topics = Topics(settings.topic_prefix)
    engine = ScriptedEngine("lid", permanent={"f00002"})
    out = Collector(settings, [topics.done, topics.failed])
    with ThreadedWorkers(settings, ["lid"], {"lid": engine}) as tw:
        produce_events(settings, "lid", [file_event(i, ["lid"]) for i in range(6)])
        assert out.wait(lambda: len(out.on(topics.done)) >= 5 and out.on(topics.failed), 60)
        time.sleep(6)  # one librdkafka statistics interval for the lag gauge
        port = tw.workers[0].health.port
        text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        health = httpx.get(f"http://127.0.0.1:{port}/healthz")
    out.stop()

    def value(pattern: str) -> float:
        m = re.search(pattern + r" ([0-9.e+]+)", text)
        assert m, f"{pattern} missing from /metrics:\n" + "\n".join(x for x in text.splitlines() if x.startswith("cofi_"))
        return float(m.group(1))

    assert value(r'cofi_stage_files_total\{engine="passthrough",outcome="success",stage="lid"\}') == 5
    assert value(r'cofi_stage_files_total\{engine="passthrough",outcome="failed",stage="lid"\}') == 1
    assert value(r'cofi_stage_processing_seconds_count\{engine="passthrough",stage="lid"\}') == 6
    assert value(r'cofi_stage_inflight\{stage="lid"\}') == 0
    assert re.search(r'cofi_consumer_lag\{partition="\d",stage="lid",topic="' + re.escape(topics.stage("lid")) + r'"\} 0', text)
    assert health.status_code == 200 and health.json()["ok"] is True


def test_worker_that_cannot_reach_kafka_says_so_retries_and_stops_cleanly(settings: Settings, caplog) -> None:
    dead = settings.model_copy(update={"kafka_bootstrap_servers": "127.0.0.1:1", "kafka_connect_timeout_s": 1.0})
    with caplog.at_level("ERROR", logger="cofi.pipeline.worker"), ThreadedWorkers(dead, ["lid"]) as tw:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len([r for r in caplog.records if "cannot reach Kafka" in r.message]) < 2:
            time.sleep(0.2)
    messages = [r.message for r in caplog.records if "cannot reach Kafka" in r.message]
    assert len(messages) >= 2, "it must keep retrying"
    assert "127.0.0.1:1" in messages[0] and "retrying in" in messages[0]
    assert not tw.threads[0].is_alive(), "stop must end the retry loop"
