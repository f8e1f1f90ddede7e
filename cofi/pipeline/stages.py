"""The stage registry: the one list of stages, in order.

Topics, settings (`<STAGE>_ENGINE`), the database columns, the tracker, recovery, the
passthrough engine, the CLI, the admin tool and `scripts/services.sh` all read it. Adding
a stage (say `redact` between `stt` and `llm1`) is one entry here, its result model in
`cofi.pipeline.results` (+ its record in `schemas/file_event.avsc`), its engines in
`services/<name>/engines.py`, and a migration for its `<name>Done` / `<name>Status` columns.

`python -m cofi.pipeline.stages` prints `name module metrics_port` per service (scripts read it).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from types import MappingProxyType
from typing import Any

from pydantic import create_model

from cofi.errors import UnknownStageError
from cofi.pipeline import results as r

DONE = "done"  # the pseudo-stage after the last one (topic `<prefix>.stage.done`)
TRACKER_METRICS_PORT = 9100


@dataclass(frozen=True)
class Stage:
    name: str
    optional: bool  # may a batch skip it (`cofi submit --skip`)
    default_engine: str  # `<NAME>_ENGINE` unless set; `passthrough` is always there too
    metrics_port: int  # METRICS_PORT of `python -m services.<name>` under `make up`
    result: type[r.StageResult]  # its record in FileEvent.results
    does: str  # one line for operators
    audio: bool = False  # its output audio is what the next stages read (FileEvent.currentAudio)
    reaudit: bool = False  # `cofi reaudit` may re-run it (and the stages after it) on stored transcripts
    opt_in: bool = False  # in a batch's plan only when the batch asks for it (redact: BatchStart.redact)

    @property
    def done_column(self) -> str:
        """fileDistribution flag, 1 once a file finished the stage (the seed's names: `denoiseDone`, ...)."""
        return f"{self.name}Done"

    @property
    def status_column(self) -> str:
        """batchStatus column: Pending, InProgress, Completed, Failed or Skipped."""
        return f"{self.name}Status"

    @property
    def engines_module(self) -> str:
        """Module whose `build_engine(name, settings)` makes the stage's real engines."""
        return f"services.{self.name}.engines"

    @property
    def order(self) -> int:
        return STAGES.index(self.name)


REGISTRY: tuple[Stage, ...] = (
    Stage("denoise", optional=True, default_engine="spectral", metrics_port=9101, result=r.DenoiseResult,
          audio=True, does="spectral noise reduction"),
    Stage("ivr", optional=True, default_engine="vad", metrics_port=9102, result=r.IvrResult,
          audio=True, does="IVR prelude detection and trimming"),
    Stage("lid", optional=False, default_engine="whisper", metrics_port=9103, result=r.LidResult,
          does="spoken-language identification"),
    Stage("stt", optional=False, default_engine="whisper", metrics_port=9104, result=r.SttResult,
          does="speech-to-text with speech parameters"),
    Stage("redact", optional=True, default_engine="presidio", metrics_port=9107, result=r.RedactResult,
          audio=True, opt_in=True, does="PII redaction of the transcript and the audio"),
    Stage("llm1", optional=True, default_engine="llm", metrics_port=9105, result=r.Llm1Result,
          reaudit=True, does="audit questionnaire and trade verification"),
    Stage("llm2", optional=True, default_engine="rules", metrics_port=9106, result=r.Llm2Result,
          reaudit=True, does="rules, answer normalization and verdict"),
)

STAGES: tuple[str, ...] = tuple(s.name for s in REGISTRY)
OPTIONAL_STAGES: frozenset[str] = frozenset(s.name for s in REGISTRY if s.optional)
REAUDIT_STAGES: tuple[str, ...] = tuple(s.name for s in REGISTRY if s.reaudit)
OPT_IN_STAGES: frozenset[str] = frozenset(s.name for s in REGISTRY if s.opt_in)
_BY_NAME = {s.name: s for s in REGISTRY}

#: FileEvent.results as a model: one optional result per stage, in registry order.
StageResults = create_model(  # type: ignore[call-overload]
    "StageResults", __config__=r.Record.model_config,
    **{s.name: (s.result | None, None) for s in REGISTRY})


def stage(name: str) -> Stage:
    try:
        return _BY_NAME[name]
    except KeyError:
        raise UnknownStageError(f"unknown stage {name!r}; known: {', '.join(STAGES)}") from None


def order(name: str) -> int:
    """Position along the pipeline; DONE comes after every stage, anything else before them."""
    if name == DONE:
        return len(STAGES)
    return _BY_NAME[name].order if name in _BY_NAME else -1


def next_stages(name: str) -> list[str]:
    """The stages (and DONE) a file may go to right after `name`, whatever optional stages its batch skips:
    the following ones up to the first mandatory one, DONE when only optional ones follow."""
    out: list[str] = []
    for spec in REGISTRY[_BY_NAME[name].order + 1:]:
        out.append(spec.name)
        if not spec.optional:
            return out
    return [*out, DONE]


def results_of(event: dict[str, Any]) -> Any:
    """The event's results as a `StageResults` model (`.stt`, `.llm1`, ... typed, None when not run)."""
    return StageResults.model_validate(event.get("results") or {})


def audit_owner(plan: list[str] | tuple[str, ...]) -> Mapping[str, str]:
    """auditResult column -> the stage of `plan` that writes it: the last one that fills it (redact's
    transcript replaces stt's, so a batch that redacts never stores the original text in the table)."""
    return _audit_owner(tuple(plan))


@lru_cache(maxsize=64)
def _audit_owner(plan: tuple[str, ...]) -> Mapping[str, str]:  # the tracker asks for every event: a few plans
    return MappingProxyType({c: s.name for s in REGISTRY if s.name in plan for c in s.result.AUDIT_COLUMNS})


def empty_results() -> dict[str, None]:
    return dict.fromkeys(STAGES)


def services() -> list[tuple[str, str, int]]:
    """(name, module, metrics port) of every long-running pipeline service: the tracker, then the stages."""
    return [("tracker", "services.tracker", TRACKER_METRICS_PORT),
            *((s.name, f"services.{s.name}", s.metrics_port) for s in REGISTRY)]


if __name__ == "__main__":  # pragma: no cover - read by scripts/services.sh
    sys.stdout.write("".join(f"{name} {module} {port}\n" for name, module, port in services()))
