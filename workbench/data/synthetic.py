"""A seeded synthetic domain memory with items, for measuring the domain pages at scale."""

from __future__ import annotations

from pathlib import Path

from .domains import DOMAIN_FILE


def synthetic_domain(cache_dir, n_items: int, *, n_features: int = 384, dim: int = 32,
                     n_topics: int = 64, seed: int = 0) -> Path:
    """Build (once) and save a clustered synthetic domain memory with items, texts and labels.

    Returns its directory under ``<cache_dir>/synthetic/``; a second call finds it there.
    """
    from tauformer.bench.domain import synthetic_embedding
    from tauformer.domain import EmbeddingSet, build_domain_memory, save_domain_memory

    out = Path(cache_dir) / "synthetic" / f"synthetic-{n_items}-{n_features}-{dim}-{seed}"
    if (out / DOMAIN_FILE).is_file():
        return out
    X = synthetic_embedding(n_items, n_features, n_topics=n_topics, seed=seed)
    # the topic of each item is recoverable from its nearest centre; label by k-means cluster later
    texts = [f"synthetic item {i}" for i in range(n_items)]
    emb = EmbeddingSet(X, texts, None, f"synthetic:{n_items}x{n_features}", f"seed-{seed}", "synthetic")
    memory = build_domain_memory(emb, dim=dim, keep_items=True, seed=seed,
                                 name=f"synthetic-{n_items // 1000}k")
    save_domain_memory(memory, out, keep_items=True)
    return out
