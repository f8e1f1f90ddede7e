"""Topic names and routing along a batch's stage plan (the stages themselves: `cofi.pipeline.stages`)."""

from __future__ import annotations

from dataclasses import dataclass

from cofi.errors import UnknownStageError
from cofi.pipeline.stages import DONE, OPT_IN_STAGES, OPTIONAL_STAGES, STAGES


@dataclass(frozen=True)
class Topics:
    """Topic names under one prefix (`cofi` in production, a unique one per test)."""

    prefix: str = "cofi"

    @property
    def batch_start(self) -> str:
        return f"{self.prefix}.batch.start"

    @property
    def batch_control(self) -> str:
        return f"{self.prefix}.batch.control"

    @property
    def failed(self) -> str:
        return f"{self.prefix}.failed"

    @property
    def done(self) -> str:
        return f"{self.prefix}.stage.done"

    @property
    def dead_letter(self) -> str:
        """Messages the tracker could not apply, as they came, with the reason in headers."""
        return f"{self.prefix}.deadletter"

    def stage(self, stage: str) -> str:
        if stage != DONE and stage not in STAGES:
            raise UnknownStageError(stage)
        return f"{self.prefix}.stage.{stage}"

    def all(self) -> list[str]:
        """Every topic (`cofi.ops.admin init` creates them)."""
        return [*self.tracked(), self.dead_letter]

    def tracked(self) -> list[str]:
        """The topics the tracker reads: every one but the dead letters it writes."""
        return [self.batch_start, self.batch_control, *(self.stage(s) for s in STAGES), self.done, self.failed]

    def stage_of(self, topic: str) -> str | None:
        """`cofi.stage.lid` -> `lid`; None for a non-stage topic."""
        head = f"{self.prefix}.stage."
        return topic[len(head):] if topic.startswith(head) else None


def stage_plan(skip: list[str] | tuple[str, ...] = (), enable: list[str] | tuple[str, ...] = ()) -> list[str]:
    """Enabled stages in order; only optional stages may be skipped; opt-in stages (redact) run only
    when enabled (a BatchStart with a redaction policy enables redact)."""
    unknown = [s for s in [*skip, *enable] if s not in STAGES]
    if unknown:
        raise UnknownStageError(f"unknown stage(s): {', '.join(unknown)}; known: {', '.join(STAGES)}")
    mandatory = [s for s in skip if s not in OPTIONAL_STAGES]
    if mandatory:
        raise UnknownStageError(f"stage(s) {', '.join(mandatory)} cannot be skipped")
    return [s for s in STAGES if s not in set(skip) and (s not in OPT_IN_STAGES or s in set(enable))]


def next_stage(plan: list[str], current: str) -> str:
    """The stage after `current` in `plan`, or DONE."""
    i = plan.index(current)
    return plan[i + 1] if i + 1 < len(plan) else DONE


def first_stage(plan: list[str]) -> str:
    return plan[0] if plan else DONE
