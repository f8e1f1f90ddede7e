"""`python -m services.denoise`: the denoise stage (spectral noise reduction) on the shared stage worker."""

from cofi.pipeline.worker import run_service

if __name__ == "__main__":
    run_service("denoise")  # its engines: services/denoise/engines.py (imported only for a real engine)
