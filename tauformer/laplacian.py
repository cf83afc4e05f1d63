"""Laplacians a model can measure its head vectors against: the chain default, validation, conversion.

A Laplacian here is a symmetric positive semi-definite D x D matrix with D = head_dim, given as a
torch tensor (dense or sparse), a scipy.sparse matrix, a numpy array, or a domain-memory file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .errors import ShapeError


def chain_laplacian(D: int, dtype=torch.float32) -> torch.Tensor:
    """Unnormalised Laplacian of the path graph 0-1-...-(D-1) with unit weights, dense [D, D]."""
    if D < 1:
        raise ShapeError(f"a Laplacian needs at least one node, got D={D}")
    L = torch.zeros(D, D, dtype=dtype)
    idx = torch.arange(D - 1)
    L[idx, idx + 1] = -1.0
    L[idx + 1, idx] = -1.0
    L -= torch.diag(L.sum(dim=1))
    return L


def identity_laplacian(D: int, dtype=torch.float32) -> torch.Tensor:
    """The identity: every vector gets Rayleigh energy 1 (a 'no domain memory' ablation)."""
    return torch.eye(D, dtype=dtype)


def as_laplacian_tensor(laplacian, head_dim: int, *, name: str = "laplacian") -> torch.Tensor:
    """Turn any accepted Laplacian form into a validated dense float32 tensor [head_dim, head_dim].

    None or "chain" gives the chain Laplacian; a str / Path other than "chain" is read as a
    domain-memory file. Raises ShapeError naming both sizes when the Laplacian is not head_dim.
    """
    if laplacian is None or (isinstance(laplacian, str) and laplacian == "chain"):
        return chain_laplacian(head_dim)
    if isinstance(laplacian, (str, Path)):
        from .domain import load_domain_memory

        memory = load_domain_memory(laplacian)
        name = str(laplacian)
        laplacian = memory.laplacian
    _check_shape_first(getattr(laplacian, "shape", None), head_dim, name)
    if isinstance(laplacian, torch.Tensor):
        L = laplacian.to_dense() if laplacian.layout != torch.strided else laplacian
        L = L.detach().to(torch.float32).cpu()
    elif hasattr(laplacian, "toarray"):  # scipy.sparse
        L = torch.from_numpy(np.asarray(laplacian.toarray(), dtype=np.float32))
    else:
        L = torch.as_tensor(np.asarray(laplacian, dtype=np.float32))
    validate_laplacian(L, head_dim, name=name)
    return L.contiguous()


def _check_shape_first(shape, head_dim: int, name: str) -> None:
    """The size check before a sparse Laplacian is made dense: a 65,536-node one would take 17 GB."""
    if shape is not None and len(shape) == 2:
        check_laplacian_size(shape, head_dim, name=name)


def check_laplacian_size(shape, head_dim: int, *, name: str = "laplacian", subject: str = "Laplacian",
                         detail: str = "", remedy: str | None = None) -> None:
    """Raise ShapeError naming both sizes unless ``shape`` (rows, cols) is (head_dim, head_dim).

    The one size check of a Laplacian against a model: model construction, what-if, training and
    studies use it. ``subject`` names what has the shape, ``detail`` follows the head dim (e.g. how
    it comes about), ``remedy`` replaces the default advice to rebuild with ``--dim head_dim``.
    """
    rows, cols = (int(s) for s in shape)
    if (rows, cols) == (head_dim, head_dim):
        return
    advice = remedy if remedy is not None else f"rebuild the domain memory with --dim {head_dim}"
    raise ShapeError(f"{name}: {subject} is {rows} x {cols} but the model's head_dim is {head_dim}{detail}; {advice}")


def validate_laplacian(L: torch.Tensor, head_dim: int, *, name: str = "laplacian", atol: float = 1e-4) -> None:
    """Raise ShapeError unless L is a finite symmetric [head_dim, head_dim] matrix."""
    if L.dim() != 2 or L.shape[0] != L.shape[1]:
        raise ShapeError(f"{name}: a Laplacian must be square, got shape {tuple(L.shape)}")
    check_laplacian_size(L.shape, head_dim, name=name)
    if not torch.isfinite(L).all():
        raise ShapeError(f"{name}: Laplacian has NaN or infinite entries")
    scale = max(1.0, float(L.abs().max()))
    if not torch.allclose(L, L.T, atol=atol * scale):
        raise ShapeError(f"{name}: Laplacian is not symmetric (max |L - L^T| = {float((L - L.T).abs().max()):.3g})")
