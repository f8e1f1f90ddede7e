"""`python -m services.llm2`: the llm2 stage (rules, answer normalization and verdict) on the shared stage worker."""

from cofi.pipeline.worker import run_service

if __name__ == "__main__":
    run_service("llm2")  # its engines: services/llm2/engines.py (imported only for a real engine)
