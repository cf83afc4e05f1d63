"""Step 2: summarise N items by K centroids with seeded k-means that scales to 3e5 x 384.

k-means++ seeding and Lloyd iterations run on a seeded random sample of the items; then every
item is assigned to its nearest centroid in chunks (float32 GEMMs, never an N x N matrix) and
the centroids are recomputed as the means of all their items. The same seed gives the same
centroids.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp

CHUNK = 16384


def default_n_clusters(n_items: int) -> int:
    """Reference rule K = max(2, ceil(sqrt(N / 10))), capped at N."""
    return min(n_items, max(2, math.ceil(math.sqrt(n_items / 10))))


def default_sample_size(n_items: int, n_clusters: int) -> int:
    """Items used for the Lloyd iterations: enough per cluster, at most 60,000."""
    return min(n_items, max(200 * n_clusters, 20_000), 60_000)


def _sq_norms(A: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", A, A)


def assign(X: np.ndarray, centroids: np.ndarray, *, tick=None) -> tuple[np.ndarray, np.ndarray]:
    """Nearest centroid of each row of X, in chunks: labels [N] int32, squared distances [N]."""
    C = centroids.astype(np.float32)
    c_sq = _sq_norms(C)
    N = X.shape[0]
    labels = np.empty(N, dtype=np.int32)
    dists = np.empty(N, dtype=np.float32)
    n_chunks = max(1, -(-N // CHUNK))
    for i, start in enumerate(range(0, N, CHUNK)):
        block = np.asarray(X[start : start + CHUNK], dtype=np.float32)
        d = block @ C.T  # [chunk, K]
        d *= -2.0
        d += c_sq
        lab = d.argmin(axis=1)
        labels[start : start + CHUNK] = lab
        dists[start : start + CHUNK] = np.maximum(d[np.arange(len(lab)), lab] + _sq_norms(block), 0.0)
        if tick:
            tick(i + 1, n_chunks)
    return labels, dists


def cluster_means(X: np.ndarray, labels: np.ndarray, n_clusters: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean of the rows of each cluster [K, D] (float64) and cluster sizes [K]."""
    N = X.shape[0]
    sums = np.zeros((n_clusters, X.shape[1]))
    for start in range(0, N, CHUNK):
        lab = labels[start : start + CHUNK]
        onehot = sp.csr_matrix((np.ones(len(lab)), (lab, np.arange(len(lab)))), shape=(n_clusters, len(lab)))
        sums += onehot @ np.asarray(X[start : start + CHUNK], dtype=np.float64)
    sizes = np.bincount(labels, minlength=n_clusters)
    means = sums / np.maximum(sizes, 1)[:, None]
    return means, sizes


def kmeans_plus_plus(S: np.ndarray, n_clusters: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding on S [n, D]: each next centre drawn with probability ~ squared distance."""
    n = S.shape[0]
    centres = np.empty((n_clusters, S.shape[1]), dtype=np.float32)
    s_sq = _sq_norms(S).astype(np.float64)

    def sq_dist_to(c: np.ndarray) -> np.ndarray:
        return np.maximum(s_sq - 2.0 * (S @ c) + float(c @ c), 0.0)

    centres[0] = S[rng.integers(n)]
    closest = sq_dist_to(centres[0])
    for c in range(1, n_clusters):
        total = float(closest.sum())
        idx = int(rng.integers(n)) if total <= 0 else int(np.searchsorted(np.cumsum(closest), rng.random() * total))
        centres[c] = S[min(idx, n - 1)]
        np.minimum(closest, sq_dist_to(centres[c]), out=closest)
    return centres


def kmeans(
    X: np.ndarray,
    n_clusters: int,
    *,
    seed: int = 0,
    sample_size: int | None = None,
    max_iter: int = 30,
    tol: float = 1e-4,
    tick=None,
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Seeded sample k-means, then a chunked assignment of all items.

    Parameters
    ----------
    X : array [N, D]
    n_clusters : K (at most N)
    sample_size : items used for seeding and Lloyd iterations (default: `default_sample_size`)
    max_iter, tol : stop when the centroids move less than ``tol`` times the data's variance

    Returns
    -------
    centroids : float64 [K, D], the means of all items assigned to each centre
    labels : int32 [N]
    info : dict with sample_size, iterations, inertia
    """
    N = X.shape[0]
    K = min(n_clusters, N)
    rng = np.random.default_rng([seed, 0xC1A5])
    m = sample_size or default_sample_size(N, K)
    m = min(max(m, K), N)
    rows = np.sort(rng.choice(N, size=m, replace=False)) if m < N else np.arange(N)
    S = np.asarray(X[rows], dtype=np.float32)
    scale = float(S.var(axis=0).sum()) or 1.0
    centres = kmeans_plus_plus(S, K, rng)
    total_steps = max_iter + 1
    it = 0
    for it in range(1, max_iter + 1):
        labels, dists = assign(S, centres)
        means, sizes = cluster_means(S, labels, K)
        empty = np.flatnonzero(sizes == 0)
        if len(empty):  # re-seed empty clusters at the worst-served sample points
            far = np.argsort(-dists, kind="stable")[: len(empty)]
            means[empty] = S[far]
        shift = float(((means - centres) ** 2).sum())
        centres = means.astype(np.float32)
        if tick:
            tick(it, total_steps)
        if shift <= tol * scale:
            break
    labels, dists = assign(X, centres)
    centroids, sizes = cluster_means(X, labels, K)
    empty = sizes == 0
    centroids[empty] = centres[empty]
    if tick:
        tick(total_steps, total_steps)
    info = {"sample_size": int(m), "iterations": it, "inertia": float(dists.astype(np.float64).sum())}
    return centroids, labels, info
