"""Evidence quotes located in transcript turns by their text, whatever the model added around them."""

from __future__ import annotations

from services.console.calls import _turns_from_artifact
from services.console.evidence import locate
from tests.support.console import ARTIFACT


def test_turns_merge_one_speakers_segments_and_keep_word_times() -> None:
    turns = _turns_from_artifact(ARTIFACT)
    assert [(t.speaker, t.start) for t in turns] == [("agent", 0.5), ("customer", 6.5)]
    assert turns[0].words[8].text == "Please" and turns[0].words[8].start == 4.5
    assert turns[1].text == "Yes, that's fine — café."


def test_quotes_are_found_ignoring_case_punctuation_accents_and_speaker_labels() -> None:
    turns = _turns_from_artifact(ARTIFACT)
    loc = locate(turns, "agent: please NOTE this call is recorded", "q:rec")
    assert loc is not None and loc.exact and loc.turn == 0 and loc.start == 4.5 and loc.words == 6
    marked = [w.text for w in turns[0].words if "q:rec" in w.marks]
    assert marked == ["Please", "note", "this", "call", "is", "recorded."]
    spanning = locate(turns, "this call is recorded. customer: yes that's fine cafe", "q:x")
    assert spanning is not None and spanning.exact and spanning.turn == 0
    assert [w.text for w in turns[1].words if "q:x" in w.marks] == ["Yes,", "that's", "fine", "café."]


def test_paraphrased_or_absent_quotes() -> None:
    turns = _turns_from_artifact(ARTIFACT)
    partial = locate(turns, "thank you for calling Example Bank today sir", "q:p")
    assert partial is not None and not partial.exact and partial.words == 6 and partial.start == 1.3
    assert locate(turns, "the agent never said goodbye", "q:n") is None
    assert locate(turns, "calling today", "q:short") is None  # two words, not both in order: not located
    assert locate(turns, "", "q:e") is None and locate([], "hello", "q:e") is None
    assert not any(w.marks for t in turns for w in t.words if "q:n" in w.marks or "q:short" in w.marks)
