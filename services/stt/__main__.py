"""`python -m services.stt`: the stt stage (speech-to-text with speech parameters) on the shared stage worker."""

from cofi.pipeline.worker import run_service
from cofi.settings import Settings


def _factory(name: str, settings: Settings):
    # Imported here so `STT_ENGINE=passthrough` needs none of the model packages.
    from services.stt.engines import build_engine

    return build_engine(name, settings)


if __name__ == "__main__":
    run_service("stt", _factory)
