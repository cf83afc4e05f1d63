"""Steps 3-6: the feature graph over centroid columns and its Laplacian (scipy.sparse).

Nodes are the D features; feature f is the vector of its values across the K centroids
(column f of the centroid matrix). Each feature links to its nearest features by cosine distance
d = 1 - cos (kept if d <= eps), weighted w = 1 / (1 + (d / sigma)^p); optional sparsification;
union symmetrisation; L = D_w - W, or the normalised I - D^-1/2 W D^-1/2.

``k`` versus ``topk`` (our reading of the reference builder): ``k`` is documented there as the
maximum number of neighbours per node and ``topk`` as the number of nearest candidates actually
queried; the Laplacian builder only queries ``topk`` (plus the node itself) and ``k`` otherwise
only nudges ``topk`` for small ``k``. Here each node keeps at most ``min(topk, k)`` neighbours
before symmetrisation, so with the reference settings (topk <= k) ``topk`` decides and ``k`` is
a cap. Symmetrisation by union can give a node more than that many edges.

``compat="arrowspace"`` reproduces arrowspace 0.30 (measured on identical centroids, SPEC
section 7): it asks its search for ``topk + 1`` neighbours and the search already leaves the node
itself out, so each node keeps ``topk + 1`` (``k`` is no cap), and it never sparsifies. Those are
the only two differences; distances, weights and symmetrisation are shared.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

SPARSIFY_MEAN_DEGREE = 10.0
COMPAT_MODES = ("arrowspace",)


def neighbours_per_node(*, k: int, topk: int, compat: str | None = None) -> int:
    """Nearest features each node keeps before symmetrisation: ``min(topk, k)``, or ``topk + 1``
    under ``compat="arrowspace"`` (see the module docstring)."""
    if compat is None:
        return min(topk, k)
    if compat == "arrowspace":
        return topk + 1
    raise ValueError(f"compat must be one of {COMPAT_MODES} or None, got {compat!r}")


def feature_distances(centroids: np.ndarray) -> np.ndarray:
    """Cosine distances d = 1 - cos between the features (columns) of centroids [K, D] -> [D, D].

    A feature that is zero on every centroid has cos 0 (d = 1) to every other feature.
    """
    feats = np.asarray(centroids, dtype=np.float64).T  # [D, K]: one row per feature
    norms = np.linalg.norm(feats, axis=1)
    ok = norms > 1e-15
    unit = np.zeros_like(feats)
    unit[ok] = feats[ok] / norms[ok, None]
    cos = np.clip(unit @ unit.T, -1.0, 1.0)
    d = 1.0 - cos
    np.fill_diagonal(d, 0.0)
    return d


def nearest_neighbours(d: np.ndarray, *, n_neighbours: int, eps: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each node's ``n_neighbours`` nearest other nodes with d <= eps (ties by index).

    Returns directed edges ``(rows, cols, dists)``, grouped by row, nearest first.
    """
    D = d.shape[0]
    m = min(n_neighbours, D - 1)
    if m <= 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0)
    off = d.copy()
    np.fill_diagonal(off, np.inf)
    order = np.argsort(off, axis=1, kind="stable")[:, :m]  # [D, m], stable sort keeps index order on ties
    dist = np.take_along_axis(off, order, axis=1)
    keep = dist <= eps
    rows = np.repeat(np.arange(D), m).reshape(D, m)[keep]
    return rows, order[keep].astype(np.int64), dist[keep]


def kernel_weights(dist: np.ndarray, *, p: float, sigma: float) -> np.ndarray:
    """w = 1 / (1 + (d / sigma)^p), with d clipped at 0 against rounding."""
    return 1.0 / (1.0 + (np.maximum(dist, 0.0) / sigma) ** p)


def sparsify(rows: np.ndarray, cols: np.ndarray, w: np.ndarray, n_nodes: int) -> np.ndarray:
    """Mask that keeps each node's best half of its edges (nodes with more than 2 edges).

    Score per edge, as in the reference: w * sqrt(deg_i * deg_j), deg = edges per node before
    symmetrisation, so links between well-connected features are preferred; ties keep the
    nearer neighbour.
    """
    deg = np.bincount(rows, minlength=n_nodes)
    score = w * np.sqrt(deg[rows] * deg[cols].astype(np.float64))
    keep = np.ones(len(rows), dtype=bool)
    starts = np.concatenate([[0], np.cumsum(deg)])
    for i in np.flatnonzero(deg > 2):
        a, b = starts[i], starts[i + 1]
        ranked = np.argsort(-score[a:b], kind="stable")
        keep[a + ranked[max(1, (b - a) // 2) :]] = False
    return keep


def union_adjacency(rows: np.ndarray, cols: np.ndarray, w: np.ndarray, n_nodes: int) -> sp.csr_matrix:
    """Symmetric weighted adjacency W: an edge present in either direction is kept."""
    A = sp.csr_matrix((w, (rows, cols)), shape=(n_nodes, n_nodes))
    return A.maximum(A.T).tocsr()


def laplacian_from_adjacency(W: sp.spmatrix, *, normalised: bool = False) -> sp.csr_matrix:
    """L = D_w - W, or I - D^-1/2 W D^-1/2 (isolated nodes get an all-zero row), canonical CSR float64."""
    W = sp.csr_matrix(W, dtype=np.float64)
    W.setdiag(0.0)
    W.eliminate_zeros()
    deg = np.asarray(W.sum(axis=1)).ravel()
    if normalised:
        connected = deg > 0
        inv_sqrt = np.zeros_like(deg)
        inv_sqrt[connected] = 1.0 / np.sqrt(deg[connected])
        S = W.tocoo()
        S.data = S.data * (inv_sqrt[S.row] * inv_sqrt[S.col])  # the pair product keeps S exactly symmetric
        L = sp.diags(connected.astype(np.float64)) - S.tocsr()
    else:
        L = sp.diags(deg) - W
    return canonical_csr(L)


def chain_laplacian_csr(D: int) -> sp.csr_matrix:
    """The path graph 0-1-...-(D-1) with unit weights as a Laplacian: the model's default domain
    memory (tauformer.laplacian.chain_laplacian is the same matrix as a torch tensor)."""
    ones = np.ones(max(D - 1, 0))
    return laplacian_from_adjacency(sp.diags([ones, ones], [-1, 1], shape=(D, D)))


def canonical_csr(L: sp.spmatrix) -> sp.csr_matrix:
    """CSR float64 with summed duplicates, sorted indices, no stored zeros, int64 indices."""
    L = sp.csr_matrix(L, dtype=np.float64)
    L.sum_duplicates()
    L.eliminate_zeros()
    L.sort_indices()
    L.indices = L.indices.astype(np.int64)
    L.indptr = L.indptr.astype(np.int64)
    return L


def build_feature_graph(
    centroids: np.ndarray,
    *,
    eps: float,
    k: int,
    topk: int,
    p: float,
    sigma: float,
    sparsify_dense: bool = True,
    compat: str | None = None,
) -> tuple[sp.csr_matrix, dict]:
    """Symmetric weighted adjacency W [D, D] of the features of centroids [K, D], and graph facts.

    ``compat="arrowspace"`` keeps ``topk + 1`` neighbours and never sparsifies (module docstring).
    The facts: neighbours kept per node, mean directed degree before sparsification, whether
    sparsification ran, and the number of undirected edges.
    """
    D = centroids.shape[1]
    n_neighbours = neighbours_per_node(k=k, topk=topk, compat=compat)
    d = feature_distances(centroids)
    rows, cols, dist = nearest_neighbours(d, n_neighbours=n_neighbours, eps=eps)
    w = kernel_weights(dist, p=p, sigma=sigma)
    mean_degree = len(rows) / D
    did_sparsify = bool(sparsify_dense and compat is None and mean_degree > SPARSIFY_MEAN_DEGREE)
    if did_sparsify:
        keep = sparsify(rows, cols, w, D)
        rows, cols, w = rows[keep], cols[keep], w[keep]
    W = union_adjacency(rows, cols, w, D)
    info = {"neighbours_per_node": n_neighbours, "mean_directed_degree": mean_degree, "sparsified": did_sparsify, "n_edges": int(W.nnz // 2)}
    return W, info
