"""`build_engine` for the llm2 stage (LLM2_ENGINE): `rules` (default) or `passthrough` (plumbing only)."""

from __future__ import annotations

from cofi.pipeline.engine import Engine
from cofi.settings import Settings

ENGINES = ("rules", "passthrough")


def build_engine(name: str, settings: Settings) -> Engine:
    if name == "rules":
        from services.llm2.engine import Llm2Engine

        return Llm2Engine(settings)
    if name == "passthrough":
        from cofi.pipeline.passthrough import PassthroughEngine

        return PassthroughEngine("llm2")
    raise ValueError(f"unknown LLM2_ENGINE {name!r}; expected one of {', '.join(ENGINES)}")
