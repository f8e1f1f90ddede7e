"""`build_engine` for the llm2 stage (LLM2_ENGINE): `rules` (default); `passthrough` is the worker's."""

from __future__ import annotations

from cofi.pipeline.engine import Engine
from cofi.settings import Settings

ENGINES = ("rules",)


def build_engine(name: str, settings: Settings) -> Engine:
    if name == "rules":
        from services.llm2.engine import Llm2Engine

        return Llm2Engine(settings)
    raise ValueError(f"unknown LLM2_ENGINE {name!r}; known: {', '.join(ENGINES)} (and passthrough)")
