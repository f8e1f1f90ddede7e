"""`python -m services.llm2`: the llm2 stage (rules, answer normalization and verdict) on the shared stage worker."""

from cofi.pipeline.worker import run_service
from cofi.settings import Settings


def _factory(name: str, settings: Settings):
    # Imported here so `LLM2_ENGINE=passthrough` needs none of the model packages.
    from services.llm2.engines import build_engine

    return build_engine(name, settings)


if __name__ == "__main__":
    run_service("llm2", _factory)
