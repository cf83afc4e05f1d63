"""Why a head vector gets its lambda: its energy in the Laplacian's eigenbasis (SPEC section 2).

With L = U diag(mu) U^T and c = U^T x the coordinates of x in the eigenbasis,
x^T L x = sum_i mu_i c_i^2 and x^T x = sum_i c_i^2. So the Rayleigh energy is the mean of the
eigenvalues weighted by the energy fractions w_i = c_i^2 / sum c^2 (times |x|^2 / (|x|^2 + eps),
the same eps as `taumode.rayleigh_energy`), and lambda = E / (E + tau). A vector whose energy
sits in the smooth, low-eigenvalue modes of the domain graph gets a small lambda; one in the
rough, high-eigenvalue modes a large one.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .errors import ShapeError
from .taumode import bound_energy


@dataclass
class Spectrum:
    """Eigen-decomposition of a Laplacian: eigenvalues mu [D] ascending, eigenvectors U [D, D] (columns)."""

    eigenvalues: torch.Tensor
    eigenvectors: torch.Tensor


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
        return bound_energy(self.energy, torch.as_tensor(tau, dtype=self.energy.dtype))


def laplacian_spectrum(laplacian: torch.Tensor) -> Spectrum:
    """Eigenvalues (ascending, tiny negatives clipped to 0) and eigenvectors of a dense symmetric L, in float64."""
    L = laplacian.to_dense() if laplacian.layout != torch.strided else laplacian
    if L.dim() != 2 or L.shape[0] != L.shape[1]:
        raise ShapeError(f"a Laplacian must be square, got shape {tuple(L.shape)}")
    L = L.detach().to(torch.float64).cpu()
    mu, U = torch.linalg.eigh(0.5 * (L + L.T))
    return Spectrum(eigenvalues=mu.clamp_min(0.0), eigenvectors=U)


def spectral_decomposition(x: torch.Tensor, laplacian: torch.Tensor | None = None, *, eps: float = 1e-6,
                           spectrum: Spectrum | None = None) -> SpectralDecomposition:
    """Energy fractions of x [..., D] per eigenvector of L, and the energy they rebuild.

    Pass ``spectrum`` (from `laplacian_spectrum`) to reuse one eigen-decomposition for many vectors.
    ``energy`` equals `taumode.rayleigh_energy(x, L, eps=eps)` up to float32 rounding.
    """
    if spectrum is None:
        if laplacian is None:
            raise ShapeError("spectral_decomposition needs a Laplacian or its spectrum")
        spectrum = laplacian_spectrum(laplacian)
    mu, U = spectrum.eigenvalues, spectrum.eigenvectors
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
