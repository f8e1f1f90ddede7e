"""The local LLM server's prompt cache holds what it is allowed to, and answers as if it were not there.

llama-cpp-python's own RAM cache evicted by KV bytes only while each state also held the logits of
every prompt token (~110 MB per check prompt): the server grew with every request until the kernel
killed it. Unit tests on real `LlamaState` objects; the real server's memory and answers under load.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("llama_cpp")
from llama_cpp.llama import LlamaState  # noqa: E402

from cofi.audit import prompts  # noqa: E402
from cofi.audit.llm_client import LlmClient  # noqa: E402
from cofi.audit.questionnaire import default_questionnaire  # noqa: E402
from cofi.audit.transcript import Line  # noqa: E402
from cofi.settings import Settings  # noqa: E402
from services.llm1.prompt_cache import BoundedRamCache, state_bytes  # noqa: E402
from tests.support.llm_server import llm_server_process  # noqa: E402

VOCAB = 151_936  # Qwen2.5's vocabulary: one logits row is 0.6 MB
MB = 1 << 20


def state(tokens: list[int], kv_bytes: int = MB) -> LlamaState:
    n = len(tokens)
    scores = np.random.default_rng(n).random((n, VOCAB), dtype=np.float32)
    return LlamaState(input_ids=np.array(tokens, dtype=np.intc), scores=scores, n_tokens=n,
                      llama_state=bytes(kv_bytes), llama_state_size=kv_bytes, seed=0)


def test_a_stored_state_keeps_only_the_last_logits_row_and_restores_by_broadcast() -> None:
    cache = BoundedRamCache(capacity_bytes=64 * MB)
    full = state(list(range(180)))
    last = full.scores[-1].copy()
    assert full.scores.nbytes > 100 * MB  # what the library's cache kept per request
    cache[list(range(180))] = full
    kept = cache[list(range(180)) + [7, 8]]  # a longer prompt finds it by its prefix
    assert kept.scores.shape == (1, VOCAB) and np.array_equal(kept.scores[0], last)
    assert state_bytes(kept) < 2 * MB
    buf = np.zeros((512, VOCAB), dtype=np.float32)  # Llama.load_state: scores[:n_tokens] = state.scores
    buf[: kept.n_tokens, :] = kept.scores
    assert np.array_equal(buf[kept.n_tokens - 1], last)


def test_eviction_counts_every_byte_a_state_holds() -> None:
    cache = BoundedRamCache(capacity_bytes=10 * MB)
    for i in range(12):
        cache[[i] * 50] = state([i] * 50, kv_bytes=2 * MB)  # ~2.6 MB each once slimmed
    assert cache.cache_size <= 10 * MB
    assert len(cache.cache_state) == 3
    assert [k[0] for k in cache.cache_state] == [9, 10, 11]  # least recently used go first
    with pytest.raises(KeyError):
        cache[[0] * 50]


def test_at_most_max_entries_states_and_a_lookup_keeps_a_state() -> None:
    cache = BoundedRamCache(capacity_bytes=1 << 40, max_entries=4)
    for i in range(4):
        cache[[i, i]] = state([i, i], kv_bytes=10)
    _ = cache[[0, 0, 5]]  # used: it moves to the end
    cache[[9, 9]] = state([9, 9], kv_bytes=10)
    assert sorted(k[0] for k in cache.cache_state) == [0, 2, 3, 9]


def rss_mb(proc: subprocess.Popen) -> float:
    for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def ask_distinct(base: str, n: int, first: int = 0) -> list[str]:
    """n check requests with distinct statements (each a new prompt the server caches)."""
    q = next(q for q in default_questionnaire().questions if q.id == "risk_disclosed")
    client = LlmClient(Settings(llm_base_url=base, llm_max_retries=2, llm_timeout_s=120))
    out = []
    try:
        for i in range(first, first + n):
            line = Line(1, "agent", f"Order {i}: {i * 7} shares of stock number {i} at {i * 3 + 11} dollars, noted.")
            res = client.chat(prompts.check_messages(q, [line], line), prompts.CHECK_FORMAT)
            out.append(res.records[0]["answer"])
    finally:
        client.close()
    return out


def test_the_served_model_stays_within_its_cache_limit(llm_server_proc: tuple[str, subprocess.Popen]) -> None:
    """6 new prompts grew the server by ~650 MB with the library's cache; now by their KV state (~10 MB each)."""
    base, proc = llm_server_proc
    ask_distinct(base, 1, first=1000)  # the first request allocates the compute buffers
    before = rss_mb(proc)
    answers = ask_distinct(base, 6)
    assert set(answers) <= {"yes", "no"}
    assert rss_mb(proc) - before < 300, f"server grew from {before:.0f} MB to {rss_mb(proc):.0f} MB"


@pytest.mark.slow
def test_a_small_cache_bounds_the_server_and_a_restored_state_answers_the_same() -> None:
    with llm_server_process(LLM_SERVER_CACHE_MB="64") as (base, proc):
        first = ask_distinct(base, 3)
        ask_distinct(base, 2, first=1000)
        before = rss_mb(proc)
        ask_distinct(base, 40, first=100)
        grown = rss_mb(proc) - before
        assert grown < 64 + 150, f"grew {grown:.0f} MB with a 64 MB cache"
        assert ask_distinct(base, 3) == first  # prefixes restored from the cache (or evicted): same answers
