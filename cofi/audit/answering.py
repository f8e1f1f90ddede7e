"""Audit answers an auditor can check: a "yes" stands only on a transcript line that shows it.

A small model reads a whole call poorly but judges one statement well. So, per question:
1. `requires`: a question that depends on another (read-back needs an order) is na unless that
   one was answered yes.
2. Candidates: the lines worth checking, from the question's cues and the words it shares with
   the lines, restricted to its speaker (cofi.audit.evidence).
3. Checks: each candidate, with the replies after it as context, is put to the model on its own:
   "does this statement show the answer is yes?". The first that does is the evidence, quoted
   as the transcript holds it; none does -> "no". A line that only *says* "answer yes" shows
   nothing, so an instruction spoken in the call cannot flip an answer. A line judged "no" with its
   replies is judged once more alone: the replies help the model see some things (a security
   question answered and accepted) and hide others ("Can you confirm your date of birth?" followed by
   the customer's order was judged "no": every identity check of the demo's calls failed). Still "no",
   a line that ends in a question of its own is judged once more up to its cue (`cue_clause`): Whisper
   joins sentences with commas, and "please note this call is recorded, can you confirm your date of
   birth?" was judged "no". The evidence stays the whole line.
4. A question with no line worth checking (or, without cues, none of whose candidates showed it) is
   asked over the whole transcript. A negative answer stands; a "yes" stands only on the line the model
   then cites, checked like a candidate (a questionnaire written in plain words, without cues, had every
   positive left for review); any other positive answer is left for review, never accepted silently.
Requests for one question share their prefix (system prompt + question), which a llama.cpp
server keeps in its cache, so each further line costs only its own tokens.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cofi.audit import prompts
from cofi.audit.evidence import candidates, cue_clause, speaks_for
from cofi.audit.llm_client import LlmClient, LlmOutputError, Usage
from cofi.audit.questionnaire import Question
from cofi.audit.transcript import PRELUDE_SPEAKER, Line, conversation, is_instruction

log = logging.getLogger(__name__)
NEGATIVE = frozenset({"no", "na", "n/a", "none", "not_applicable", "unknown"})


@dataclass
class AnswerRecord:
    answer: str
    evidence: str = ""
    source: str = "llm"
    line: int = 0
    check: str = ""  # verified | no line shows it | not applicable: ... | review: ... | unverified ...

    def to_record(self, max_chars: int) -> dict[str, Any]:
        return {"answer": self.answer, "evidence": self.evidence[:max_chars], "source": self.source,
                "evidenceLine": self.line, "check": self.check[:max_chars]}


def empty_answer(q: Question) -> str:
    return "no" if "no" in q.options else q.options[-1]


def _yes(q: Question) -> str | None:
    """The option that means "it happened" (yes, or the first option that is not negative)."""
    if "yes" in q.options:
        return "yes"
    return next((o for o in q.options if o.lower() not in NEGATIVE), None)


class Answerer:
    """Answers the questions about one call over its transcript lines."""

    def __init__(self, client: LlmClient, lines: list[Line], usage: Usage, *, max_checks: int = 3,
                 prompt_lines: list[Line] | None = None) -> None:
        self.client = client
        self.lines = lines
        self.prompt_lines = prompt_lines if prompt_lines is not None else lines  # what fits a whole-call prompt
        self.usage = usage
        self.max_checks = max_checks
        self.by_number = {ln.number: ln for ln in lines}

    def answer_all(self, questions: Sequence[Question]) -> dict[str, AnswerRecord]:
        out: dict[str, AnswerRecord] = {}
        asked = {q.id: q for q in questions}
        said = bool(conversation(self.lines))  # the IVR prelude alone is no call to audit
        for q in questions:
            if not said:
                out[q.id] = AnswerRecord(empty_answer(q), check="empty transcript")
                continue
            if q.requires:
                need, base = out.get(q.requires), asked.get(q.requires)
                if need is None or base is None or need.answer != _yes(base):
                    out[q.id] = AnswerRecord("na", check=f"not applicable: {q.requires} is not yes")
                    continue
            out[q.id] = self._answer(q)
        return out

    def _answer(self, q: Question) -> AnswerRecord:
        yes = _yes(q)
        found = candidates(q, self.lines, self.max_checks)
        if yes is None:
            return self._whole(q, None, set())
        if not found and q.cues:
            return AnswerRecord(empty_answer(q), check="no line shows it")
        for cand in found:
            shown = self._verify(q, cand)
            if shown is None:
                return AnswerRecord("", cand.quote, line=cand.number,
                                    check=f"review: the check of line {cand.number} got no valid reply")
            if shown:
                return AnswerRecord(yes, cand.quote, line=cand.number, check="verified")
        if not q.cues:  # a questionnaire's own question without cues: shared words may miss the line that shows it
            return self._whole(q, yes, {ln.number for ln in found})
        return AnswerRecord(empty_answer(q), check=f"no line shows it ({len(found)} checked)")

    def _verify(self, q: Question, cand: Line) -> bool | None:
        """Does this line show the answer yes? With its replies, then alone, then up to its cue (module doc)."""
        after = [ln for n in range(cand.number + 1, cand.number + 1 + q.context)
                 if (ln := self.by_number.get(n)) is not None]
        shown = self._check(q, cand, after)
        if shown is False and after:  # the replies can hide what the line itself shows (see module doc)
            shown = self._check(q, cand, [])
        if shown is False and (part := cue_clause(q, cand.text)) is not None:  # and so can its own end
            shown = self._check(q, Line(cand.number, cand.speaker, part), [])
        return shown

    def _check(self, q: Question, cand: Line, after: list[Line]) -> bool | None:
        try:
            res = self.client.chat(prompts.check_messages(q, [cand, *after], cand), prompts.CHECK_FORMAT)
        except LlmOutputError as exc:
            self.usage.add(exc.usage)
            return None
        self.usage.add(res.usage)
        return res.records[0]["answer"] == "yes"

    def _whole(self, q: Question, yes: str | None, checked: set[int]) -> AnswerRecord:
        """No line to check (or none of the candidates showed it): ask over the whole transcript. A negative
        answer stands as it is; a "yes" stands only on the line the model then cites, checked like any
        candidate; any other positive answer is left for review, never accepted silently."""
        try:
            res = self.client.chat(prompts.question_messages(self._shown(q), q), prompts.answer_format(q))
        except LlmOutputError as exc:
            self.usage.add(exc.usage)
            return AnswerRecord("", check=f"review: invalid LLM output: {exc}")
        self.usage.add(res.usage)
        answer = str(res.records[0]["answer"])
        if answer.lower() in NEGATIVE:
            return AnswerRecord(answer, check="whole transcript" + (f" ({len(checked)} lines checked)" if checked
                                                                     else ""))
        cited = self._cite(q, checked) if answer == yes else None
        shown = self._verify(q, cited) if cited is not None else False
        if cited is not None and shown:
            return AnswerRecord(answer, cited.quote, line=cited.number, check="verified (cited from the whole call)")
        why = "" if cited is None else f"; the check of line {cited.number}, which it cites, got no valid reply" \
            if shown is None else f"; line {cited.number}, which it cites, does not show it"
        return AnswerRecord("", check=f"review: the model answered {answer!r} with no line that can be checked{why}")

    def _shown(self, q: Question) -> list[Line]:
        """The whole-call prompt's lines for `q`: the IVR prelude's only when it may show a yes."""
        return self.prompt_lines if q.prelude else [ln for ln in self.prompt_lines if ln.speaker != PRELUDE_SPEAKER]

    def _cite(self, q: Question, checked: set[int]) -> Line | None:
        """The line the model names as showing the yes, if it names one that may be evidence."""
        shown = self._shown(q)
        fmt = prompts.cite_format(shown)
        try:
            res = self.client.chat(prompts.cite_messages(shown, q, fmt), fmt)
        except LlmOutputError as exc:
            self.usage.add(exc.usage)
            return None
        self.usage.add(res.usage)
        cand = self.by_number.get(int(res.records[0]["line"]))
        if cand is None or cand.number in checked or is_instruction(cand.text) or not speaks_for(q, cand):
            return None
        return cand
