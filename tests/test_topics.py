"""Topic names, stage routing, and idempotent topic creation on the real broker."""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource

from cofi.devtools.pipeline import wait_for
from cofi.errors import AdminError, UnknownStageError
from cofi.ops.admin import BATCH_START_MAX_BYTES, TOPIC_HEADROOM_BYTES, delete_topics, ensure_topics, topic_configs
from cofi.pipeline.stages import DONE, STAGES
from cofi.pipeline.topics import Topics, first_stage, next_stage, stage_plan
from cofi.settings import Settings


def test_full_plan_and_routing() -> None:
    plan = stage_plan()
    assert plan == [s for s in STAGES if s != "redact"]  # opt-in: only for a batch with a redaction policy
    assert first_stage(plan) == "denoise"
    assert [next_stage(plan, s) for s in plan] == ["ivr", "lid", "stt", "llm1", "llm2", DONE]
    redacting = stage_plan(enable=["redact"])
    assert redacting == list(STAGES)
    assert next_stage(redacting, "stt") == "redact" and next_stage(redacting, "redact") == "llm1"
    assert stage_plan(["redact"], enable=["redact"]) == plan  # --skip wins


def test_opt_in_stage_names_are_checked() -> None:
    with pytest.raises(UnknownStageError, match="unknown stage"):
        stage_plan(enable=["redactt"])


def test_skipping_optional_stages() -> None:
    plan = stage_plan(["denoise", "llm2"])
    assert plan == ["ivr", "lid", "stt", "llm1"]
    assert first_stage(plan) == "ivr"
    assert next_stage(plan, "llm1") == DONE
    assert stage_plan(["denoise", "ivr", "llm1", "llm2"]) == ["lid", "stt"]
    assert first_stage([]) == DONE


@pytest.mark.parametrize("skip", [["lid"], ["stt"], ["ivr", "stt"]])
def test_mandatory_stage_cannot_be_skipped(skip: list[str]) -> None:
    with pytest.raises(UnknownStageError, match="cannot be skipped"):
        stage_plan(skip)


def test_unknown_stage_errors() -> None:
    with pytest.raises(UnknownStageError, match="unknown stage.*bogus"):
        stage_plan(["bogus"])
    with pytest.raises(UnknownStageError):
        Topics("cofi").stage("bogus")
    with pytest.raises(ValueError):
        next_stage(["lid", "stt"], "denoise")  # not in this plan


def test_topic_names() -> None:
    t = Topics("cofi")
    assert t.batch_start == "cofi.batch.start"
    assert t.stage("lid") == "cofi.stage.lid"
    assert t.stage(DONE) == t.done == "cofi.stage.done"
    assert t.stage_of("cofi.stage.stt") == "stt"
    assert t.stage_of("cofi.failed") is None
    assert len(set(t.all())) == len(t.all()) == len(STAGES) + 5
    assert t.dead_letter == "cofi.deadletter" and t.dead_letter not in t.tracked()
    assert all(name.startswith("t1.") for name in Topics("t1").all())


@pytest.mark.integration
def test_ensure_topics_is_idempotent(kafka_bootstrap: str) -> None:
    s = Settings(kafka_bootstrap_servers=kafka_bootstrap, topic_prefix=f"t{uuid.uuid4().hex[:10]}",
                 topic_partitions=2, topic_replication=1)
    names = Topics(s.topic_prefix).all()
    try:
        assert sorted(ensure_topics(s)) == sorted(names)
        assert ensure_topics(s) == []  # second run: nothing to do, no error
        admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
        meta = admin.list_topics(timeout=10).topics
        assert {n: len(meta[n].partitions) for n in names} == dict.fromkeys(names, 2)
        res = ConfigResource(ConfigResource.Type.TOPIC, Topics(s.topic_prefix).batch_start)
        config = admin.describe_configs([res])[res].result(timeout=10)
        assert int(config["max.message.bytes"].value) == BATCH_START_MAX_BYTES
        assert _max_bytes(admin, names) == {n: int(c["max.message.bytes"])
                                            for n, c in topic_configs(Topics(s.topic_prefix), s.max_event_bytes).items()}
        assert all(v > s.max_event_bytes for v in _max_bytes(admin, names).values())
        # a topic made by an older init (or by hand) with the broker's 1 MB default is set right by the next init
        stage_topic = Topics(s.topic_prefix).stage("stt")
        fut = admin.incremental_alter_configs([ConfigResource(ConfigResource.Type.TOPIC, stage_topic, incremental_configs=[
            ConfigEntry("max.message.bytes", "1048588", incremental_operation=AlterConfigOpType.SET)])])
        next(iter(fut.values())).result(timeout=10)
        wait_for(lambda: _max_bytes(admin, [stage_topic])[stage_topic] == 1048588, 30, "the 1 MB config applied")
        assert ensure_topics(s) == []
        wait_for(lambda: _max_bytes(admin, [stage_topic])[stage_topic] == s.max_event_bytes + TOPIC_HEADROOM_BYTES, 30,
                 "init set max.message.bytes back", lambda: str(_max_bytes(admin, [stage_topic])))
    finally:
        delete_topics(s)


def _max_bytes(admin: AdminClient, names: list[str]) -> dict[str, int]:
    res = [ConfigResource(ConfigResource.Type.TOPIC, n) for n in names]
    return {r.name: int(f.result(timeout=10)["max.message.bytes"].value) for r, f in admin.describe_configs(res).items()}


@pytest.mark.integration
def test_topic_prefix_fixture_creates_every_topic(kafka_bootstrap: str, topic_prefix: str) -> None:
    meta = AdminClient({"bootstrap.servers": kafka_bootstrap}).list_topics(timeout=10).topics
    for name in Topics(topic_prefix).all():
        assert len(meta[name].partitions) == 3, name


def test_unreachable_broker_is_a_clear_error() -> None:
    s = Settings(kafka_bootstrap_servers="127.0.0.1:1", topic_prefix="unreachable")
    with pytest.raises(AdminError, match="unreachable within 2s"):
        ensure_topics(s, timeout_s=2)
