"""STT and LID at full use of the machine, against faster-whisper itself on the same files, in one run.

Generated stereo calls go through the stage as the pipeline runs it: `--instances` processes of
`python -m services.<stage>` (WHISPER_CPU_THREADS=`--threads` each, one file at a time), fed through
Kafka and read back from the next stage's topic. The same files then go through faster-whisper
directly: one WhisperModel (num_workers=instances, cpu_threads=threads) called from `instances`
threads with the engine's options (STT: each channel, beam 5, word timestamps, VAD filter; LID: the
mix, VAD filter, 2 segments). Rounds alternate (direct, pipeline, ...) so the load other work puts on
a shared machine falls on both alike. Prints audio seconds per wall second for each, the ratio
pipeline/direct and CPU seconds per audio second.

    .venv/bin/python -m bench.audio_throughput --calls 8 --instances 2 --threads 1
"""

from __future__ import annotations

import argparse
import os
import queue
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Producer

from cofi.devtools.pipeline import ServiceProcess, wait_for
from cofi.devtools.synth import make_call
from cofi.models.whisper import resolve_whisper_path
from cofi.ops.admin import delete_topics, ensure_topics
from cofi.pipeline import events
from cofi.pipeline.codec import get_codec
from cofi.pipeline.kafka import consumer_config, producer_config
from cofi.pipeline.stages import empty_results
from cofi.pipeline.topics import Topics, next_stage
from cofi.settings import Settings

PLAN = ["lid", "stt"]  # the mandatory stages; the optional ones are skipped
LID_RESULT = {"worker": "bench", "engine": "bench", "durationMs": 0, "language": "en", "probability": 1.0, "top": []}


@dataclass
class Call:
    path: Path
    seconds: float


@dataclass
class Run:
    wall: float
    cpu: float

    def rate(self, audio: float) -> float:
        return audio / self.wall


def cpu_of(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


# ---- faster-whisper directly ------------------------------------------------------------------------

def direct(stage: str, calls: list[Call], settings: Settings, instances: int, threads: int) -> Run:
    from faster_whisper import WhisperModel, decode_audio
    from faster_whisper.vad import VadOptions

    model = WhisperModel(str(resolve_whisper_path(settings)), device=settings.whisper_device,
                         compute_type=settings.whisper_compute_type, cpu_threads=threads, num_workers=instances,
                         local_files_only=True)

    def one(call: Call) -> None:
        if stage == "lid":
            model.detect_language(decode_audio(str(call.path)), vad_filter=True,
                                  vad_parameters=VadOptions(min_silence_duration_ms=500), language_detection_segments=2)
            return
        for channel in decode_audio(str(call.path), split_stereo=True):
            segments, _ = model.transcribe(channel, language="en", beam_size=settings.whisper_beam_size,
                                           word_timestamps=True, vad_filter=True, condition_on_previous_text=False,
                                           vad_parameters=VadOptions(min_silence_duration_ms=500, speech_pad_ms=200))
            list(segments)  # the generator does the work

    todo: queue.Queue[Call] = queue.Queue()
    for c in sorted(calls, key=lambda c: -c.seconds):
        todo.put(c)

    def worker() -> None:
        while True:
            try:
                one(todo.get_nowait())
            except queue.Empty:
                return

    c0, t0 = time.process_time(), time.monotonic()
    pool = [threading.Thread(target=worker) for _ in range(instances)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return Run(time.monotonic() - t0, time.process_time() - c0)


# ---- the stage as the pipeline runs it ----------------------------------------------------------------

def _event(call: Call, batch_id: int, stage: str) -> dict[str, Any]:
    fid = events.file_id(batch_id, str(call.path))
    results = empty_results()
    if stage == "stt":
        results["lid"] = LID_RESULT
    return {"eventId": events.new_event_id(), "batchId": batch_id, "fileId": fid, "file": str(call.path),
            "audioPath": str(call.path), "currentAudio": str(call.path), "stages": PLAN, "generation": 0,
            "metadata": {}, "emittedAt": events.now(), "results": results, "trades": [], "questionnaire": None,
            "rules": None, "emitter": events.EMITTER_TRACKER, "completedStage": None}


def balanced(calls: list[Call], partitions: int) -> list[tuple[Call, int]]:
    """Longest first, each to the partition with the least audio so far: instances get equal work, as
    they do over a large batch (a handful of calls hashed to partitions would not)."""
    load = [0.0] * partitions
    out = []
    for c in sorted(calls, key=lambda c: -c.seconds):
        p = load.index(min(load))
        load[p] += c.seconds
        out.append((c, p))
    return out


def pipeline(stage: str, calls: list[Call], settings: Settings, work: Path, instances: int, threads: int,
             batch_id: int) -> Run:
    s = settings.model_copy(update={"topic_prefix": f"benchaudio{uuid.uuid4().hex[:6]}", "topic_partitions": instances})
    topics = Topics(s.topic_prefix)
    ensure_topics(s, timeout_s=60)
    out_topic = topics.done if next_stage(PLAN, stage) == "done" else topics.stage(next_stage(PLAN, stage))
    env = {"WHISPER_CPU_THREADS": str(threads), "WHISPER_NUM_WORKERS": "1", "STAGE_CONCURRENCY": "1",
           "COMMIT_EVERY_MS": "200", "PYTHONUNBUFFERED": "1"}
    reader = Consumer(consumer_config(s, f"{s.topic_prefix}-reader"))
    reader.subscribe([out_topic, topics.failed])
    procs = [ServiceProcess(stage, s, work, WORKER_INSTANCE=f"{stage}-{i}", WORKER_ID=f"{stage}-{i}", **env).start()
             for i in range(instances)]
    try:
        wait_for(lambda: all("assigned [" in p.output() and "assigned []" not in p.output() for p in procs),
                 300, f"{instances} {stage} instances loaded and assigned a partition each",
                 lambda: "\n".join(p.output()[-2000:] for p in procs))
        codec = get_codec()
        producer = Producer(producer_config(s))
        c0, t0 = cpu_of([p.proc.pid for p in procs if p.proc]), time.monotonic()
        for call, part in balanced(calls, instances):
            ev = _event(call, batch_id, stage)
            producer.produce(topics.stage(stage), key=ev["fileId"], value=codec.encode("FileEvent", ev),
                             partition=part)
        producer.flush(30)
        got = 0
        while got < len(calls):
            for m in reader.consume(10, 0.2):
                if m.error() is None and m.topic() == topics.failed:
                    raise RuntimeError(f"{stage}: a file failed: {codec.decode_as('FileFailed', m.value())['message']}")
                got += m.error() is None
            if time.monotonic() - t0 > 3600:
                raise TimeoutError(f"{stage}: {got} of {len(calls)} results after an hour")
        wall = time.monotonic() - t0
        return Run(wall, cpu_of([p.proc.pid for p in procs if p.proc]) - c0)
    finally:
        for p in procs:
            if p.proc is not None and p.proc.poll() is None:
                p.terminate(60)
            p.stop()
        reader.close()
        delete_topics(s)


def make_calls(n: int, work: Path, seed: int) -> list[Call]:
    calls = []
    for i in range(n):
        path = work / f"call_{i:03d}.wav"
        truth = make_call(path, turns=4 + i % 3, ivr=False, stereo=True, snr_db=20, seed=seed * 1000 + i)
        calls.append(Call(path, truth.duration))
    return calls


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=8)
    ap.add_argument("--instances", type=int, default=2, help="stage processes (and direct threads)")
    ap.add_argument("--threads", type=int, default=1, help="CTranslate2 threads per instance")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--stages", default="stt,lid")
    ap.add_argument("--kafka", default="localhost:9092")
    ap.add_argument("--seed", type=int, default=3)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="cofi-bench-fullaudio-"))
    settings = Settings(kafka_bootstrap_servers=args.kafka, artifact_root=work / "artifacts", metrics_port=0)
    calls = make_calls(args.calls, work, args.seed)
    audio = sum(c.seconds for c in calls)
    print(f"{len(calls)} stereo calls, {audio:.0f} s of audio; {args.instances} instances x {args.threads} "
          f"thread(s) on {os.cpu_count()} cores; WHISPER_MODEL={settings.whisper_model} "
          f"{settings.whisper_device}/{settings.whisper_compute_type}")
    for n, stage in enumerate(args.stages.split(",")):
        runs: dict[str, list[Run]] = {"direct": [], "pipeline": []}
        order: list[tuple[str, Callable[[], Run]]] = [
            ("direct", lambda st=stage: direct(st, calls, settings, args.instances, args.threads)),
            ("pipeline", lambda st=stage, b=n: pipeline(st, calls, settings, work, args.instances, args.threads,
                                                        700_000 + b))]
        for r in range(args.rounds):
            for kind, fn in order if r % 2 == 0 else order[::-1]:
                run = fn()
                runs[kind].append(run)
                print(f"  {stage} round {r + 1} {kind:<8} {run.wall:6.1f} s = {run.rate(audio):5.2f} audio s/s, "
                      f"CPU {run.cpu / audio:.3f} s per audio s", flush=True)
        rate = {k: audio * len(v) / sum(x.wall for x in v) for k, v in runs.items()}
        cpu = {k: sum(x.cpu for x in v) / (audio * len(v)) for k, v in runs.items()}
        print(f"{stage}: pipeline {rate['pipeline']:.2f} audio s per wall s, faster-whisper directly "
              f"{rate['direct']:.2f}: pipeline/direct = {rate['pipeline'] / rate['direct']:.2f}; CPU per audio s "
              f"{cpu['pipeline']:.3f} vs {cpu['direct']:.3f}: direct/pipeline = {cpu['direct'] / cpu['pipeline']:.2f} "
              "(the wall ratio moves with what else runs on a shared machine, the CPU one does not)")


if __name__ == "__main__":
    main()
