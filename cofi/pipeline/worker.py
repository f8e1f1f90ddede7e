"""The stage worker: the one consume-process-produce loop every stage runs.

poll a micro-batch -> pause the partitions -> run the engine (threads, outside any
transaction) while polling so the group never times out -> validate each result against
the stage's model -> one transaction with the outputs and the consumed offsets -> resume.
Exactly-once from topic to topic. Each output says which stage it completed.

One file never holds the others back: past CARRY_AFTER_S the finished files are committed and the
still-running one is carried into the next micro-batch (its partition paused behind it); past its
deadline it fails and its engine call is abandoned (`enginepool`).
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import wait
from typing import Any

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition
from pydantic import ValidationError
from tenacity import RetryError

from cofi.errors import DeadlineExceeded, DecodeError, PathRefused, PermanentError, ResultError, TransientError
from cofi.pipeline import events
from cofi.pipeline.artifacts import ArtifactSync
from cofi.pipeline.backpressure import Downstream
from cofi.pipeline.codec import Codec, get_codec
from cofi.pipeline.control import CancelWatcher
from cofi.pipeline.engine import Engine, StageContext, StageOutput
from cofi.pipeline.enginepool import CrashJournal, EnginePool
from cofi.pipeline.inflight import Handled, InFlight, partitions, split_committable
from cofi.pipeline.kafka import instance_name
from cofi.pipeline.metrics import CachedHealth, StageMetrics
from cofi.pipeline.paths import AudioRoots, confine_event
from cofi.pipeline.results import first_errors
from cofi.pipeline.retries import EngineAttempts
from cofi.pipeline.service import ServiceLoop, first_offsets
from cofi.pipeline.stages import DONE
from cofi.pipeline.stages import stage as stage_spec
from cofi.pipeline.topics import Topics, next_stage
from cofi.pipeline.transactions import Outgoing, offsets_after
from cofi.settings import Settings

log = logging.getLogger(__name__)


class StageWorker(ServiceLoop):
    """Runs one engine for one stage until stopped."""

    def __init__(self, stage: str, engine: Engine, settings: Settings, *,
                 codec: Codec | None = None, metrics: StageMetrics | None = None,
                 serve_metrics: bool = True) -> None:
        self.metrics = metrics or StageMetrics()
        super().__init__(settings, who=stage, group=f"{settings.topic_prefix}-{stage}",
                         transactional_id=f"{settings.topic_prefix}-{stage}-{instance_name(settings)}",
                         registry=self.metrics.registry, metrics_port=settings.metrics_port_for(stage),
                         serve_metrics=serve_metrics)
        self.stage = stage
        self.spec = stage_spec(stage)
        self.engine = engine
        self.codec = codec or get_codec()
        self.topics = Topics(settings.topic_prefix)
        self.topic = self.topics.stage(stage)
        self.worker_name = f"{stage}@{settings.worker_id}"
        self.batch_size = settings.commit_every_messages if not engine.slow else max(1, settings.stage_concurrency)
        self.pool = EnginePool(settings.stage_concurrency, stage)
        # slow engines only: a fast one never holds a file long enough to be OOM-killed on it
        self.journal = CrashJournal(settings.artifact_root, stage) if engine.slow else None
        self.journaled: set[tuple[str, int]] = set()  # files in the journal now (a clean stop clears them)
        self.assigned: set[tuple[str, int]] = set()
        self.revoked_during_batch: set[tuple[str, int]] = set()
        self.buffer: list[Message] = []
        self.carry: list[InFlight] = []  # still running (or behind one that is) from the last micro-batch
        self.processed_total = 0
        self.cancels = CancelWatcher(settings, self.codec)
        self.downstream = Downstream(settings, stage)  # STAGE_MAX_AHEAD: no new files while a next stage is full
        self.holding = False  # its partitions are paused by the downstream backlog
        self.artifacts = ArtifactSync(settings)  # ARTIFACT_STORE: a shared filesystem, or S3 around each engine call
        self.engine_health = CachedHealth(self._health, settings.engine_health_interval_s)
        self.audio_roots = AudioRoots.of(settings)
        self.inflight = self.metrics.inflight.labels(stage)  # per file: a child looked up once
        self.engine_seconds = self.metrics.seconds.labels(stage, engine.name)

    # ---- the service loop's hooks --------------------------------------------------------

    def consumer_options(self) -> dict[str, Any]:
        return {"statistics.interval.ms": 5000, "stats_cb": lambda s: self.metrics.on_stats(self.stage, s)}

    def subscribe(self, consumer: Consumer) -> None:
        consumer.subscribe([self.topic], on_assign=self._on_assign, on_revoke=self._on_revoke,
                           on_lost=self._on_revoke)

    def health_detail(self) -> tuple[bool, dict[str, Any]]:
        ok, reason = self.engine_health.last
        detail = {"stage": self.stage, "engine": self.engine.name, "assigned": len(self.assigned),
                  "processed": self.processed_total, "abandoned": self.pool.abandoned}
        if self.downstream.enabled:  # held is healthy: the next stages are busy, not this one broken
            detail["held"] = self.downstream.held
            detail["waitingNext"] = self.downstream.last.per_stage
        hung = self.pool.hung()
        if ok and hung:
            ok, reason = False, hung
        return ok, {**detail, "reason": reason} if not ok else detail

    def _health(self) -> tuple[bool, str]:
        """The engine's health, then the artifact store's: without either no file can be processed."""
        ok, reason = self.engine.health()
        return (ok, reason) if not ok else self.artifacts.store.health()

    def on_start(self) -> None:
        self.cancels.start()
        self.engine_health.start()
        self.downstream.start()
        self.metrics.held.labels(self.stage).set(0)
        log.info("%s: engine=%s group=%s topic=%s transactional.id=%s batch=%d",
                 self.stage, self.engine.name, self.group, self.topic, self.sender.transactional_id,
                 self.batch_size)
        if self.engine.name == "passthrough":
            log.warning("%s: PASSTHROUGH engine: results are empty, for plumbing tests only", self.stage)

    def step(self) -> None:
        if self.downstream.held:
            self._hold()
            msgs: list[Message] = []
        else:
            self._release()
            msgs = self._next_batch()
        if msgs or self.carry:
            self._process_batch(msgs)

    def before_close(self) -> None:
        self.cancels.stop()
        self.downstream.stop()
        self.engine_health.stop()

    def after_close(self) -> None:
        self.pool.shutdown()
        if self.journal is not None:
            for entry in list(self.journaled):  # left to the next owner by a clean stop: not a crash
                self.journal.end(*entry)
        self.engine.close()
        log.info("%s: stopped after %d files", self.stage, self.processed_total)

    # ---- backpressure -------------------------------------------------------

    def _hold(self) -> None:
        """Take no new files: pause every assigned partition (one assigned meanwhile too) and only poll, so
        the group membership stays alive; files still running (the carry) finish."""
        assert self.consumer is not None
        self.holding = True  # the downstream monitor logged why
        if self.assigned:
            self.consumer.pause([TopicPartition(t, p) for t, p in self.assigned])
        got = self.consumer.consume(num_messages=max(1, self.batch_size - len(self.buffer)),
                                    timeout=min(0.2, self.settings.commit_every_ms / 1000))
        self.buffer.extend(self.usable(got))  # from a partition assigned since the last pause: kept for later
        self.metrics.held.labels(self.stage).set(1)

    def _release(self) -> None:
        if not self.holding:
            return
        assert self.consumer is not None
        self.holding = False
        blocked = partitions(self.carry)  # stay paused behind their running file
        free = [TopicPartition(t, p) for t, p in self.assigned if (t, p) not in blocked]
        if free:
            self.consumer.resume(free)
        self.metrics.held.labels(self.stage).set(0)

    # ---- rebalance -------------------------------------------------------

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.assigned |= {(p.topic, p.partition) for p in partitions}
        log.info("%s: assigned %s", self.stage, sorted(p.partition for p in partitions))

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        gone = {(p.topic, p.partition) for p in partitions}
        self.assigned -= gone
        self.revoked_during_batch |= gone
        # Buffered and carried messages of a revoked partition belong to its next owner.
        self.buffer = [m for m in self.buffer if (m.topic(), m.partition()) not in gone]
        self.carry = [i for i in self.carry if i.partition not in gone]
        log.info("%s: revoked %s", self.stage, sorted(p.partition for p in partitions))

    # ---- the loop ----------------------------------------------------------

    def _next_batch(self) -> list[Message]:
        """New messages up to the batch size (less what is carried), none of a partition blocked by a carry."""
        assert self.consumer is not None
        want = self.batch_size - len(self.carry)
        if want > 0 and len(self.buffer) < want:
            got = self.consumer.consume(num_messages=want - len(self.buffer),
                                        timeout=self.settings.commit_every_ms / 1000)
            self.buffer.extend(self.usable(got))
        blocked = partitions(self.carry)
        free = [m for m in self.buffer if (m.topic(), m.partition()) not in blocked]
        batch = free[:max(0, want)]
        taken = {id(m) for m in batch}
        self.buffer = [m for m in self.buffer if id(m) not in taken]
        return batch

    def _process_batch(self, msgs: list[Message]) -> None:
        assert self.consumer is not None and self.sender.producer is not None
        self.revoked_during_batch = set()
        items = self.carry + [InFlight(m, self.pool.submit(self._handle, m)) for m in msgs]
        carried_in = bool(self.carry)  # their partitions are still paused behind them
        self.carry = []
        began, deadline = time.monotonic(), None
        paused: list[TopicPartition] = []
        try:
            # Wait for the engine. A batch done within 0.2 s (a fast engine) neither polls nor pauses:
            # pausing drops librdkafka's prefetched messages, and re-fetching them after the resume
            # cost ~0.5 s per batch. A slower batch first takes the next batch's messages (so it starts
            # without that re-fetch), then pauses its partitions and every 0.2 s keeps the group
            # membership alive with a non-blocking poll (messages of partitions assigned meanwhile are
            # kept for the next batch).
            while not all(i.done for i in items) and not self._carry_now(items, began):
                if not wait([i.future for i in items if not i.done], timeout=0.2).not_done:
                    continue
                room = self.batch_size - len(self.buffer)
                if not paused and self.assigned and room <= 0:
                    paused = [TopicPartition(t, p) for t, p in self.assigned]
                    self.consumer.pause(paused)
                got = self.consumer.consume(num_messages=100 if paused else max(1, room), timeout=0)
                self.buffer.extend(self.usable(got))
                self.heartbeat.beat()
                self._fail_overdue(items)
                if self.stopping.is_set():
                    deadline = deadline or time.monotonic() + self.settings.shutdown_grace_s
                    if time.monotonic() > deadline:
                        log.warning("%s: shutdown grace over; %d files left uncommitted for the next owner",
                                    self.stage, sum(not i.done for i in items))
                        return
            ready, carried = split_committable(items)
            self.carry = [i for i in carried if i.partition in self.assigned  # a moved partition: its next owner's
                          and i.partition not in self.revoked_during_batch]
            if ready:
                self._commit([i.result() for i in ready])
        finally:
            if self.consumer is not None and (paused or carried_in or self.carry):
                blocked = partitions(self.carry)  # stay paused behind their running file
                if blocked and not paused:
                    self.consumer.pause([TopicPartition(t, p) for t, p in blocked])
                now_assigned = [TopicPartition(t, p) for t, p in self.assigned if (t, p) not in blocked]
                if now_assigned and not self.holding:
                    self.consumer.resume(now_assigned)

    def _carry_now(self, items: list[InFlight], began: float) -> bool:
        """Commit what is finished and carry the rest: a file has run past CARRY_AFTER_S beside finished ones."""
        if time.monotonic() - began < self.settings.commit_every_ms / 1000 or not any(i.done for i in items):
            return False
        return any((self.pool.running_for(i.future) or 0.0) > self.settings.carry_after_s
                   for i in items if not i.done)

    def _fail_overdue(self, items: list[InFlight]) -> None:
        """Fail every file whose engine call outlived the stage's deadline; the batch goes on without it."""
        limit = self.settings.deadline_for(self.stage)
        waiting = [i for i in items if not i.done]
        for k in self.pool.abandon_overdue([i.future for i in waiting], limit, skip=set()):
            item = waiting[k]
            raw = item.msg.value() or b""  # it decoded (an undecodable message fails at once, never late)
            item.overdue = self._failed(item.msg, raw, self.codec.decode_as("FileEvent", raw), DeadlineExceeded.__name__,
                                        f"engine {self.engine.name} was still busy on this file after {limit:.0f}s "
                                        f"({self.stage.upper()}_FILE_DEADLINE_S or FILE_DEADLINE_S); the call was "
                                        "abandoned and the stage went on", attempts=1)

    def _commit(self, handled: list[Handled]) -> None:
        """One transaction: every output of the batch and the consumed offsets."""
        assert self.consumer is not None and self.sender.producer is not None
        keep = [h for h in handled if (h.msg.topic(), h.msg.partition()) not in self.revoked_during_batch
                and (h.msg.topic(), h.msg.partition()) in self.assigned]
        dropped = len(handled) - len(keep)
        if dropped:
            log.info("%s: %d results dropped: their partitions moved to another worker", self.stage, dropped)
        if not keep:
            return
        offsets = offsets_after((h.msg.topic(), h.msg.partition(), h.msg.offset()) for h in keep)
        if not self.sender.commit((out for h in keep for out in h.outputs), offsets,
                                  self.consumer.consumer_group_metadata()):
            self.metrics.transactions.labels(self.stage, "aborted").inc()
            self.carry = [i for i in self.carry if i.partition not in offsets]  # re-read with their partition
            self._rewind(offsets, first_offsets(h.msg for h in keep))
            return
        self.metrics.transactions.labels(self.stage, "committed").inc()
        self.processed_total += len(keep)
        self.downstream.sent(len(keep))
        for h in keep:
            self.metrics.files.labels(self.stage, self.engine.name, h.outcome).inc()

    def _rewind(self, offsets: dict[tuple[str, int], int], first: dict[tuple[str, int], int]) -> None:
        """After an aborted transaction, re-read from the last committed offsets.

        When they cannot be read (broker down), from the batch's first offsets: the same place, as
        every earlier batch was committed; not seeking would skip the batch until a rebalance.
        """
        assert self.consumer is not None
        tps = [TopicPartition(t, p) for (t, p) in offsets]
        try:
            committed = {(tp.topic, tp.partition): tp.offset for tp in self.consumer.committed(tps, timeout=10)}
        except KafkaException as exc:
            log.warning("%s: cannot read committed offsets (%s); re-reading from the batch's first offsets",
                        self.stage, exc)
            committed = {}
        self.seek({tp: (committed[tp] if committed.get(tp, -1) >= 0 else first[tp])
                   for tp in offsets if tp in self.assigned})
        self.buffer = [m for m in self.buffer if (m.topic(), m.partition()) not in offsets]

    # ---- one message -------------------------------------------------------

    def _handle(self, msg: Message) -> Handled:
        """Never raises: whatever goes wrong with one file becomes that file's FileFailed."""
        raw = msg.value() or b""
        try:
            event = self.codec.decode_as("FileEvent", raw)
        except DecodeError as exc:
            log.warning("%s: undecodable message at %s[%d]@%d: %s", self.stage, msg.topic(), msg.partition(),
                        msg.offset(), exc)
            return self._failed(msg, raw, None, "DecodeError", str(exc), attempts=0, outcome="decode_error")
        try:
            return self._handle_event(msg, raw, event)
        except PermanentError as exc:  # the forwarded event too large, ...
            return self._failed(msg, raw, event, type(exc).__name__, str(exc), attempts=0)
        except Exception as exc:  # noqa: BLE001 - a bug must fail one file, not stop the stage
            log.exception("%s: %s: unexpected error", self.stage, event.get("file"))
            return self._failed(msg, raw, event, type(exc).__name__, f"internal error in the {self.stage} worker: "
                                f"{exc}", attempts=0)

    def _handle_event(self, msg: Message, raw: bytes, event: dict[str, Any]) -> Handled:
        if self.cancels.is_cancelled(event["batchId"]):
            return Handled(msg, [], outcome="cancelled")
        if self.stage not in event["stages"]:
            return self._failed(msg, raw, event, "RoutingError",
                                f"stage {self.stage} is not in the file's plan {event['stages']}", attempts=0)
        try:
            confine_event(event, self.audio_roots, self.settings.artifact_root)
        except PathRefused as exc:
            return self._failed(msg, raw, event, type(exc).__name__, str(exc), attempts=0)
        if event["results"].get(self.stage) is not None:
            return Handled(msg, [self._forward(event)], outcome="forwarded")
        return self._run_engine(msg, raw, event)

    def _run_engine(self, msg: Message, raw: bytes, event: dict[str, Any]) -> Handled:
        ctx = StageContext(stage=self.stage, worker=self.worker_name, settings=self.settings,
                           batch_id=event["batchId"], file_id=event["fileId"])
        started = time.monotonic()
        if self.journal is None:
            return self._attempts(msg, raw, event, ctx, started)
        entry = (event["fileId"], event.get("generation", 0))
        died = self.journal.begin(*entry)
        if died >= self.settings.max_worker_crashes:
            self.journal.end(*entry)
            return self._failed(msg, raw, event, "WorkerCrashed",
                                f"the {self.stage} worker died {died} times while processing this file (killed for "
                                "memory, or a crash in native code); failed so that the next worker does not die the "
                                "same way", died)
        self.journaled.add(entry)
        try:
            return self._attempts(msg, raw, event, ctx, started)
        finally:
            self.journaled.discard(entry)
            self.journal.end(*entry)

    def _attempts(self, msg: Message, raw: bytes, event: dict[str, Any], ctx: StageContext,
                  started: float) -> Handled:
        tries = EngineAttempts(self.settings, self._backoff, f"{self.stage}: {event['file']}",
                               lambda: self.metrics.retries.labels(self.stage).inc())
        self.inflight.inc()
        try:
            output = tries.run(lambda: self.artifacts.around(ctx.batch_id, ctx.file_id,
                                                             lambda: self.engine.process(event, ctx)))
        except PermanentError as exc:
            return self._failed(msg, raw, event, type(exc).__name__, str(exc), tries.attempts, started=started)
        except RetryError as exc:
            last, attempts = exc.last_attempt.exception(), tries.attempts
            return self._failed(msg, raw, event, type(last).__name__,
                                f"gave up after {attempts} attempts: {last}", attempts, started=started,
                                permanent=not isinstance(last, TransientError))
        finally:
            self.inflight.dec()
            self.engine_seconds.observe(time.monotonic() - started)
        try:
            return Handled(msg, [self._output(event, output, time.monotonic() - started)])
        except PermanentError as exc:  # ResultError: does not fit its model; EventTooLarge
            return self._failed(msg, raw, event, type(exc).__name__, str(exc), tries.attempts, started=started)

    def _backoff(self, seconds: float) -> None:
        """A retry's wait, its engine place given to another file meanwhile (cut short by a stop)."""
        with self.pool.waiting():
            self.stopping.wait(seconds)

    def _output(self, event: dict[str, Any], output: StageOutput, elapsed_s: float) -> Outgoing:
        """The engine's result, completed and validated against the stage's model, in the outgoing event;
        ResultError when it does not fit the model or does not encode."""
        result = {"worker": self.worker_name, "engine": self.engine.name, "durationMs": int(elapsed_s * 1000),
                  **output.result}
        try:
            typed = self.spec.result.model_validate(result)
        except ValidationError as exc:
            raise ResultError(f"engine {self.engine.name} returned an invalid {self.stage} result: "
                              f"{first_errors(exc)}") from None
        event = {**event, "results": {**event["results"], self.stage: typed.record()}}
        if output.audio_path:
            event["currentAudio"] = output.audio_path
        try:
            return self._forward(event)
        except (ValueError, TypeError, OverflowError) as exc:  # fastavro's ways of refusing a record
            raise ResultError(f"the {self.stage} result of engine {self.engine.name} does not encode: "
                              f"{type(exc).__name__}: {exc}") from None

    def _forward(self, event: dict[str, Any]) -> Outgoing:
        nxt = next_stage(event["stages"], self.stage)
        out = {**event, "eventId": events.new_event_id(), "emittedAt": events.now(),
               "emitter": events.EMITTER_STAGE, "completedStage": self.stage}
        topic = self.topics.done if nxt == DONE else self.topics.stage(nxt)
        value = events.checked_size(self.codec.encode("FileEvent", out), self.settings.max_event_bytes,
                                    f"the event of {event['file']} after {self.stage}")
        return Outgoing(topic, event["fileId"], value)

    def _failed(self, msg: Message, raw: bytes, event: dict[str, Any] | None, error_type: str, message: str,
                attempts: int, *, started: float | None = None, permanent: bool = True,
                outcome: str = "failed") -> Handled:
        duration_ms = int((time.monotonic() - started) * 1000) if started else 0
        key = event["fileId"] if event else (msg.key().decode(errors="replace") if msg.key() else None)
        failed = events.file_failed(stage=self.stage, error_type=error_type, message=message, attempts=attempts,
                                    worker=self.worker_name, topic=msg.topic(), partition=msg.partition(),
                                    offset=msg.offset(), raw=raw, event=event, engine=self.engine.name,
                                    duration_ms=duration_ms, permanent=permanent, file_id=key)
        log.warning("%s: %s failed: %s: %s", self.stage, event["file"] if event else "<undecodable>",
                    error_type, message)
        return Handled(msg, [Outgoing(self.topics.failed, key, events.encode_failed(self.codec, failed))],
                       outcome=outcome)


# services/<stage>/__main__.py and tests import these from here
from cofi.pipeline.runner import EngineFactory, build_engine, run_service  # noqa: E402, F401
