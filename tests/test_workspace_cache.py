"""The workspace's one cache: named parts that honour their limits, shared by every store."""

import threading
import time

import pytest

from workbench.data import PART_LIMITS, WorkspaceCache, content_key, demo_workspace


def test_each_part_keeps_at_most_its_limit_and_evicts_the_least_recently_used():
    cache = WorkspaceCache({"small": 3, "big": 5, "forever": None})
    for i in range(4):
        cache.get_or_compute("small", f"k{i}", lambda i=i: i)
        if i == 2:
            assert cache.get_or_compute("small", "k0", lambda: "recomputed") == 0  # k0 used again: k1 is oldest
    assert cache.sizes()["small"] == 3
    assert cache.contains("small", "k0") and not cache.contains("small", "k1") and cache.contains("small", "k3")
    for i in range(7):
        cache.get_or_compute("big", f"k{i}", lambda i=i: i)
    for i in range(1000):
        cache.get_or_compute("forever", f"k{i}", lambda i=i: i)
    assert cache.sizes() == {"small": 3, "big": 5, "forever": 1000}
    assert "k6" in cache and not cache.contains("big", "k1")  # `in` looks in every part


def test_the_default_parts_and_their_limits():
    cache = WorkspaceCache()
    for part, limit in PART_LIMITS.items():
        n = (limit or 300) + 2
        for i in range(n):
            cache.get_or_compute(part, content_key(part, i), lambda i=i: i)
        assert cache.sizes()[part] == (n if limit is None else limit)
    assert PART_LIMITS["domains"] is None and PART_LIMITS["models"] == 6
    with pytest.raises(KeyError, match="no cache part 'nonsense'"):
        cache.get_or_compute("nonsense", "k", lambda: 1)


def test_two_identical_requests_at_once_compute_once():
    cache = WorkspaceCache()
    calls = []
    started = threading.Event()

    def slow():
        calls.append(1)
        started.set()
        time.sleep(0.2)
        return object()

    results = []
    threads = [threading.Thread(target=lambda: results.append(cache.get_or_compute("results", "same", slow)))
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len(results) == 4 and all(r is results[0] for r in results)


def test_clear_forgets_results_but_keeps_the_loaded_domain_memories():
    cache = WorkspaceCache()
    cache.get_or_compute("results", "r", lambda: 1)
    cache.get_or_compute("domains", "d", lambda: 2)
    cache.clear()
    assert "r" not in cache and "d" in cache
    cache.clear("domains")
    assert "d" not in cache


def test_every_store_of_a_workspace_caches_in_its_one_cache():
    ws = demo_workspace()
    assert ws.runs.cache is ws.cache and ws.domains.cache is ws.cache and ws.studies.cache is ws.cache
    assert ws.probes.cache is ws.cache
    view = ws.probes.probe("tau", None, "abcdefgh")
    ws.runs.histories()
    sizes = ws.cache.sizes()
    assert sizes["models"] == 1 and sizes["probes"] == 1 and sizes["histories"] == 1
    assert ws.probes.probe("tau", None, "abcdefgh") is view
    for i in range(PART_LIMITS["probes"] + 3):
        ws.probes.probe("tau", None, f"prompt {i}")
    assert ws.cache.sizes()["probes"] == PART_LIMITS["probes"]


def test_an_items_key_is_remembered_beside_the_memory_never_on_it():
    import gc

    import numpy as np

    from tauformer.domain import build_domain_memory
    from workbench.data import identity

    X = np.random.default_rng(0).normal(size=(30, 6)).astype(np.float32)
    memory = build_domain_memory(X, dim=6, keep_items=True, eps=1.0, topk=3)
    before = dict(vars(memory))
    key = identity.items_key(memory)
    assert key == identity.items_hash(memory.items) == identity.items_key(memory)
    assert vars(memory).keys() == before.keys()  # nothing patched onto the core object
    assert identity.items_hash(memory.items[:-1]) != key
    ident = id(memory)
    assert ident in identity._ITEMS_KEYS
    del memory
    gc.collect()
    assert ident not in identity._ITEMS_KEYS
