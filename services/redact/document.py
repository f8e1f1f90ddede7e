"""The STT artifact as one text to analyse, and back: redacted segments with the words' own times.

The analysed text has one line per speaker turn (consecutive segments of one speaker, as the
labelled transcript has them), the words joined by single spaces, so a number said across a
pause stays one number and context words of the agent's question are a line above the answer.
Every word keeps its character span, its speaker and its times, so a finding in the text is a
set of words, placeholders replace whole words, and the audio is masked where they were said.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from typing import Any

TRAILING = ".,;:!?"


@dataclass(frozen=True)
class Word:
    text: str
    start: float | None
    end: float | None
    speaker: str
    segment: int  # index of its segment in the STT artifact


@dataclass
class Document:
    segments: list[dict[str, Any]]
    words: list[Word] = field(default_factory=list)
    offsets: list[tuple[int, int]] = field(default_factory=list)  # character span of each word in `text`
    text: str = ""

    def words_in(self, start: int, end: int) -> list[int]:
        """Indices of the words that overlap characters [start, end) of the text."""
        i = max(0, bisect_right([a for a, _ in self.offsets], start) - 1)
        out = []
        while i < len(self.offsets) and self.offsets[i][0] < end:
            if self.offsets[i][1] > start:
                out.append(i)
            i += 1
        return out


def build(stt: dict[str, Any]) -> Document:
    """The analysed text of an STT artifact (`services/stt`'s JSON: segments of words with times)."""
    doc = Document(segments=list(stt.get("segments") or []))
    parts: list[str] = []
    pos = 0
    last_speaker: str | None = None
    for k, seg in enumerate(doc.segments):
        speaker = str(seg.get("speaker") or "speaker")
        timed = [(str(w.get("word", "")), w.get("start"), w.get("end")) for w in seg.get("words") or []]
        said = timed or [(t, seg.get("start"), seg.get("end")) for t in str(seg.get("text", "")).split()]
        said = [(t.strip(), a, b) for t, a, b in said if t.strip()]
        if not said:
            continue
        if last_speaker is not None:
            sep = " " if speaker == last_speaker else "\n"
            parts.append(sep)
            pos += 1
        last_speaker = speaker
        for n, (text, a, b) in enumerate(said):
            if n:
                parts.append(" ")
                pos += 1
            doc.words.append(Word(text, a, b, speaker, k))
            doc.offsets.append((pos, pos + len(text)))
            parts.append(text)
            pos += len(text)
    doc.text = "".join(parts)
    return doc


@dataclass(frozen=True)
class Mention:
    """One redacted mention: consecutive words of the text, their type and the placeholder that replaces them."""

    entity: str
    words: tuple[int, ...]
    placeholder: str

    def seconds(self, doc: Document) -> list[tuple[float, float]]:
        """Where it was said, per segment (a segment without word times: the whole segment)."""
        spans: dict[int, tuple[float, float]] = {}
        for i in self.words:
            w = doc.words[i]
            seg = doc.segments[w.segment]
            a = w.start if w.start is not None else seg.get("start")
            b = w.end if w.end is not None else seg.get("end")
            if a is None or b is None:
                continue
            lo, hi = spans.get(w.segment, (float(a), float(b)))
            spans[w.segment] = (min(lo, float(a)), max(hi, float(b)))
        return list(spans.values())


def redacted_segments(doc: Document, mentions: list[Mention]) -> list[dict[str, Any]]:
    """The artifact's segments with each mention's words replaced by its placeholder (once, at its first
    word, keeping that last word's trailing punctuation); a segment left without words is dropped."""
    owner = {i: m for m in mentions for i in m.words}
    by_segment: dict[int, list[int]] = {}
    for i, w in enumerate(doc.words):
        by_segment.setdefault(w.segment, []).append(i)
    out = []
    for k, seg in enumerate(doc.segments):
        words: list[dict[str, Any]] = []
        for i in by_segment.get(k, []):
            w, m = doc.words[i], owner.get(i)
            if m is None:
                words.append({"word": w.text, "start": w.start, "end": w.end})
                continue
            tail = w.text[len(w.text.rstrip(TRAILING)):]  # kept from the mention's last word in the segment
            if i == m.words[0]:
                words.append({"word": m.placeholder + tail, "start": w.start, "end": w.end, "redacted": m.entity})
            elif words and words[-1].get("redacted") and words[-1]["word"].startswith(m.placeholder):
                words[-1]["end"] = w.end
                words[-1]["word"] = m.placeholder + tail
        if words:
            timed = [w for w in words if w["start"] is not None]
            out.append({"speaker": seg.get("speaker"), "start": timed[0]["start"] if timed else seg.get("start"),
                        "end": timed[-1]["end"] if timed else seg.get("end"),
                        "text": " ".join(w["word"] for w in words),
                        "words": words if seg.get("words") else []})
    return out
