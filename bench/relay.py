"""The broker's raw limit for cofi's topology: a bare librdkafka relay through the same 7 hops.

A source puts N FileEvents (encoded as the tracker's intake encodes them) on `stage.<first>` in one
transaction; one relay process per stage moves each message to the next stage's topic, growing it by
the bytes a passthrough result adds there, so every hop carries messages of the pipeline's sizes; a
sink counts them on `stage.done`. With `eos=True` the relays do what a stage worker does around its
engine (read_committed, a transaction per `commit_every_messages` with the consumed offsets) and
nothing else: no decoding, validation, encoding, tracker or database. `eos=False`: plain
at-least-once relays (no transactions), the broker's floor.

    .venv/bin/python -m bench.relay --files 10000          # on its own; bench/throughput.py runs it first
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import time
import uuid
from dataclasses import dataclass
from multiprocessing.synchronize import Event
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition

from cofi.ops.admin import delete_topics, ensure_topics
from cofi.pipeline import events
from cofi.pipeline.codec import get_codec
from cofi.pipeline.kafka import consumer_config, producer_config
from cofi.pipeline.stages import REGISTRY, empty_results
from cofi.pipeline.topics import Topics, stage_plan
from cofi.pipeline.transactions import offsets_after
from cofi.settings import Settings

PLAN = stage_plan()  # a batch's default stages (the opt-in redact is not among them)


def hop_messages(batch_id: int, n: int) -> tuple[list[tuple[str, bytes]], list[bytes]]:
    """(key, value) of the N first-hop FileEvents, and per later hop the bytes a passthrough result adds."""
    codec = get_codec()
    first: list[tuple[str, bytes]] = []
    sample: dict[str, Any] = {}
    for i in range(n):
        file = f"/calls/call{i:06d}.wav"
        fid = events.file_id(batch_id, file)
        sample = {"eventId": f"trk-{fid}-g0-{PLAN[0]}", "batchId": batch_id, "fileId": fid, "file": file,
                  "audioPath": file, "currentAudio": file, "stages": list(PLAN), "generation": 0,
                  "metadata": {"clientCode": f"C{i % 97}"}, "emittedAt": events.now(), "results": empty_results(),
                  "trades": [], "questionnaire": None, "rules": None, "emitter": events.EMITTER_TRACKER,
                  "completedStage": None}
        first.append((fid, codec.encode("FileEvent", sample)))
    growth, size = [], len(first[-1][1])
    for spec in (r for r in REGISTRY if r.name in PLAN):  # as the worker's _output: the stage's (passthrough) result added to the event
        result = spec.result.model_validate({"worker": f"{spec.name}@bench-1", "engine": "passthrough",
                                             "durationMs": 3, **spec.result.passthrough(sample["currentAudio"])})
        sample = {**sample, "results": {**sample["results"], spec.name: result.record()},
                  "eventId": events.new_event_id(), "emitter": events.EMITTER_STAGE, "completedStage": spec.name}
        encoded = codec.encode("FileEvent", sample)
        growth.append(encoded[size:] if len(encoded) > size else b"")
        size = len(encoded)
    return first, growth


@dataclass(frozen=True)
class RelaySpec:
    settings: Settings
    source: str
    target: str
    extra: bytes
    eos: bool
    name: str


def _relay(spec: RelaySpec, ready: Event, stop: Event) -> None:
    s = spec.settings
    consumer = Consumer(consumer_config(s, f"{s.topic_prefix}-{spec.name}"))
    consumer.subscribe([spec.source], on_assign=lambda c, p: ready.set())
    producer = Producer(producer_config(s, f"{s.topic_prefix}-{spec.name}" if spec.eos else None))
    if spec.eos:
        producer.init_transactions(30)
    while not stop.is_set():
        msgs = [m for m in consumer.consume(s.commit_every_messages, s.commit_every_ms / 1000) if m.error() is None]
        if not msgs:
            continue
        if spec.eos:
            producer.begin_transaction()
        for m in msgs:
            while True:
                try:
                    producer.produce(spec.target, key=m.key(), value=m.value() + spec.extra)
                    break
                except BufferError:
                    producer.poll(0.05)
        offsets = offsets_after((m.topic(), m.partition(), m.offset()) for m in msgs)
        tps = [TopicPartition(t, p, o) for (t, p), o in offsets.items()]
        if spec.eos:
            producer.send_offsets_to_transaction(tps, consumer.consumer_group_metadata(), 30)
            producer.commit_transaction(60)
        else:
            producer.poll(0)
            consumer.commit(offsets=tps, asynchronous=True)
    producer.flush(10)
    consumer.close()


def _sink(settings: Settings, topic: str, n: int) -> float:
    """Seconds until n committed messages were read from `topic` (counted from the call)."""
    t0 = time.monotonic()
    consumer = Consumer(consumer_config(settings, f"{settings.topic_prefix}-sink"))
    consumer.subscribe([topic])
    got = 0
    try:
        while got < n:
            got += sum(m.error() is None for m in consumer.consume(1000, 0.2))
            if time.monotonic() - t0 > 1800:
                raise TimeoutError(f"relay sink: {got} of {n} messages after 30 min")
        return time.monotonic() - t0
    finally:
        consumer.close()


def run_relay(settings: Settings, n: int, *, eos: bool) -> float:
    """Files per second through the 7 hops (source -> 6 relays -> sink), on fresh topics."""
    s = settings.model_copy(update={"topic_prefix": f"{settings.topic_prefix}-relay{'eos' if eos else 'plain'}"
                                                    f"{uuid.uuid4().hex[:4]}"})
    topics = Topics(s.topic_prefix)
    ensure_topics(s, timeout_s=60)
    hops = [topics.stage(x) for x in PLAN] + [topics.done]
    first, growth = hop_messages(10_000_002, n)
    ctx = mp.get_context("spawn")
    stop = ctx.Event()
    procs, readies = [], []
    try:
        for i, (src, dst) in enumerate(zip(hops, hops[1:], strict=False)):
            ready = ctx.Event()
            spec = RelaySpec(s, src, dst, growth[i], eos, f"relay{i}")
            procs.append(ctx.Process(target=_relay, args=(spec, ready, stop), daemon=True))
            readies.append(ready)
        for p in procs:
            p.start()
        for r in readies:
            if not r.wait(120):
                raise TimeoutError("a relay process got no partitions within 120 s")
        source = Producer(producer_config(s, f"{s.topic_prefix}-source"))
        source.init_transactions(30)
        source.begin_transaction()
        t0 = time.monotonic()
        with ctx.Pool(1) as pool:
            sink = pool.apply_async(_sink, (s, hops[-1], n))
            for key, value in first:
                while True:
                    try:
                        source.produce(hops[0], key=key, value=value)
                        break
                    except BufferError:
                        source.poll(0.05)
            source.commit_transaction(120)
            sink.get(timeout=1900)
        return n / (time.monotonic() - t0)
    finally:
        stop.set()
        for p in procs:
            p.join(20)
            if p.is_alive():
                p.kill()
        delete_topics(s)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=10_000)
    ap.add_argument("--kafka", default="localhost:9092")
    ap.add_argument("--partitions", type=int, default=6)
    ap.add_argument("--replication", type=int, default=1)
    args = ap.parse_args()
    s = Settings(kafka_bootstrap_servers=args.kafka, topic_prefix=f"bench{uuid.uuid4().hex[:6]}",
                 topic_partitions=args.partitions, topic_replication=args.replication, commit_every_messages=500)
    for eos in (True, False):
        print(f"relay {'exactly-once' if eos else 'plain':<13} {run_relay(s, args.files, eos=eos):8.0f} files/s "
              "through 7 hops")


if __name__ == "__main__":
    main()
