"""The item layout itself: kNN edges and a seeded 2-D UMAP of a domain's items.

Kept free of the rest of the workbench (it imports only numpy, tauformer.domain and
umap-learn) because it runs in a separate worker process: numba compiles UMAP and
pynndescent on first use, which takes tens of seconds and would otherwise hold the
server's interpreter lock. Run as ``python layout_compute.py ITEMS.npz OUT.npz`` where
ITEMS.npz holds ``X`` [N, D] and optionally ``clusters`` [N].
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import warnings

import numpy as np

LAYOUT_PARAMS = {"n_neighbors": 15, "min_dist": 0.1, "metric": "cosine", "seed": 0, "knn_k": 10,
                 "large": 20000, "large_epochs": 100, "version": 3}
"""UMAP settings; above ``large`` items UMAP runs ``large_epochs`` epochs instead of its 200 (the
epochs are most of its time on a 2-core machine and 100 already settle the layout)."""


EXACT_MAX = 4096  # up to here: exact kNN (tauformer.domain.item_knn_graph) and UMAP's exact path
N_PROBE = 8  # clusters searched per cluster above EXACT_MAX


def _unit_rows(X: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    return (X / np.where(norms > 0, norms, 1.0)).astype(np.float32)


def _kmeans_labels(U: np.ndarray, seed: int) -> np.ndarray:
    """A quick seeded k-means of unit rows (K ~ sqrt(N / 10)) to partition the search."""
    from sklearn.cluster import MiniBatchKMeans

    K = max(2, int(np.ceil(np.sqrt(len(U) / 10))))
    km = MiniBatchKMeans(n_clusters=K, random_state=seed, n_init=1, batch_size=4096, max_iter=50)
    return km.fit_predict(U)


def cluster_knn(X: np.ndarray, k: int, clusters: np.ndarray | None = None, *, n_probe: int = N_PROBE,
                seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Approximate cosine kNN [N, k] (indices, distances; self excluded, nearest first).

    Items are grouped by cluster (the domain memory's k-means clusters, or a quick seeded
    k-means); each group is searched exactly among the items of the ``n_probe`` clusters
    whose centroids are nearest to its own. Plain numpy (no compilation), about
    N * (n_probe / K) * N distance evaluations: a few seconds for 50,000 items.
    """
    U = _unit_rows(np.asarray(X, dtype=np.float32))
    N = len(U)
    labels = _kmeans_labels(U, seed) if clusters is None else np.asarray(clusters, dtype=np.int64)
    groups = [np.flatnonzero(labels == c) for c in np.unique(labels)]
    centres = _unit_rows(np.stack([U[g].mean(axis=0) for g in groups]))
    order = np.argsort(-(centres @ centres.T), axis=1)  # [K, K] nearest clusters first
    idx = np.full((N, k), -1, dtype=np.int64)
    dist = np.full((N, k), np.inf, dtype=np.float32)
    for c, members in enumerate(groups):
        probe, count = [], 0
        for other in order[c]:  # at least n_probe clusters and k + 1 candidates
            probe.append(groups[other])
            count += len(groups[other])
            if len(probe) >= n_probe and count > k:
                break
        cand = np.concatenate(probe)
        kk = min(k, len(cand) - 1)
        for start in range(0, len(members), 2048):
            rows = members[start : start + 2048]
            d = 1.0 - U[rows] @ U[cand].T  # [rows, candidates]
            d[rows[:, None] == cand[None, :]] = np.inf  # never yourself
            part = np.argpartition(d, kk - 1, axis=1)[:, :kk]
            pd = np.take_along_axis(d, part, axis=1)
            sort = np.argsort(pd, axis=1, kind="stable")
            idx[rows, :kk] = cand[np.take_along_axis(part, sort, axis=1)]
            dist[rows, :kk] = np.maximum(np.take_along_axis(pd, sort, axis=1), 0.0)
    return idx, dist


def knn_edges(idx: np.ndarray, dist: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Unique undirected edges (i < j, sorted) [M, 2] and distances [M] from a kNN table's
    first ``k`` columns -- the convention of tauformer.domain.item_knn_graph."""
    from tauformer.domain.items import knn_table_edges

    return knn_table_edges(idx[:, :k], dist[:, :k])


def _init(n: int, n_neighbors: int) -> str:
    """UMAP's starting layout: spectral (its default) up to EXACT_MAX items; above, PCA --
    ARPACK on a 50,000-item kNN graph took 70 s of a 125 s layout here, PCA a second."""
    if n <= n_neighbors + 1:
        return "random"
    return "spectral" if n <= EXACT_MAX else "pca"


def compute_layout(X: np.ndarray, params: dict | None = None, log=None, clusters=None) -> dict:
    """kNN edges and a seeded UMAP layout of the items X [N, D].

    Up to :data:`EXACT_MAX` items the edges come from tauformer.domain.item_knn_graph
    (exact) and UMAP finds its neighbours exactly itself. Above, one approximate kNN table
    (:func:`cluster_knn`, no numba) gives both the edges and UMAP's neighbours, so
    pynndescent never has to compile. UMAP runs with ``random_state`` set and ``n_jobs=1``
    so the layout is reproducible.

    Returns a dict with xy [N, 2] float32, edges [M, 2] int64, distances [M] float32,
    seconds per phase and the parameters.
    """
    p = {**LAYOUT_PARAMS, **(params or {})}
    log = log or (lambda message: None)
    X = np.ascontiguousarray(X, dtype=np.float32)
    n = X.shape[0]
    n_neighbors = max(2, min(p["n_neighbors"], n - 1))
    seconds = {}
    t0 = time.perf_counter()
    precomputed = None
    if n <= EXACT_MAX:
        from tauformer.domain import item_knn_graph

        edges, distances = item_knn_graph(X, p["knn_k"], seed=p["seed"])
    else:
        idx, dist = cluster_knn(X, n_neighbors - 1, clusters, seed=p["seed"])
        edges, distances = knn_edges(idx, dist, p["knn_k"])
        self_col = np.arange(n)[:, None]
        precomputed = (np.hstack([self_col, idx]), np.hstack([np.zeros((n, 1), np.float32), dist]), None)
    seconds["knn"] = time.perf_counter() - t0
    log(f"kNN graph of {n} items: {len(edges)} edges in {seconds['knn']:.1f} s")
    t0 = time.perf_counter()
    if n < 4:  # UMAP needs a few points; place tiny sets on a line
        xy = np.stack([np.arange(n, dtype=np.float32), np.zeros(n, dtype=np.float32)], axis=1)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import umap

            reducer = umap.UMAP(n_neighbors=n_neighbors, min_dist=p["min_dist"], metric=p["metric"],
                                n_epochs=p["large_epochs"] if n > p["large"] else None,
                                random_state=p["seed"], n_jobs=1, precomputed_knn=precomputed or (None, None, None),
                                init=_init(n, n_neighbors))
            xy = reducer.fit_transform(X).astype(np.float32)
    seconds["umap"] = time.perf_counter() - t0
    log(f"UMAP of {n} items in {seconds['umap']:.1f} s")
    return {"xy": xy, "edges": edges.astype(np.int64), "distances": distances.astype(np.float32),
            "seconds": seconds, "params": p}


def save_layout(result: dict, path: str) -> None:
    """Write a layout result to ``path`` (.npz) atomically (temporary file + rename)."""
    tmp = f"{path}.{os.getpid()}.tmp.npz"
    meta = json.dumps({"seconds": result["seconds"], "params": result["params"]})
    np.savez_compressed(tmp, xy=np.asarray(result["xy"], np.float32), edges=np.asarray(result["edges"], np.int32),
                        distances=np.asarray(result["distances"], np.float32), meta=np.array(meta))
    os.replace(tmp, path)


def load_layout(path) -> dict:
    """Read a layout written by :func:`save_layout` (no pickles)."""
    with np.load(path, allow_pickle=False) as f:
        meta = json.loads(str(f["meta"]))
        return {"xy": f["xy"], "edges": f["edges"], "distances": f["distances"], **meta}


def read_inputs(path) -> tuple[np.ndarray, np.ndarray | None]:
    """The worker's input: X [N, D] and optional clusters [N] from an .npz (no pickles)."""
    with np.load(path, allow_pickle=False) as inputs:
        X = inputs["X"]
        clusters = inputs["clusters"] if "clusters" in inputs.files else None
    return X, clusters


def _exit_with_parent() -> None:
    """End this worker when the app that started it is gone (it would compute for nobody)."""
    parent = os.getppid()

    def watch():
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(3)

    threading.Thread(target=watch, daemon=True).start()


def main(argv=None) -> int:
    """Worker entry: ``layout_compute.py ITEMS.npz OUT.npz`` (the layout with LAYOUT_PARAMS)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2:
        print("usage: layout_compute.py ITEMS.npz OUT.npz", file=sys.stderr)
        return 2
    _exit_with_parent()
    try:
        os.nice(10)  # yield the CPU to the app's server and browser: this work can wait
    except (AttributeError, OSError):
        pass
    X, clusters = read_inputs(args[0])
    result = compute_layout(X, log=lambda m: print(m, file=sys.stderr, flush=True),
                            clusters=clusters)
    save_layout(result, args[1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
