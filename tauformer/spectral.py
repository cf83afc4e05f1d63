"""The one spectrum of a Laplacian, and why a head vector gets its lambda (SPEC section 2).

`laplacian_spectrum` is what every part of the project uses for eigenvalues and eigenvectors:
the Why page, the domain pages and the domain summaries. It takes a dense or sparse torch
tensor, a numpy array or a scipy.sparse matrix. D <= DENSE_MAX uses a dense symmetric solver
(all eigenpairs); a larger Laplacian gets scipy's eigsh for the k smallest (shift-invert just
below 0) and the k largest eigenpairs. Every eigenvector is oriented by one rule
(`orient_eigenvectors`), so two pages showing the same Laplacian show the same signs.

With L = U diag(mu) U^T and c = U^T x the coordinates of x in the eigenbasis,
x^T L x = sum_i mu_i c_i^2 and x^T x = sum_i c_i^2. So the Rayleigh energy is the mean of the
eigenvalues weighted by the energy fractions w_i = c_i^2 / sum c^2 (times |x|^2 / (|x|^2 + eps),
the same eps as `taumode.rayleigh_energy`), and lambda = E / (E + tau). A vector whose energy
sits in the smooth, low-eigenvalue modes of the domain graph gets a small lambda; one in the
rough, high-eigenvalue modes a large one.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .errors import ShapeError

if TYPE_CHECKING:
    import torch

# torch is imported where a decomposition needs it: `domain info` and the domain summaries
# use the spectrum without paying for torch's start-up

DENSE_MAX = 2048  # all eigenpairs up to this size; beyond, the two ends of the spectrum (eigsh)
TIE_RTOL = 1e-6  # entries this close (relative) to a column's largest magnitude tie for its sign


@dataclass
class Spectrum:
    """Eigenvalues (ascending) and eigenvectors (columns, oriented) of a symmetric Laplacian, float64 numpy.

    eigenvalues : [K]; eigenvectors : [D, K] (None when not asked for). ``complete`` is False when
    only the ends of the spectrum were computed (eigsh): then the k smallest come first, then the
    k largest.
    """

    eigenvalues: np.ndarray
    eigenvectors: np.ndarray | None
    complete: bool = True


@dataclass
class SpectralDecomposition:
    """Energy of vectors x [..., D] per Laplacian mode.

    eigenvalues : [D] ascending (float64)
    weights : [..., D] energy fractions c_i^2 / sum c^2 (sum to 1; uniform for a zero vector)
    energy : [...] the Rayleigh energy E(x) rebuilt from the modes
    """

    eigenvalues: torch.Tensor
    weights: torch.Tensor
    energy: torch.Tensor

    def lambdas(self, tau) -> torch.Tensor:
        """lambda = E / (E + tau), tau a scalar or one per vector."""
        import torch

        from .taumode import bound_energy

        return bound_energy(self.energy, torch.as_tensor(tau, dtype=self.energy.dtype))


def zero_tolerance(eigenvalues) -> float:
    """Eigenvalues at or below this count as zero: 1e-8 relative to the largest, at least 1e-10."""
    values = np.asarray(eigenvalues)
    top = float(np.max(np.abs(values))) if values.size else 0.0
    return max(1e-10, 1e-8 * top)


def orient_eigenvectors(vectors: np.ndarray) -> np.ndarray:
    """Flip each column so its largest-magnitude entry is positive.

    Entries within TIE_RTOL of the largest magnitude tie (a path graph's modes have two equal
    ends); the lowest index among them decides, so rounding noise cannot flip a vector. The
    sign of an eigenvector is arbitrary; this makes it the same for every caller.
    """
    if vectors.size == 0:
        return vectors
    mags = np.abs(vectors)  # [D, K]
    near_top = mags >= mags.max(axis=0, keepdims=True) * (1.0 - TIE_RTOL)
    first = np.argmax(near_top, axis=0)  # [K] lowest index among the ties
    signs = np.sign(vectors[first, np.arange(vectors.shape[1])])
    return vectors * np.where(signs == 0, 1.0, signs)


def _as_float64(laplacian):
    """(numpy [D, D] or scipy CSR, D) of any accepted Laplacian form, in float64, checked square."""
    torch = sys.modules.get("torch")  # not imported: the input cannot be a tensor
    is_tensor = torch is not None and isinstance(laplacian, torch.Tensor)
    if is_tensor and laplacian.layout != torch.strided and laplacian.dim() == 2:
        import scipy.sparse as sp  # a big sparse tensor must not be made dense

        coo = laplacian.detach().cpu().to_sparse_coo().coalesce()
        rows, cols = coo.indices().numpy()
        L = sp.csr_matrix((coo.values().to(torch.float64).numpy(), (rows, cols)), shape=tuple(coo.shape))
    elif is_tensor:
        L = laplacian.detach().to(torch.float64).cpu().numpy()
    elif hasattr(laplacian, "tocsr"):  # scipy.sparse
        L = laplacian.tocsr().astype(np.float64)
    else:
        L = np.asarray(laplacian, dtype=np.float64)
    if L.ndim != 2 or L.shape[0] != L.shape[1]:
        raise ShapeError(f"a Laplacian must be square, got shape {tuple(L.shape)}")
    return L, int(L.shape[0])


def _clip_tiny_negatives(values: np.ndarray) -> np.ndarray:
    """Round-off below zero (a PSD Laplacian's zero modes) becomes 0; real negatives stay."""
    tol = zero_tolerance(values)
    return np.where((values < 0) & (values >= -tol), 0.0, values)


def laplacian_spectrum(laplacian, *, k: int = 32, vectors: bool = True, maxiter: int | None = None) -> Spectrum:
    """All eigenpairs for D <= DENSE_MAX, else the k smallest and k largest (float64, oriented).

    Parameters
    ----------
    laplacian : torch.Tensor (dense or sparse), numpy array or scipy.sparse matrix [D, D]
    k : eigenpairs at each end of the spectrum when D > DENSE_MAX
    vectors : False skips the eigenvectors (``eigenvectors`` is None)
    maxiter : caps ARPACK's restarts; past it ArpackNoConvergence is raised
    """
    L, D = _as_float64(laplacian)
    if D <= DENSE_MAX:
        dense = L.toarray() if hasattr(L, "toarray") else L
        dense = 0.5 * (dense + dense.T)
        if not vectors:
            return Spectrum(_clip_tiny_negatives(np.linalg.eigvalsh(dense)), None, True)
        vals, vecs = np.linalg.eigh(dense)
        return Spectrum(_clip_tiny_negatives(vals), orient_eigenvectors(vecs), True)
    return _spectrum_ends(L, D, k, vectors, maxiter)


def _spectrum_ends(L, D: int, k: int, vectors: bool, maxiter: int | None) -> Spectrum:
    """The k smallest then the k largest eigenpairs of a big sparse L (scipy eigsh)."""
    import scipy.sparse as sp
    from scipy.sparse.linalg import eigsh

    k = min(k, D // 2 - 1)
    L = sp.csr_matrix(L, dtype=np.float64)
    scale = max(1.0, float(abs(L.diagonal()).max()))
    lo_vals, lo_vecs = eigsh(L, k=k, sigma=-1e-3 * scale, which="LM", maxiter=maxiter)
    hi_vals, hi_vecs = eigsh(L, k=k, which="LA", maxiter=maxiter)
    order_lo, order_hi = np.argsort(lo_vals), np.argsort(hi_vals)
    vals = _clip_tiny_negatives(np.concatenate([lo_vals[order_lo], hi_vals[order_hi]]))
    vecs = orient_eigenvectors(np.hstack([lo_vecs[:, order_lo], hi_vecs[:, order_hi]])) if vectors else None
    return Spectrum(vals, vecs, False)


def spectral_decomposition(x: torch.Tensor, laplacian: torch.Tensor | None = None, *, eps: float = 1e-6,
                           spectrum: Spectrum | None = None) -> SpectralDecomposition:
    """Energy fractions of x [..., D] per eigenvector of L, and the energy they rebuild.

    Pass ``spectrum`` (from `laplacian_spectrum`) to reuse one eigen-decomposition for many vectors.
    ``energy`` equals `taumode.rayleigh_energy(x, L, eps=eps)` up to float32 rounding.
    """
    import torch

    if spectrum is None:
        if laplacian is None:
            raise ShapeError("spectral_decomposition needs a Laplacian or its spectrum")
        spectrum = laplacian_spectrum(laplacian)
    if spectrum.eigenvectors is None or not spectrum.complete:
        raise ShapeError("spectral_decomposition needs every eigenvector of the Laplacian")
    mu, U = torch.from_numpy(spectrum.eigenvalues), torch.from_numpy(spectrum.eigenvectors)  # [D], [D, D]
    D = mu.shape[0]
    if x.shape[-1] != D:
        raise ShapeError(f"vectors have D={x.shape[-1]} but the Laplacian is {D} x {D}")
    c = x.detach().to(torch.float64).cpu() @ U  # [..., D] coordinates in the eigenbasis
    c2 = c * c
    norm2 = c2.sum(-1, keepdim=True)  # [..., 1] = |x|^2
    safe = torch.where(norm2 > 0, norm2, torch.ones_like(norm2))
    weights = torch.where(norm2 > 0, c2 / safe, torch.full_like(c2, 1.0 / D))
    energy = (weights * mu).sum(-1) * (norm2 / (norm2 + eps)).squeeze(-1)
    return SpectralDecomposition(eigenvalues=mu, weights=weights, energy=energy)
