"""One call for the QA page: its rows, transcript turns, located evidence, audio and history.

Files are only ever read from where the pipeline wrote them: the transcript from under
ARTIFACT_ROOT, the audio from under ARTIFACT_ROOT or the call's recorded original path.
Nothing in a request names a path. A call of a batch that redacts shows only the redact
stage's transcript and audio (nothing while redaction is pending or failed); its original
only when asked for (`original=True`), which the pages allow to privileged roles only.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, select

from cofi import db
from cofi.pipeline.codec import DecodeError, get_codec
from cofi.pipeline.paths import within
from cofi.pipeline.stages import results_of
from cofi.redaction import STAGE as REDACT
from services.console.actions import decode_json
from services.console.evidence import Location, Turn, Word, locate

log = logging.getLogger(__name__)

AUDIO_TYPES = {".wav": "audio/wav", ".flac": "audio/flac", ".mp3": "audio/mpeg", ".ogg": "audio/ogg",
               ".opus": "audio/ogg", ".m4a": "audio/mp4"}
ARTIFACT_AUDIO = ("ivr", "denoise")  # later stages' audio first: the trimmed, cleaned call
AUDIT_JSON = ("speech", "answers", "normalizedAnswers", "ruleResults", "tradeChecks", "reasons")


class CallNotFound(LookupError):
    pass


@dataclass
class Evidence:
    id: str  # "q:<questionId>" or "t:<tradeId>"
    kind: str  # answer | trade
    label: str
    quote: str
    location: Location | None
    item: dict[str, Any] = field(default_factory=dict)  # the answer or trade check, as stored


@dataclass
class CallView:
    batch_id: int
    file_id: str
    file: str
    row: dict[str, Any]
    audit: dict[str, Any]
    turns: list[Turn]
    timed: bool  # turns carry times (from the STT artifact), so lines can seek the player
    answers: list[Evidence]
    trades: list[Evidence]
    history: list[dict[str, Any]]
    audio: Path | None
    redacted: bool = False  # the batch redacts this call: what is shown is the redacted transcript and audio
    original: bool = False  # showing the unredacted original (a privileged role asked for it)

    def to_json(self) -> dict[str, Any]:
        return {"batchId": self.batch_id, "fileId": self.file_id, "file": self.file,
                "status": self.row["status"], "audio": self.audio is not None, "timed": self.timed,
                "redacted": self.redacted, "original": self.original,
                "turns": [asdict(t) for t in self.turns],
                "answers": [_ev_json(e) for e in self.answers], "tradeChecks": [_ev_json(e) for e in self.trades],
                "audit": self.audit, "history": self.history}


def _ev_json(e: Evidence) -> dict[str, Any]:
    return {**e.item, "evidenceId": e.id, "located": asdict(e.location) if e.location else None}


def _last_event(raw: bytes | None) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        return get_codec().decode_as("FileEvent", raw)
    except (DecodeError, ValueError) as exc:
        log.warning("console: undecodable lastEvent: %s", exc)
        return {}


def redacts(event: dict[str, Any]) -> bool:
    """Does the call's batch redact it (the redact stage is in its plan)?"""
    return REDACT in (event.get("stages") or [])


def _redacted_file(event: dict[str, Any], attr: str, artifact_root: Path) -> Path | None:
    """The redact stage's output (`outputPath` or `transcriptPath`), if it ran and wrote it under ARTIFACT_ROOT."""
    try:
        result = results_of(event).redact
    except ValueError:
        return None
    path = Path(getattr(result, attr)) if result is not None and getattr(result, attr) else None
    return path.resolve() if path is not None and within(path, artifact_root) and path.is_file() else None


def audio_path(row: dict[str, Any], artifact_root: Path, *, original: bool = False) -> Path | None:
    """The call's stored audio: the last event's current audio (what STT transcribed, so transcript
    times match), else the last audio artifact, else the original; only under ARTIFACT_ROOT or the
    recorded original path. For a call its batch redacts: the redacted audio only, unless `original`."""
    event = _last_event(row.get("lastEvent"))
    if redacts(event) and not original:
        return _redacted_file(event, "outputPath", artifact_root)
    originals = {str(Path(p).resolve()) for p in (row["file"], event.get("audioPath")) if p}
    folder = artifact_root / str(row["batchId"]) / str(row["fileId"])
    current = event.get("currentAudio")
    if current and redacts(event):  # the original: what stt transcribed, not what redact wrote
        current = _stt_source(event, artifact_root)
    candidates: list[str] = [current] if current else []
    if folder.is_dir():
        for stage in ARTIFACT_AUDIO:
            candidates += [str(p) for p in sorted(folder.glob(f"{stage}.*")) if p.suffix in AUDIO_TYPES]
    candidates += [p for p in (event.get("audioPath"), row["file"]) if p]
    for c in candidates:
        path = Path(c)
        if (within(path, artifact_root) or str(path.resolve()) in originals) and path.is_file():
            return path.resolve()
    return None


def _turns_from_artifact(data: dict[str, Any]) -> list[Turn]:
    """Consecutive segments of one speaker make one turn; words keep their own times."""
    turns: list[Turn] = []
    for seg in data.get("segments") or []:
        words = [Word(str(w.get("word", "")), w.get("start"), w.get("end")) for w in seg.get("words") or []]
        if not words:
            words = [Word(t, seg.get("start"), seg.get("end")) for t in str(seg.get("text", "")).split()]
        speaker = str(seg.get("speaker") or "speaker")
        if turns and turns[-1].speaker == speaker:
            turns[-1].words += words
            turns[-1].end = seg.get("end")
        else:
            turns.append(Turn(speaker, seg.get("start"), seg.get("end"), words))
    return turns


def _turns_from_text(text: str | None) -> list[Turn]:
    """Untimed turns from auditResult.transcript ('speaker: text' lines)."""
    turns = []
    for line in (text or "").splitlines():
        speaker, _, said = line.partition(":") if ":" in line else ("speaker", "", line)
        turns.append(Turn(speaker.strip(), None, None, [Word(w) for w in said.split()]))
    return turns


def load_transcript(audit: dict[str, Any], artifact_root: Path) -> tuple[list[Turn], bool]:
    """(turns, timed) from the STT artifact, else from the stored text."""
    path = audit.get("transcriptPath")
    if path and within(Path(path), artifact_root) and Path(path).is_file():
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            return _turns_from_artifact(data), True
        except (OSError, ValueError) as exc:
            log.warning("console: unreadable transcript %s: %s", path, exc)
    return _turns_from_text(audit.get("transcript")), False


def _evidence(turns: list[Turn], items: list[dict[str, Any]] | None, kind: str) -> list[Evidence]:
    out = []
    for item in items or []:
        key = str(item.get("questionId") if kind == "answer" else item.get("tradeId"))
        ev_id = f"{'q' if kind == 'answer' else 't'}:{key}"
        quote = str(item.get("evidence") or "")
        located = locate(turns, quote, ev_id) if item.get("source", "llm") == "llm" else None
        out.append(Evidence(ev_id, kind, key, quote, located, item))
    return out


def _stt_source(event: dict[str, Any], artifact_root: Path) -> str | None:
    """The audio stt transcribed, as its artifact says (when it is still there)."""
    stt = results_of(event).stt
    path = Path(stt.transcriptPath) if stt is not None and stt.transcriptPath else None
    if path is None or not within(path, artifact_root) or not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("source")
    except (OSError, ValueError):
        return None


def load_call(conn: Connection, batch_id: int, file_id: str, artifact_root: Path, *,
              original: bool = False) -> CallView:
    fd, ar, pl = db.file_distribution, db.audit_result, db.processing_logs
    row = conn.execute(select(fd).where(fd.c.batchId == batch_id, fd.c.fileId == file_id)).mappings().first()
    if row is None:
        raise CallNotFound(f"batch {batch_id} has no file {file_id}")
    row = dict(row)
    found = conn.execute(select(ar).where(ar.c.batchId == batch_id, ar.c.fileId == file_id)).mappings().first()
    audit = {k: (decode_json(v) if k in AUDIT_JSON else v) for k, v in dict(found or {}).items()}
    history = [dict(r) for r in conn.execute(
        select(pl.c.stage_name, pl.c.status, pl.c.created_at, pl.c.duration, pl.c.worker, pl.c.error)
        .where(pl.c.batch_id == str(batch_id), pl.c.file == row["file"]).order_by(pl.c.created_at, pl.c.id)).mappings()]
    event = _last_event(row.get("lastEvent"))
    redacted = redacts(event)
    if redacted and original:  # the unredacted transcript, where stt wrote it (if it was kept)
        stt = results_of(event).stt
        turns, timed = load_transcript({"transcriptPath": stt.transcriptPath if stt else None}, artifact_root)
    else:
        turns, timed = load_transcript(audit, artifact_root)
    answers = _evidence(turns, audit.get("answers"), "answer")
    trades = _evidence(turns, audit.get("tradeChecks"), "trade")
    return CallView(batch_id, file_id, row["file"], row, audit, turns, timed, answers, trades, history,
                    audio_path(row, artifact_root, original=original), redacted, redacted and original)


def audio_of(conn: Connection, batch_id: int, file_id: str, artifact_root: Path, *,
             original: bool = False) -> Path | None:
    """Only the audio path (the player's range requests read one row, not the whole call)."""
    fd = db.file_distribution
    row = conn.execute(select(fd.c.batchId, fd.c.fileId, fd.c.file, fd.c.lastEvent)
                       .where(fd.c.batchId == batch_id, fd.c.fileId == file_id)).mappings().first()
    if row is None:
        raise CallNotFound(f"batch {batch_id} has no file {file_id}")
    return audio_path(dict(row), artifact_root, original=original)
