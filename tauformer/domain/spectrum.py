"""Spectral facts of a Laplacian: eigen-decomposition, components, spectral gap, degrees.

D <= 2048 uses a dense symmetric solver (all eigenpairs); larger Laplacians use scipy's
eigsh for the k smallest (shift-invert just below 0) and k largest eigenvalues. The summary of a
Laplacian above SUMMARY_EIGSH_MAX skips eigenvalues altogether (ARPACK on a 300,000-node chain,
whose eigenvalues crowd together, runs for many minutes): its components and zero eigenvalues
come from the graph, its largest eigenvalue is bounded by twice the largest degree.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components as _cc
from scipy.sparse.linalg import ArpackNoConvergence, eigsh

DENSE_MAX = 2048
SUMMARY_EIGSH_MAX = 8192
SUMMARY_EIGSH_K = 6
SUMMARY_EIGSH_MAXITER = 300


@dataclass
class Spectrum:
    """Eigenvalues (ascending) and eigenvectors (columns) of a symmetric Laplacian.

    ``complete`` is False when only the ends of the spectrum were computed (``eigsh``): then
    ``eigenvalues`` holds the k smallest followed by the k largest.
    """

    eigenvalues: np.ndarray
    eigenvectors: np.ndarray | None
    complete: bool


def laplacian_spectrum(L: sp.spmatrix, *, k: int = 32, vectors: bool = True, maxiter: int | None = None) -> Spectrum:
    """All eigenpairs for D <= 2048, else the k smallest and k largest (float64).

    ``maxiter`` caps ARPACK's restarts; past it ArpackNoConvergence is raised."""
    D = L.shape[0]
    if D <= DENSE_MAX:
        dense = L.toarray() if sp.issparse(L) else np.asarray(L, dtype=np.float64)
        if vectors:
            vals, vecs = np.linalg.eigh(dense)
            return Spectrum(vals, vecs, True)
        return Spectrum(np.linalg.eigvalsh(dense), None, True)
    k = min(k, D // 2 - 1)
    L = sp.csr_matrix(L, dtype=np.float64)
    scale = max(1.0, float(abs(L.diagonal()).max()))
    lo_vals, lo_vecs = eigsh(L, k=k, sigma=-1e-3 * scale, which="LM", maxiter=maxiter)
    hi_vals, hi_vecs = eigsh(L, k=k, which="LA", maxiter=maxiter)
    order_lo, order_hi = np.argsort(lo_vals), np.argsort(hi_vals)
    vals = np.concatenate([lo_vals[order_lo], hi_vals[order_hi]])
    vecs = np.hstack([lo_vecs[:, order_lo], hi_vecs[:, order_hi]]) if vectors else None
    return Spectrum(vals, vecs, False)


def adjacency_of(L: sp.spmatrix) -> sp.csr_matrix:
    """W = -offdiag(L) (edge weights; for a normalised L these are the scaled weights)."""
    W = -sp.csr_matrix(L, dtype=np.float64)
    W.setdiag(0.0)
    W.eliminate_zeros()
    return W


def connected_components(L: sp.spmatrix) -> tuple[int, np.ndarray]:
    """Number of connected components of L's graph and the component of each node."""
    n, labels = _cc(adjacency_of(L) != 0, directed=False)
    return int(n), labels


def zero_tolerance(eigenvalues: np.ndarray) -> float:
    """Eigenvalues at or below this count as zero: 1e-8 relative to the largest, at least 1e-10."""
    top = float(np.max(np.abs(eigenvalues))) if len(eigenvalues) else 0.0
    return max(1e-10, 1e-8 * top)


def spectral_gap(eigenvalues: np.ndarray) -> float:
    """The first non-zero eigenvalue (0.0 when every eigenvalue is zero)."""
    vals = np.sort(np.asarray(eigenvalues))
    nonzero = vals[vals > zero_tolerance(vals)]
    return float(nonzero[0]) if len(nonzero) else 0.0


def degree_stats(L: sp.spmatrix) -> dict:
    """Min / mean / max of the weighted degree and of the number of neighbours per node."""
    W = adjacency_of(L)
    weighted = np.asarray(W.sum(axis=1)).ravel()
    counts = np.diff(W.indptr)
    return {
        "degree_min": float(weighted.min()),
        "degree_mean": float(weighted.mean()),
        "degree_max": float(weighted.max()),
        "neighbours_min": int(counts.min()),
        "neighbours_mean": float(counts.mean()),
        "neighbours_max": int(counts.max()),
        "isolated": int((counts == 0).sum()),
    }


def spectrum_summary(L: sp.spmatrix) -> dict:
    """Components, zero-eigenvalue count, spectral gap, eigenvalue range and degree statistics.

    Past :data:`SUMMARY_EIGSH_MAX` nodes, or when ARPACK does not converge within its iteration
    cap, ``spectral_gap`` is None, ``eigenvalue_min`` 0, ``eigenvalue_max`` an upper bound and
    ``zero_eigenvalues`` the number of components (exact for a graph Laplacian).
    """
    n_comp, _ = connected_components(L)
    degrees = degree_stats(L)
    vals = None
    if L.shape[0] <= DENSE_MAX:
        vals = laplacian_spectrum(L, vectors=False).eigenvalues
    elif L.shape[0] <= SUMMARY_EIGSH_MAX:
        try:
            vals = laplacian_spectrum(L, k=SUMMARY_EIGSH_K, vectors=False, maxiter=SUMMARY_EIGSH_MAXITER).eigenvalues
        except ArpackNoConvergence:
            vals = None
    if vals is None:
        bound = 2.0 * float(abs(sp.csr_matrix(L).diagonal()).max())
        return {"components": n_comp, "zero_eigenvalues": n_comp, "spectral_gap": None,
                "eigenvalue_min": 0.0, "eigenvalue_max": bound, "spectrum_complete": False, **degrees}
    return {
        "components": n_comp,
        "zero_eigenvalues": int((np.abs(vals) <= zero_tolerance(vals)).sum()),
        "spectral_gap": spectral_gap(vals),
        "eigenvalue_min": float(vals.min()),
        "eigenvalue_max": float(vals.max()),
        "spectrum_complete": L.shape[0] <= DENSE_MAX,
        **degrees,
    }
