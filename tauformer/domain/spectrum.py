"""Graph facts of a Laplacian: components, spectral gap, degrees, and a summary of them.

The eigen-decomposition itself is the one in :mod:`tauformer.spectral` (re-exported here as
``laplacian_spectrum`` / ``Spectrum``): all eigenpairs up to ``spectral.DENSE_MAX`` nodes, the
two ends of the spectrum (eigsh) above. The summary of a
Laplacian above SUMMARY_EIGSH_MAX skips eigenvalues altogether (ARPACK on a 300,000-node chain,
whose eigenvalues crowd together, runs for many minutes): its components and zero eigenvalues
come from the graph, its largest eigenvalue is bounded by twice the largest degree.
"""

from __future__ import annotations


import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components as _cc
from scipy.sparse.linalg import ArpackNoConvergence

from tauformer import spectral
from tauformer.spectral import Spectrum, laplacian_spectrum, zero_tolerance

__all__ = ["Spectrum", "laplacian_spectrum", "zero_tolerance", "adjacency_of", "connected_components",
           "spectral_gap", "degree_stats", "spectrum_summary"]

SUMMARY_EIGSH_MAX = 8192
SUMMARY_EIGSH_K = 6
SUMMARY_EIGSH_MAXITER = 300


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
    if L.shape[0] <= spectral.DENSE_MAX:
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
        "spectrum_complete": L.shape[0] <= spectral.DENSE_MAX,
        **degrees,
    }
