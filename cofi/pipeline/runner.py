"""How a stage service starts: its engine from the settings, then the stage worker until stopped."""

from __future__ import annotations

import importlib
from collections.abc import Callable

from cofi.pipeline.engine import Engine
from cofi.pipeline.stages import stage as stage_spec
from cofi.settings import Settings

EngineFactory = Callable[[str, Settings], Engine]


def build_engine(stage: str, settings: Settings, factory: EngineFactory | None = None) -> Engine:
    """`<STAGE>_ENGINE=passthrough` is handled here, every real engine by the stage's
    `services/<stage>/engines.py` (imported only then, so passthrough needs no model packages)."""
    name = settings.engine_for(stage)
    if name == "passthrough":
        from cofi.pipeline.passthrough import PassthroughEngine

        return PassthroughEngine(stage, delay_ms=settings.passthrough_delay_ms)
    if factory is None:
        factory = importlib.import_module(stage_spec(stage).engines_module).build_engine
    return factory(name, settings)


def run_service(stage: str, factory: EngineFactory | None = None) -> None:
    """Entry point of `python -m services.<stage>`."""
    from cofi.logs import setup_logging
    from cofi.settings import get_settings

    setup_logging()
    settings = get_settings()
    engine = build_engine(stage, settings, factory)
    from cofi.pipeline.worker import StageWorker

    worker = StageWorker(stage, engine, settings)
    worker.install_signal_handlers()
    worker.run()
