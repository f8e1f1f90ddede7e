"""Batch intake: a BatchStart becomes one batchStatus row, a fileDistribution row per file and a
FileEvent per file on the first enabled stage; or a clear rejection.

Re-sending a BatchStart for an existing batch (new event id, same content) resumes it. A BatchStart read
again (the tracker stopped between its database and Kafka commits) is not expanded again: its files are
re-sent from the rows it wrote, so a manifest changed since cannot change the batch.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

from sqlalchemy import Connection

from cofi.audit.instruments import InstrumentError, default_master, master_of
from cofi.audit.rules import RulesError, load_rules
from cofi.audit.trades import TradeFileError, map_trades
from cofi.errors import BatchRejected, EventTooLarge, ManifestError, PathRefused, UnknownStageError
from cofi.pipeline import batchcheck, events
from cofi.pipeline.codec import Codec
from cofi.pipeline.manifest import read_manifest
from cofi.pipeline.paths import AudioRoots, confine_batch
from cofi.pipeline.stages import STAGES, empty_results
from cofi.pipeline.topics import Topics, first_stage, stage_plan
from cofi.pipeline.transactions import Outgoing
from cofi.redaction import PolicyError, checked_policy, enabled_stages
from cofi.settings import Settings
from services.tracker import store
from services.tracker.emit import emission
from services.tracker.filestate import new_row
from services.tracker.progress import LogRow
from services.tracker.recovery import resume_files

log = logging.getLogger(__name__)
INTAKE_CHUNK = 5000  # files whose rows are built and written at once


def content_hash(files: list[tuple[str, dict[str, str]]], plan: list[str], start: dict[str, Any]) -> str:
    doc = {"files": sorted([f, sorted(m.items())] for f, m in files), "plan": plan,
           "questionnaire": start.get("questionnaire"), "rules": start.get("rules"),
           "trades": sorted(t["tradeId"] for t in start.get("trades") or []),
           "instruments": sorted(i["symbol"] for i in start.get("instruments") or [])}
    if start.get("redact") is not None:  # only then: the hashes of batches submitted before v2 stay the same
        doc["redact"] = start["redact"]
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def _fitting(callback: str | None) -> str | None:
    """The callback of a rejected batch, if its column can hold it (a refusal must never fail to be written)."""
    return callback if callback is None or len(callback) <= batchcheck.MAX_CALLBACK_CHARS else None


class Intake:
    def __init__(self, settings: Settings, codec: Codec, topics: Topics, group: str) -> None:
        self.settings = settings
        self.codec = codec
        self.topics = topics
        self.group = group

    def handle(self, conn: Connection, start: dict[str, Any], touched: set[int]) -> list[Outgoing]:
        batch_id = start["batchId"]
        existing = store.load_batches(conn, [batch_id]).get(batch_id)
        seen = existing.config.get("events", {}).get(start["eventId"]) if existing else None
        if seen is not None and seen != self.group:
            return []  # history replayed by another consumer group: already applied
        if seen is not None and existing is not None:  # read again after a crash: pinned to what was taken in
            touched.add(batch_id)
            return [] if existing.status == "Rejected" else resume_files(conn, self.codec, self.topics, existing,
                                                                         bump=False)
        try:
            files, plan = self._expand(start)
        except BatchRejected as exc:
            self._reject(conn, start, existing, str(exc))
            return []
        digest = content_hash(files, plan, start)
        if existing is not None and existing.status != "Rejected":
            if existing.contentHash != digest:
                self._reject(conn, start, existing, "batch id already used by a batch with different content "
                             "(files, stages, questionnaire, rules or trades); submit with a new --batch-id")
                return []
            existing.config.setdefault("events", {})[start["eventId"]] = self.group
            store.save_batch_config(conn, batch_id, existing.config)
            store.insert_exec_logs(conn, [LogRow(batch_id, None, "batch_resumed", f"{batch_id}:resume:{start['eventId']}",
                                                 details=json.dumps({"by": "BatchStart re-sent"}))])
            touched.add(batch_id)
            log.info("tracker: batch %s re-submitted: resuming unfinished files", batch_id)
            return resume_files(conn, self.codec, self.topics, existing, bump=seen is None)
        try:
            return self._create(conn, start, files, plan, digest, touched)
        except TradeFileError as exc:
            self._reject(conn, start, None, f"trades: {exc}")
            return []
        except InstrumentError as exc:
            self._reject(conn, start, None, f"instruments: {exc}")
            return []
        except EventTooLarge as exc:
            self._reject(conn, start, None, str(exc))
            return []

    def _expand(self, start: dict[str, Any]) -> tuple[list[tuple[str, dict[str, str]]], list[str]]:
        batchcheck.check_batch_id(start["batchId"])
        try:
            policy = checked_policy(start.get("redact"))
            plan = stage_plan(start.get("skip") or [], enable=enabled_stages(policy))
        except (UnknownStageError, PolicyError) as exc:
            raise BatchRejected(str(exc)) from exc
        roots = AudioRoots.of(self.settings)
        try:
            confine_batch(start, roots)
            load_rules(start.get("rules"))  # the rules' budget, at submit: a costly rule never reaches llm2
        except (PathRefused, RulesError) as exc:
            raise BatchRejected(str(exc)) from exc
        files: list[tuple[str, dict[str, str]]] = [(f["file"], dict(f.get("metadata") or {}))
                                                   for f in start.get("files") or []]
        if start.get("manifest"):
            try:
                files += [(s.file, dict(s.metadata)) for s in read_manifest(start["manifest"], roots)]
            except ManifestError as exc:
                raise BatchRejected(f"manifest {start['manifest']}: {exc}") from exc
            except OSError as exc:
                raise BatchRejected(f"manifest {start['manifest']} unreadable: {exc}") from exc
        if not files:
            raise BatchRejected("the batch has no files")
        names = [f for f, _ in files]
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})[:5] if len(names) < 5000 else ["(several)"]
            raise BatchRejected(f"duplicate files in the batch: {', '.join(dup)}")
        batchcheck.check_files(files)
        batchcheck.check_callback(start.get("callback"))
        trades = start.get("trades") or []
        batchcheck.check_trades(trades, lambda i: f"trade {i + 1} ({trades[i].get('tradeId')})")
        return files, plan

    def _reject(self, conn: Connection, start: dict[str, Any], existing: store.BatchRow | None, reason: str) -> None:
        batch_id = start["batchId"]
        log.warning("tracker: batch %s rejected: %s", batch_id, reason)
        if existing is None or existing.status == "Rejected":
            store.insert_batch(conn, store.BatchRow(
                id=batch_id, status="Rejected", stage_status={s: "Pending" for s in STAGES}, stages=[],
                totalFiles=0, contentHash=None, callback=_fitting(start.get("callback")),
                config={"events": {start["eventId"]: self.group}}), reason=reason)
        # An existing batch is left as it is: the refusal is this submission's (its event id), not the batch's.
        store.insert_exec_logs(conn, [LogRow(batch_id, None, "batch_rejected", f"{batch_id}:rejected:{start['eventId']}",
                                             details=json.dumps({"reason": reason}))])

    def _create(self, conn: Connection, start: dict[str, Any], files: list[tuple[str, dict[str, str]]],
                plan: list[str], digest: str, touched: set[int]) -> list[Outgoing]:
        batch_id = start["batchId"]
        calls = [{"fileId": events.file_id(batch_id, f), "file": f, "metadata": m} for f, m in files]
        mapping = map_trades(start.get("trades") or [], calls)
        master = default_master().merged(master_of(start.get("instruments") or []))
        vocabulary = master.vocabulary(t["symbol"] for t in start.get("trades") or [])
        config = {
            "events": {start["eventId"]: self.group}, "round": 0, "questionnaire": start.get("questionnaire"),
            "rules": start.get("rules"), "submittedBy": start.get("submittedBy", ""),
            "trades": {"total": len(start.get("trades") or []),
                       "mapped": sum(len(v) for v in mapping.by_file.values()),
                       "unmapped": [t["tradeId"] for t in mapping.unmapped_trades],
                       "callsWithoutTrades": len(mapping.calls_without_trades),
                       "ambiguous": [list(a) if isinstance(a, tuple) else a for a in mapping.ambiguous]},
        }
        store.insert_batch(conn, store.BatchRow(
            id=batch_id, status="InProgress",
            stage_status={s: ("Pending" if s in plan else "Skipped") for s in STAGES}, stages=plan,
            totalFiles=len(files), contentHash=digest, callback=start.get("callback"), config=config))
        first = first_stage(plan)
        policy = checked_policy(start.get("redact"))
        out: list[Outgoing] = []
        for i in range(0, len(calls), INTAKE_CHUNK):  # rows saved per chunk: memory does not grow with the batch
            rows = []
            for call in calls[i:i + INTAKE_CHUNK]:
                event = {
                    "eventId": "", "batchId": batch_id, "fileId": call["fileId"], "file": call["file"],
                    "audioPath": call["file"], "currentAudio": call["file"], "stages": plan, "generation": 0,
                    "metadata": call["metadata"], "emittedAt": events.now(), "results": empty_results(),
                    "trades": mapping.by_file.get(call["fileId"], []), "questionnaire": start.get("questionnaire"),
                    "rules": start.get("rules"), "vocabulary": vocabulary,
                    "instruments": master.records(t["symbol"] for t in mapping.by_file.get(call["fileId"], [])),
                    "redactPolicy": policy,
                }
                em = emission(self.codec, self.topics, event, first, 0, max_bytes=self.settings.max_event_bytes)
                out.append(em)
                row = new_row(batch_id, call["fileId"], call["file"], first, call["metadata"])
                row.lastEvent = em.value
                rows.append(row)
            store.save_files(conn, rows)
        touched.add(batch_id)
        log.info("tracker: batch %s accepted: %d files, stages %s", batch_id, len(files), ",".join(plan))
        return out
