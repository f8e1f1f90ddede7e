"""`python -m services.ivr`: the ivr stage (IVR prelude detection and trimming) on the shared stage worker."""

from cofi.pipeline.worker import run_service
from cofi.settings import Settings


def _factory(name: str, settings: Settings):
    # Imported here so `IVR_ENGINE=passthrough` needs none of the model packages.
    from services.ivr.engines import build_engine

    return build_engine(name, settings)


if __name__ == "__main__":
    run_service("ivr", _factory)
