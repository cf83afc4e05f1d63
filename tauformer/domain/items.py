"""Per-item lambda (arrowspace's synthetic index) and the item kNN graph for the workbench.

Per item x in R^D against the feature Laplacian L (our reading of the reference's taumode):
- E = x^T L x / x^T x (0 when x^T x <= 1e-12), the Rayleigh energy;
- G, the edge-energy dispersion: with c_ij = w_ij (x_i - x_j)^2 over the edges (w_ij = -L_ij),
  G = sum over ORDERED pairs (i, j), i != j, of (c_ij / S)^2 where S is the sum of c over the
  same ordered pairs. Each undirected edge appears twice, so G = 1/2 * sum_edges (c_e / S_e)^2:
  half the Herfindahl concentration of the energy over edges, in [0, 1/2]; large when the
  item's roughness sits on a few edges, small when it is spread out. 0 when S = 0.
- tau from the item's own D components (fixed / median / mean / percentile, floored at 1e-10);
- lambda = tau * E / (E + tau) + (1 - tau) * G. tau plays both the bounding scale and the blend
  weight, as in the reference; with tau > 1 the dispersion term enters negatively.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ..errors import ConfigError

TAU_FLOOR = 1e-10
TAU_MODES = ("fixed", "median", "mean", "percentile")
CHUNK = 4096


def select_tau(X: np.ndarray, mode: str = "median", *, tau: float = 1.0, percentile: float = 0.5) -> np.ndarray:
    """tau per row of X [N, D] by ``mode``, floored at 1e-10 -> [N] float64.

    percentile takes the value at index round((D - 1) * p) of the sorted components (p in [0, 1]).
    """
    X = np.asarray(X, dtype=np.float64)
    N = X.shape[0]
    if mode == "fixed":
        value = tau if np.isfinite(tau) and tau > 0 else TAU_FLOOR
        return np.full(N, float(value))
    if mode == "median":
        t = np.median(X, axis=1)
    elif mode == "mean":
        t = X.mean(axis=1)
    elif mode == "percentile":
        if not 0.0 <= percentile <= 1.0:
            raise ConfigError(f"percentile must be in [0, 1], got {percentile}")
        idx = int(np.floor((X.shape[1] - 1) * percentile + 0.5))
        t = np.partition(X, idx, axis=1)[:, idx]
    else:
        raise ConfigError(f"tau mode must be one of {', '.join(TAU_MODES)}, got {mode!r}")
    return np.maximum(t, TAU_FLOOR)


@dataclass
class ItemLambdas:
    """Per-item results: lambda, Rayleigh energy E, dispersion G and tau, each [N] float64."""

    lambdas: np.ndarray
    energy: np.ndarray
    dispersion: np.ndarray
    tau: np.ndarray


def laplacian_edges(L: sp.spmatrix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Undirected edges (i < j) of L's graph: rows, cols and weights w = -L_ij > 0."""
    U = sp.triu(sp.csr_matrix(L), k=1).tocoo()
    w = -U.data
    keep = w > 0
    return U.row[keep], U.col[keep], w[keep]


def item_lambdas(
    X: np.ndarray, L: sp.spmatrix, *, tau_mode: str = "median", tau: float = 1.0, percentile: float = 0.5
) -> ItemLambdas:
    """Synthetic lambda of each item row of X [N, D] against L [D, D] (see module docstring)."""
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[1] != L.shape[0]:
        raise ConfigError(f"items must be [N, {L.shape[0]}] to match the Laplacian, got {X.shape}")
    L = sp.csr_matrix(L, dtype=np.float64)
    ei, ej, w = laplacian_edges(L)
    N = X.shape[0]
    energy = np.empty(N)
    disp = np.empty(N)
    for start in range(0, N, CHUNK):
        B = np.asarray(X[start : start + CHUNK], dtype=np.float64)
        num = np.einsum("ij,ij->i", np.asarray((L @ B.T).T), B)
        den = np.einsum("ij,ij->i", B, B)
        energy[start : start + CHUNK] = np.where(den > 1e-12, num / np.where(den > 1e-12, den, 1.0), 0.0)
        c = w * (B[:, ei] - B[:, ej]) ** 2  # [chunk, n_edges]
        s = c.sum(axis=1)
        safe = np.where(s > 0, s, 1.0)
        disp[start : start + CHUNK] = np.where(s > 0, 0.5 * ((c / safe[:, None]) ** 2).sum(axis=1), 0.0)
    energy = np.maximum(energy, 0.0)
    t = select_tau(X, tau_mode, tau=tau, percentile=percentile)
    g = np.clip(disp, 0.0, 1.0)
    lambdas = t * energy / (energy + t) + (1.0 - t) * g
    return ItemLambdas(lambdas, energy, g, t)


def _unit_rows(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X, dtype=np.float32)
    n = np.linalg.norm(X, axis=1, keepdims=True)
    return X / np.where(n > 0, n, 1.0)


def _exact_knn(U: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact cosine kNN of unit rows U (self excluded), chunked: indices and distances [N, k]."""
    N = U.shape[0]
    idx = np.empty((N, k), dtype=np.int64)
    dist = np.empty((N, k), dtype=np.float32)
    for start in range(0, N, 2048):
        d = 1.0 - U[start : start + 2048] @ U.T  # [chunk, N]
        rows = np.arange(d.shape[0])
        d[rows, start + rows] = np.inf
        part = np.argpartition(d, k - 1, axis=1)[:, :k]
        pd = np.take_along_axis(d, part, axis=1)
        order = np.lexsort((part, pd), axis=1)  # nearest first, ties by index
        idx[start : start + 2048] = np.take_along_axis(part, order, axis=1)
        dist[start : start + 2048] = np.take_along_axis(pd, order, axis=1)
    return idx, np.maximum(dist, 0.0)


def item_knn_graph(
    X: np.ndarray, k: int = 10, *, exact_max: int = 4096, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Cosine kNN graph of the items, as unique undirected edges.

    Exact (chunked) for N <= ``exact_max``; pynndescent (approximate, seeded) above.

    Returns
    -------
    edges : int64 [M, 2] with i < j, sorted
    distances : float32 [M], cosine distance of each edge
    """
    N = X.shape[0]
    k = min(k, N - 1)
    if k < 1:
        return np.zeros((0, 2), dtype=np.int64), np.zeros(0, dtype=np.float32)
    U = _unit_rows(X)
    if N <= exact_max:
        nbr, dist = _exact_knn(U, k)
    else:
        from pynndescent import NNDescent

        index = NNDescent(U, n_neighbors=k + 1, metric="cosine", random_state=seed, n_jobs=1)
        nbr, dist = index.neighbor_graph
        nbr, dist = nbr[:, 1:].astype(np.int64), dist[:, 1:].astype(np.float32)
    return knn_table_edges(nbr, dist)


def knn_table_edges(nbr: np.ndarray, dist: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unique undirected edges (i < j, sorted) [M, 2] int64 and distances [M] float32 from a kNN
    table: row i's neighbours nbr [N, k] (-1 = none) at distances dist [N, k]."""
    N, k = nbr.shape
    a = np.repeat(np.arange(N), k)
    b, d = nbr.ravel(), dist.ravel()
    valid = (b >= 0) & (a != b)
    lo, hi, d = np.minimum(a, b)[valid], np.maximum(a, b)[valid], d[valid]
    _, first = np.unique(lo * N + hi, return_index=True)
    return np.stack([lo[first], hi[first]], axis=1).astype(np.int64), d[first].astype(np.float32)
