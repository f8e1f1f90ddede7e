"""`build_engine` for the llm1 stage (LLM1_ENGINE): `llm` (default) or `passthrough` (plumbing only)."""

from __future__ import annotations

from cofi.pipeline.engine import Engine
from cofi.settings import Settings

ENGINES = ("llm", "passthrough")


def build_engine(name: str, settings: Settings) -> Engine:
    if name == "llm":
        from services.llm1.engine import Llm1Engine

        return Llm1Engine(settings)
    if name == "passthrough":
        from cofi.pipeline.passthrough import PassthroughEngine

        return PassthroughEngine("llm1")
    raise ValueError(f"unknown LLM1_ENGINE {name!r}; expected one of {', '.join(ENGINES)}")
