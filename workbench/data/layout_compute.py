"""The item layout itself: kNN edges and a seeded 2-D UMAP of a domain's items.

Kept free of the rest of the workbench (it imports only numpy, tauformer.domain and
umap-learn) because it runs in a separate worker process: numba compiles UMAP and
pynndescent on first use, which takes tens of seconds and would otherwise hold the
server's interpreter lock. Run as ``python layout_compute.py ITEMS.npy OUT.npz``.
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
                 "version": 1}


def compute_layout(X: np.ndarray, params: dict | None = None, log=None) -> dict:
    """kNN edges (tauformer.domain.item_knn_graph) and a UMAP layout of the items X [N, D].

    UMAP runs with ``random_state`` set and ``n_jobs=1`` so the layout is reproducible.
    Below 4,096 items both the kNN and UMAP's own neighbour search are exact; above,
    pynndescent is used (compiled once per process, then shared by both).

    Returns a dict with xy [N, 2] float32, edges [M, 2] int64, distances [M] float32 and
    seconds per phase.
    """
    from tauformer.domain import item_knn_graph

    p = {**LAYOUT_PARAMS, **(params or {})}
    log = log or (lambda message: None)
    X = np.ascontiguousarray(X, dtype=np.float32)
    n = X.shape[0]
    seconds = {}
    t0 = time.perf_counter()
    edges, distances = item_knn_graph(X, p["knn_k"], seed=p["seed"])
    seconds["knn"] = time.perf_counter() - t0
    log(f"kNN graph of {n} items: {len(edges)} edges in {seconds['knn']:.1f} s")
    t0 = time.perf_counter()
    if n < 4:  # UMAP needs a few points; place tiny sets on a line
        xy = np.stack([np.arange(n, dtype=np.float32), np.zeros(n, dtype=np.float32)], axis=1)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import umap

            reducer = umap.UMAP(n_neighbors=min(p["n_neighbors"], n - 1), min_dist=p["min_dist"],
                                metric=p["metric"], random_state=p["seed"], n_jobs=1,
                                init="spectral" if n > p["n_neighbors"] + 1 else "random")
            xy = reducer.fit_transform(X).astype(np.float32)
    seconds["umap"] = time.perf_counter() - t0
    log(f"UMAP of {n} items in {seconds['umap']:.1f} s")
    return {"xy": xy, "edges": edges.astype(np.int64), "distances": distances.astype(np.float32),
            "seconds": seconds, "params": p}


def save_layout(result: dict, path: str) -> None:
    """Write a layout result to ``path`` (.npz) atomically (temporary file + rename)."""
    tmp = f"{path}.{os.getpid()}.tmp.npz"
    meta = json.dumps({"seconds": result["seconds"], "params": result["params"]})
    np.savez(tmp, xy=result["xy"], edges=result["edges"], distances=result["distances"],
             meta=np.array(meta))
    os.replace(tmp, path)


def load_layout(path) -> dict:
    """Read a layout written by :func:`save_layout` (no pickles)."""
    with np.load(path, allow_pickle=False) as f:
        meta = json.loads(str(f["meta"]))
        return {"xy": f["xy"], "edges": f["edges"], "distances": f["distances"], **meta}


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
    """Worker entry: ``layout_compute.py ITEMS.npy OUT.npz [PARAMS_JSON]``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) not in (2, 3):
        print("usage: layout_compute.py ITEMS.npy OUT.npz [PARAMS_JSON]", file=sys.stderr)
        return 2
    _exit_with_parent()
    params = json.loads(args[2]) if len(args) == 3 else None
    X = np.load(args[0], allow_pickle=False)
    result = compute_layout(X, params, log=lambda m: print(m, file=sys.stderr, flush=True))
    save_layout(result, args[1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
