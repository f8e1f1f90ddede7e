from tests.support.llm_events import *  # noqa: F403 - kept for tests/llm/test_llm_real.py, which imports it by this name
