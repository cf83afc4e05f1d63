"""Fused taumode lambda in Triton: x L, the Rayleigh quotient and the bounding in one pass.

For rows x of [N, D] and a dense symmetric Laplacian L [D, D] (D <= 512):
  E_raw = x^T L x / (x^T x + eps),   E = max(E_raw, 0),   lambda = E / (E + tau),
with a scalar tau (the fixed and calibrated modes).  A program holds BLOCK_R rows and walks L in
column blocks, so L is read from L2 / shared memory once per row block and x L never reaches
global memory.  The backward recomputes x L the same way:
  d x = g tau / (E + tau)^2 * [E_raw >= 0] * 2 (L x - E_raw x) / (x^T x + eps).
Both are torch custom ops (opaque to torch.compile); see `taumode_lambda_triton`.
"""

from __future__ import annotations

import math

import torch

from .triton_tau import check_device, interpreting

MAX_D = 512


def lambda_kernel_fits(x: torch.Tensor, laplacian: torch.Tensor) -> bool:
    """Whether the fused kernel handles this input: a dense L of at most MAX_D, rows of its size."""
    return laplacian.layout == torch.strided and laplacian.dim() == 2 and x.shape[-1] == laplacian.shape[0] <= MAX_D


def taumode_lambda_triton(x: torch.Tensor, laplacian: torch.Tensor, tau: torch.Tensor | float, eps: float = 1e-6):
    """(lambda, E) for x [..., D] against L [D, D] -> two float32 tensors of shape x.shape[:-1].

    Differentiable in x (E is returned detached, for calibration).  tau is a scalar (float or
    0-d tensor, > 0).  Same values as `taumode.bound_energy(rayleigh_energy(x, L), tau)`.
    """
    check_device(x, laplacian)
    shape = x.shape[:-1]
    flat = x.reshape(-1, x.shape[-1])
    tau_t = torch.as_tensor(tau, dtype=torch.float32, device=x.device).reshape(1)
    lam, energy = torch.ops.tauformer.taumode_lambda_fwd(flat, laplacian.float().contiguous(), tau_t, float(eps))
    return lam.reshape(shape), energy.detach().clamp_min(0.0).reshape(shape)


def _config(D: int) -> dict:
    block_d = max(16, 1 << (D - 1).bit_length())
    block_j = min(block_d, 64)
    block_r = 16 if interpreting() else (32 if block_d <= 128 else 16)
    return dict(BLOCK_R=block_r, BLOCK_D=block_d, BLOCK_J=block_j, num_warps=8 if block_d >= 256 else 4)


@torch.library.custom_op("tauformer::taumode_lambda_fwd", mutates_args=())
def taumode_lambda_fwd(x: torch.Tensor, laplacian: torch.Tensor, tau: torch.Tensor,
                       eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """lambda [N] and the unclipped energy [N] (float32) of the rows of x [N, D]."""
    from ._triton_lambda_kernels import lambda_fwd_kernel

    N, D = x.shape
    x = x.contiguous()
    lam = torch.empty(N, device=x.device, dtype=torch.float32)
    energy = torch.empty_like(lam)
    cfg = _config(D)
    grid = (math.ceil(N / cfg["BLOCK_R"]),)
    if N:
        lambda_fwd_kernel[grid](x, laplacian, tau, lam, energy, N, D, eps, **cfg)
    return lam, energy


@taumode_lambda_fwd.register_fake
def _(x, laplacian, tau, eps):
    return x.new_empty(x.shape[0], dtype=torch.float32), x.new_empty(x.shape[0], dtype=torch.float32)


@torch.library.custom_op("tauformer::taumode_lambda_bwd", mutates_args=())
def taumode_lambda_bwd(grad_lam: torch.Tensor, x: torch.Tensor, laplacian: torch.Tensor, tau: torch.Tensor,
                       energy: torch.Tensor, eps: float) -> torch.Tensor:
    """d lambda . grad_lam / d x [N, D] in x's dtype."""
    from ._triton_lambda_kernels import lambda_bwd_kernel

    N, D = x.shape
    x = x.contiguous()
    grad_x = torch.empty((N, D), device=x.device, dtype=x.dtype)
    cfg = _config(D)
    if N:
        lambda_bwd_kernel[(math.ceil(N / cfg["BLOCK_R"]),)](grad_lam.float().contiguous(), x, laplacian, tau,
                                                             energy, grad_x, N, D, eps, **cfg)
    return grad_x


@taumode_lambda_bwd.register_fake
def _(grad_lam, x, laplacian, tau, energy, eps):
    return x.new_empty(x.shape)


def _setup_context(ctx, inputs, output):
    x, laplacian, tau, eps = inputs
    ctx.save_for_backward(x, laplacian, tau, output[1])
    ctx.eps = eps


def _backward(ctx, grad_lam, _grad_energy):
    x, laplacian, tau, energy = ctx.saved_tensors
    return torch.ops.tauformer.taumode_lambda_bwd(grad_lam, x, laplacian, tau, energy, ctx.eps), None, None, None


taumode_lambda_fwd.register_autograd(_backward, setup_context=_setup_context)
