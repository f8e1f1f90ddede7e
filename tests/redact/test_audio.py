"""Redaction measured on real audio: generated PII calls (espeak-ng) transcribed by the real Whisper stt
engine, redacted, and the redacted audio transcribed again. Recall per entity type counts a PII item
as redacted only when no word that carries it (a digit, a digit word, a part of the name or address,
the month or year of the birth date) is left where it was said; the second transcription must not
contain four digits in a row of any identifier, nor the names."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from cofi.audit.spoken_numbers import numbers_in
from cofi.devtools.pii_calls import DIGIT_TYPES, MONTHS, PiiCall, item_times, make_pii_call
from cofi.settings import Settings
from services.redact.detect import Detector
from services.redact.engines import PresidioRedactor
from services.redact.spoken import DIGIT_WORDS, TEENS, TENS, number_runs, tokens
from services.stt.engines import build_engine as build_stt
from tests.support.audio import make_ctx, make_event

SLACK_SEC = 0.4  # item times come from character positions within a turn: approximate


@pytest.fixture(scope="module")
def stt(tmp_path_factory: pytest.TempPathFactory):
    engine = build_stt("whisper", Settings(artifact_root=tmp_path_factory.mktemp("stt")))
    yield engine
    engine.close()


def _bearing(word: str, item) -> bool:
    """Does this (unredacted) word still say part of the item?"""
    low = word.strip(".,;:!?-$").lower()
    if item.type == "PERSON" or item.type == "EMAIL_ADDRESS":
        parts = re.findall(r"[a-z]{3,}", item.value.lower())
        parts = [p for p in parts if p not in ("com",)]
        return any(p in low for p in parts)
    if item.type == "DATE_OF_BIRTH":
        year, month, _ = item.value.split("-")
        return any(ch.isdigit() for ch in low) or low == MONTHS[int(month) - 1].lower() or year[2:] in low
    return any(ch.isdigit() for ch in low) or low in DIGIT_WORDS or low in TEENS or low in TENS


def _leaks(call: PiiCall, redacted_doc: dict) -> dict[str, list[str]]:
    """Per item (type: value), the unredacted words that still say it where it was said."""
    words = [w for s in redacted_doc["segments"] for w in s["words"]]
    out = {}
    for k, (item, start, end) in enumerate(item_times(call)):
        near = [w["word"] for w in words if not w.get("redacted") and w["start"] is not None
                and start - SLACK_SEC <= (w["start"] + w["end"]) / 2 <= end + SLACK_SEC]
        out[f"{item.type}: {item.value} #{k}"] = [w for w in near if _bearing(w, item)]
    return out


def _heard_again(call: PiiCall, text: str) -> dict[str, list[str]]:
    """Per item (type: value), what the second transcription still says of it: 4 digits in a row of an
    identifier, a part of a name or email address."""
    runs = [r.digits for r in number_runs(tokens(text))]
    low = text.lower()
    out: dict[str, list[str]] = {}
    for k, item in enumerate(call.items):
        found: list[str] = []
        if item.type in DIGIT_TYPES:
            digits = re.sub(r"\D", "", item.value)
            found = sorted({digits[i:i + 4] for i in range(len(digits) - 3)} & {r[i:i + 4] for r in runs
                                                                                for i in range(len(r) - 3)})
        elif item.type in ("PERSON", "EMAIL_ADDRESS"):
            found = [p for p in re.findall(r"[a-z]{3,}", item.value.lower().split("@")[0]) if p in low]
        out[f"{item.type}: {item.value} #{k}"] = found
    return out


def redact_call(tmp_path: Path, seed: int, stt, detector: Detector) -> tuple[PiiCall, dict, dict, str]:
    """(call, redacted STT artifact, leaks per item, second transcription of the redacted audio)."""
    wav = tmp_path / f"pii_{seed}.wav"
    call = make_pii_call(wav, seed, compact=True)
    settings = Settings(artifact_root=tmp_path / "artifacts", redact_keep_original=True)
    event = make_event(wav)
    event["trades"], event["redactPolicy"] = [call.trade], {"entities": [], "audio": "tone"}
    event["results"]["stt"] = {"worker": "w", "engine": "whisper", "durationMs": 1,
                               **stt.process(event, make_ctx(settings, "stt", f"s{seed:019d}")).result}
    out = PresidioRedactor(settings, detector).process(event, make_ctx(settings, "redact", f"s{seed:019d}"))
    doc = json.loads(Path(out.result["transcriptPath"]).read_text())
    again = stt.process(make_event(Path(out.result["outputPath"])), make_ctx(settings, "stt", f"a{seed:019d}"))
    return call, doc, _leaks(call, doc), again.result["text"]


def test_a_redacted_call_leaks_nothing_in_its_transcript_or_its_audio(tmp_path: Path, stt, detector: Detector) -> None:
    call, doc, leaks, again = redact_call(tmp_path, 11, stt, detector)
    assert {k: v for k, v in leaks.items() if v} == {}, doc["redaction"]["text"]
    assert {k: v for k, v in _heard_again(call, again).items() if v} == {}, again
    # the trade survives, in the redacted transcript and in the redacted audio: its side and its quantity, a
    # number the digit rules must not take for an identifier (Whisper base may mishear the price on its own:
    # "Initech at eighty dollars" came out as "the height of baby dollars", then without "dollars")
    for text in (doc["redaction"]["text"], again):
        said = {v for n in numbers_in(text) for v in n.values}
        assert call.trade["side"] in text.lower() and float(call.trade["quantity"]) in said, text


@pytest.mark.slow
def test_recall_per_entity_type_over_several_calls(tmp_path: Path, stt, detector: Detector) -> None:
    """The figures of the issue, on real transcriptions: an item counts as redacted when nothing of it is
    left where it was said in the redacted transcript and nothing of it is heard in the redacted audio."""
    hit, total = Counter(), Counter()
    missed: list[str] = []
    for seed in range(20, 28):
        call, _, leaks, again = redact_call(tmp_path, seed, stt, detector)
        heard = _heard_again(call, again)
        for key, left in leaks.items():
            entity = key.split(":")[0]
            total[entity] += 1
            hit[entity] += not left and not heard[key]
            if left or heard[key]:
                missed.append(f"seed {seed} {key}: left {left}, heard again {heard[key]}")
    recall = {t: round(hit[t] / total[t], 3) for t in total}
    digits = sum(hit[t] for t in DIGIT_TYPES) / sum(total[t] for t in DIGIT_TYPES)
    print(f"\naudio-level recall per type over 8 calls: {recall}; digit-based types together {digits:.3f}; "
          f"missed: {missed}")
    assert digits >= 0.95, missed
    assert recall["PERSON"] >= 0.8, missed
