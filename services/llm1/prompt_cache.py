"""The local LLM server's prompt cache, bounded by the memory it really holds.

llama-cpp-python's `LlamaRAMCache` keeps one saved state per request and evicts by the size of the
KV bytes alone, but each state also carries a copy of the logits of every prompt token
(n_tokens x n_vocab floats: about 110 MB for a 180-token check prompt with Qwen2.5's 151,936-token
vocabulary). With a 1 GiB limit on the KV bytes the server grew by that much per request and was
killed by the kernel after a few hundred requests (measured: 2.0 GB -> 4.7 GB RSS over 24 check
requests, then OOM-killed at 20 GB).

Only the last row of those logits can matter: a state read back from the cache is always decoded
again from at least one token before anything is sampled (llama-cpp-python 0.3: `_requires_eval`
after `load_state`), and `load_state` broadcasts a single row over the prompt's rows. So each state
keeps that row only, and the limit counts every byte a state holds.
"""

from __future__ import annotations

from collections.abc import Sequence

from llama_cpp import LlamaRAMCache
from llama_cpp.llama import LlamaState


def state_bytes(state: LlamaState) -> int:
    """What one saved state holds in memory: KV data, logits and token ids."""
    return len(state.llama_state) + state.scores.nbytes + state.input_ids.nbytes


def slim(state: LlamaState) -> LlamaState:
    """The state with only the last row of its logits (a copy, so the full array can be freed)."""
    if state.scores.ndim == 2 and state.scores.shape[0] > 1:
        state.scores = state.scores[-1:].copy()
    return state


class BoundedRamCache(LlamaRAMCache):
    """LRU prompt states within `capacity_bytes` of real memory and at most `max_entries` states
    (each lookup compares the prompt with every stored one, in Python)."""

    def __init__(self, capacity_bytes: int, max_entries: int = 64) -> None:
        super().__init__(capacity_bytes)
        self.max_entries = max_entries

    @property
    def cache_size(self) -> int:
        return sum(state_bytes(s) for s in self.cache_state.values())

    def __setitem__(self, key: Sequence[int], value: LlamaState) -> None:
        key = tuple(key)
        self.cache_state.pop(key, None)
        self.cache_state[key] = slim(value)
        while self.cache_state and (len(self.cache_state) > self.max_entries or self.cache_size > self.capacity_bytes):
            self.cache_state.popitem(last=False)
