"""`python -m services.ivr`: the ivr stage (IVR prelude detection and trimming) on the shared stage worker."""

from cofi.pipeline.worker import run_service

if __name__ == "__main__":
    run_service("ivr")  # its engines: services/ivr/engines.py (imported only for a real engine)
