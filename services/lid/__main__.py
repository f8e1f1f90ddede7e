"""`python -m services.lid`: the lid stage (spoken-language identification) on the shared stage worker."""

from cofi.pipeline.worker import run_service

if __name__ == "__main__":
    run_service("lid")  # its engines: services/lid/engines.py (imported only for a real engine)
