"""`python -m services.llm1`: the llm1 stage (audit questionnaire and trade verification) on the shared stage worker."""

from cofi.pipeline.worker import run_service
from cofi.settings import Settings


def _factory(name: str, settings: Settings):
    # Imported here so `LLM1_ENGINE=passthrough` needs none of the model packages.
    from services.llm1.engines import build_engine

    return build_engine(name, settings)


if __name__ == "__main__":
    run_service("llm1", _factory)
