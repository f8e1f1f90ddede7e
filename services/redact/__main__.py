"""`python -m services.redact`: the redact stage (PII redaction of the transcript and the audio) on the shared stage worker."""

from cofi.pipeline.worker import run_service

if __name__ == "__main__":
    run_service("redact")  # its engines: services/redact/engines.py (imported only for a real engine)
