"""`python -m services.stt`: the stt stage (speech-to-text with speech parameters) on the shared stage worker."""

from cofi.pipeline.worker import run_service

if __name__ == "__main__":
    run_service("stt")  # its engines: services/stt/engines.py (imported only for a real engine)
