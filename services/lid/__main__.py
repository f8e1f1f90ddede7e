"""`python -m services.lid`: the lid stage (spoken-language identification) on the shared stage worker."""

from cofi.pipeline.worker import run_service
from cofi.settings import Settings


def _factory(name: str, settings: Settings):
    # Imported here so `LID_ENGINE=passthrough` needs none of the model packages.
    from services.lid.engines import build_engine

    return build_engine(name, settings)


if __name__ == "__main__":
    run_service("lid", _factory)
