"""build_domain_memory: embedding [N, F] -> D x D feature Laplacian (SPEC section 7, steps 1-6).

Phases, each timed: reduce (F -> D), cluster (K centroids), graph (feature kNN + weights,
sparsification, symmetrisation), laplacian. Every parameter, resolved (e.g. the K actually used),
is recorded in the result's ``params``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..build_defaults import BUILD_DEFAULTS
from ..errors import ConfigError
from .cluster import default_n_clusters, kmeans
from .graph import COMPAT_MODES, build_feature_graph, laplacian_from_adjacency
from .loaders import EmbeddingSet, check_matrix
from .memory import DomainMemory
from .phases import PhaseTimer, tqdm_progress
from .reduce import reduce_items

REDUCTIONS = ("random", "pca", None)
MAX_COMPONENTS_FRACTION = 0.25  # more than D/4 components: the graph has fallen apart


CLI_REMEDY = "raise --eps or --topk, or pass --allow-disconnected"


def connectivity_problem(memory: DomainMemory, remedy: str = CLI_REMEDY) -> str | None:
    """Why a built graph is unusable (no edges, or more than D/4 components), naming the
    parameters and ending in ``remedy`` (what the caller's user can do); None when it is fine.
    ``domain build`` and uploads in the app both refuse a memory with this check."""
    summary = memory.summary()
    D, parts, p = summary["dim"], summary["components"], memory.params
    settings = f"eps={p.get('eps')}, topk={p.get('topk')}, k={p.get('k')}"
    if summary["edges"] == 0:
        return f"the feature graph has no edges ({settings}); {remedy}"
    if parts > MAX_COMPONENTS_FRACTION * D:
        return f"the feature graph falls apart into {parts} components for D = {D} ({settings}); {remedy}"
    return None


def _check(name: str, value, ok: bool, want: str) -> None:
    if not ok:
        raise ConfigError(f"{name} must be {want}, got {value!r}")


def resolve_params(N: int, F: int, *, dim, reduction, n_clusters, eps, k, topk, p, sigma, sparsify, normalised, seed,
                   compat=None) -> dict:
    """Validate builder parameters and fill in defaults; returns the dict recorded with the memory.

    ``compat`` is recorded only when set (so default builds keep their fingerprints), and it
    turns ``sparsify`` off, as the reference it copies never sparsifies.
    """
    D = F if dim is None else int(dim)
    _check("dim", dim, 2 <= D <= F, f"between 2 and the number of features ({F})")
    _check("reduction", reduction, reduction in REDUCTIONS, "'random', 'pca' or None")
    K = default_n_clusters(N) if n_clusters is None else int(n_clusters)
    _check("n_clusters", n_clusters, 1 <= K <= N, f"between 1 and the number of items ({N})")
    _check("eps", eps, np.isfinite(eps) and eps >= 0, "a finite number >= 0")
    _check("k", k, int(k) >= 1, "at least 1")
    _check("topk", topk, int(topk) >= 1, "at least 1")
    _check("p", p, np.isfinite(p) and p > 0, "a positive number")
    _check("sigma", sigma, np.isfinite(sigma) and sigma > 0, "a positive number")
    _check("compat", compat, compat is None or compat in COMPAT_MODES, f"None or one of {COMPAT_MODES}")
    params = {
        "dim": D,
        "reduction": reduction if D < F else None,
        "n_clusters": K,
        "eps": float(eps),
        "k": int(k),
        "topk": int(topk),
        "p": float(p),
        "sigma": float(sigma),
        "sparsify": bool(sparsify) and compat is None,
        "normalised": bool(normalised),
        "seed": int(seed),
    }
    if compat is not None:
        params["compat"] = compat
    return params


def build_domain_memory(
    X,
    *,
    dim: int | None = None,
    reduction: str | None = BUILD_DEFAULTS["reduction"],
    n_clusters: int | None = None,
    eps: float = BUILD_DEFAULTS["eps"],
    k: int = BUILD_DEFAULTS["k"],
    topk: int = BUILD_DEFAULTS["topk"],
    p: float = BUILD_DEFAULTS["p"],
    sigma: float = BUILD_DEFAULTS["sigma"],
    sparsify: bool = True,
    normalised: bool = False,
    seed: int = BUILD_DEFAULTS["seed"],
    compat: str | None = None,
    progress=None,
    keep_items: bool = False,
    name: str | None = None,
    source: dict | None = None,
) -> DomainMemory:
    """Build a domain memory from an embedding.

    Parameters
    ----------
    X : EmbeddingSet or array [N, F]
    dim : D, the Laplacian size (the model's head dim); None keeps F
    reduction : "random" (seeded Gaussian, scaled 1/sqrt(D)), "pca" or None; unused when D == F
    n_clusters : K centroids; None -> max(2, ceil(sqrt(N / 10)))
    eps, k, topk, p, sigma : graph parameters (see tauformer.domain.graph); defaults: BUILD_DEFAULTS
    sparsify : keep each node's best half of its edges when the mean degree exceeds 10
    normalised : normalised Laplacian I - D^-1/2 W D^-1/2 instead of D_w - W
    seed : seeds the projection and the clustering
    compat : None, or "arrowspace": keep topk + 1 neighbours per feature and never sparsify, as
        arrowspace 0.30 does (its Laplacian then matches edge for edge given the same centroids)
    progress : None, True (tqdm bars on stderr) or a callable(phase, done, total)
    keep_items : keep the reduced items, texts, labels and clusters for the workbench
    name, source : recorded with the result (taken from an EmbeddingSet when not given)
    """
    texts = labels = None
    if isinstance(X, EmbeddingSet):
        source = source or X.source()
        name = name or Path(X.path).stem
        texts, labels, X = X.texts, X.labels, X.X
    else:
        X = check_matrix(X, "embedding")
    N, F = X.shape
    params = resolve_params(
        N, F, dim=dim, reduction=reduction, n_clusters=n_clusters, eps=eps, k=k, topk=topk,
        p=p, sigma=sigma, sparsify=sparsify, normalised=normalised, seed=seed, compat=compat,
    )
    source = dict(source or {"path": None, "fingerprint": None, "embedder": "precomputed"})
    source.setdefault("n_items", N)
    source.setdefault("n_features", F)
    timer = PhaseTimer(tqdm_progress() if progress is True else (progress or None))
    D = params["dim"]

    with timer.phase("reduce") as ph:
        Z = reduce_items(X, D, params["reduction"], seed, tick=ph.tick) if params["reduction"] else X
    with timer.phase("cluster") as ph:
        centroids, clusters, cinfo = kmeans(Z, params["n_clusters"], seed=seed, tick=ph.tick)
    with timer.phase("graph"):
        W, ginfo = build_feature_graph(
            centroids, eps=params["eps"], k=params["k"], topk=params["topk"], p=params["p"],
            sigma=params["sigma"], sparsify_dense=params["sparsify"], compat=compat,
        )
    with timer.phase("laplacian"):
        L = laplacian_from_adjacency(W, normalised=params["normalised"])
        memory = DomainMemory(
            laplacian=L, params=params, source=source, name=name or "domain", timings=timer.timings,
            centroids=centroids.astype(np.float32),
        )
    memory.source["clustering"] = cinfo
    memory.source["graph"] = ginfo
    if keep_items:
        memory.items = np.asarray(Z, dtype=np.float32)
        memory.texts, memory.labels, memory.clusters = texts, labels, clusters
    return memory
