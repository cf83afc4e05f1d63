"""Domain-memory build on a seeded synthetic clustered embedding: throughput, phases, peak RSS.

Builds with the published CVE manifold's graph settings (eps 1.31, k 25, topk 15, p 1.8,
sigma 0.535) and compares the wall time with the reference implementation's reported ~300 s
for 3e5 x 384 on a laptop (a published figure, not measured here).
"""

from __future__ import annotations

import time

import numpy as np

REFERENCE_SECONDS = 300.0
CVE_GRAPH = {"eps": 1.31, "k": 25, "topk": 15, "p": 1.8, "sigma": 0.535}


def add_arguments(parser) -> None:
    parser.add_argument("--items", type=int, default=300_000, help="N items")
    parser.add_argument("--features", type=int, default=384, help="F features")
    parser.add_argument("--dim", type=int, default=None, help="D (default: F, no reduction)")
    parser.add_argument("--reduction", choices=["random", "pca"], default="random")
    parser.add_argument("--topics", type=int, default=64, help="true clusters in the synthetic data")
    parser.add_argument("--seed", type=int, default=0)


def synthetic_embedding(n_items: int, n_features: int, *, n_topics: int = 64, seed: int = 0) -> np.ndarray:
    """Seeded clustered embedding [N, F] float32: topic centres plus noise, rows L2-normalised."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_topics, n_features), dtype=np.float32)
    X = np.empty((n_items, n_features), dtype=np.float32)
    chunk = 65536
    for start in range(0, n_items, chunk):
        stop = min(start + chunk, n_items)
        topic = rng.integers(n_topics, size=stop - start)
        block = rng.standard_normal((stop - start, n_features), dtype=np.float32)
        block *= 0.8
        block += centres[topic]
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        X[start:stop] = block
    return X


def format_gap(gap: float | None) -> str:
    """The spectral gap for the summary; "n/a" when it was not computed (large D, or ARPACK
    did not converge within its iteration cap)."""
    return "n/a (not computed)" if gap is None else f"{gap:.4g}"


def run(args, log) -> dict:
    from ..domain import build_domain_memory
    from .common import current_rss_bytes, peak_rss_bytes

    rss_start = current_rss_bytes()
    t0 = time.perf_counter()
    X = synthetic_embedding(args.items, args.features, n_topics=args.topics, seed=args.seed)
    t_gen = time.perf_counter() - t0
    log(f"generated {args.items} x {args.features} in {t_gen:.2f}s")
    t1 = time.perf_counter()
    memory = build_domain_memory(X, dim=args.dim, reduction=args.reduction, seed=args.seed, **CVE_GRAPH)
    stats = memory.spectral_stats()
    t_build = time.perf_counter() - t1
    wall = time.perf_counter() - t0
    phases = {"generate": t_gen, **memory.timings}
    rows = [{"phase": name, "seconds": float(sec), "share": float(sec / wall)} for name, sec in phases.items()]
    rows.append({"phase": "total", "seconds": wall, "share": 1.0})
    peak = peak_rss_bytes()
    summary = [
        f"items {args.items} x features {args.features} -> D {memory.dim}, K {memory.params['n_clusters']}, "
        f"nnz {memory.laplacian.nnz}, components {stats['components']}, spectral gap {format_gap(stats['spectral_gap'])}",
        f"k-means: {memory.source['clustering']['iterations']} Lloyd iterations on a sample of "
        f"{memory.source['clustering']['sample_size']} items, then one assignment pass over all items",
        f"build {t_build:.2f}s ({args.items / t_build:,.0f} items/s); wall with generation {wall:.2f}s",
        f"peak RSS {peak / 2**30:.2f} GiB (at start {rss_start / 2**30:.2f} GiB)",
        f"vs reference ~{REFERENCE_SECONDS:.0f}s (published, other machine): {REFERENCE_SECONDS / wall:.1f}x faster",
    ]
    return {
        "rows": rows,
        "columns": ["phase", "seconds", "share"],
        "summary": summary,
        "items_per_s": args.items / t_build,
        "wall_s": wall,
        "build_s": t_build,
        "peak_rss_bytes": peak,
        "ratio_vs_reference": REFERENCE_SECONDS / wall,
        "params": memory.params,
    }
