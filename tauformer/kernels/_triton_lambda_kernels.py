"""Triton kernel source for `triton_lambda`: x [N, D] (any float dtype), L [D, D] float32, tau [1]."""

import triton
import triton.language as tl


@triton.jit
def _rows(X, pid, N, D, BLOCK_R: tl.constexpr, BLOCK_D: tl.constexpr):
    offs_r = pid * BLOCK_R + tl.arange(0, BLOCK_R)
    offs_d = tl.arange(0, BLOCK_D)
    mask = (offs_r[:, None] < N) & (offs_d[None, :] < D)
    x = tl.load(X + offs_r[:, None].to(tl.int64) * D + offs_d[None, :], mask=mask, other=0.0).to(tl.float32)
    return x, offs_r, offs_d, mask


@triton.jit
def _cols(X, offs_r, offs_j, N, D):
    mask = (offs_r[:, None] < N) & (offs_j[None, :] < D)
    return tl.load(X + offs_r[:, None].to(tl.int64) * D + offs_j[None, :], mask=mask, other=0.0).to(tl.float32)


@triton.jit
def _lx_block(x, L, offs_d, j0, D, BLOCK_J: tl.constexpr):
    """Columns j0 .. j0 + BLOCK_J of x L -> [BLOCK_R, BLOCK_J] (float32 products)."""
    offs_j = j0 + tl.arange(0, BLOCK_J)
    lj = tl.load(L + offs_d[:, None] * D + offs_j[None, :], mask=(offs_d[:, None] < D) & (offs_j[None, :] < D),
                 other=0.0)  # [BLOCK_D, BLOCK_J]
    return tl.dot(x, lj, input_precision="ieee"), offs_j


@triton.jit
def lambda_fwd_kernel(X, L, TAU, LAM, ENERGY, N, D, eps,
                      BLOCK_R: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_J: tl.constexpr):
    x, offs_r, offs_d, _ = _rows(X, tl.program_id(0), N, D, BLOCK_R, BLOCK_D)
    num = tl.zeros([BLOCK_R], tl.float32)
    for j0 in range(0, D, BLOCK_J):
        lx, offs_j = _lx_block(x, L, offs_d, j0, D, BLOCK_J)
        xj = _cols(X, offs_r, offs_j, N, D)  # the same columns of x, re-read (from cache)
        num += tl.sum(lx * xj, 1)
    energy = num / (tl.sum(x * x, 1) + eps)
    tau = tl.load(TAU)
    e = tl.maximum(energy, 0.0)
    r_valid = offs_r < N
    tl.store(LAM + offs_r, e / (e + tau), mask=r_valid)
    tl.store(ENERGY + offs_r, energy, mask=r_valid)


@triton.jit
def lambda_bwd_kernel(G, X, L, TAU, ENERGY, GX, N, D, eps,
                      BLOCK_R: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_J: tl.constexpr):
    x, offs_r, offs_d, _ = _rows(X, tl.program_id(0), N, D, BLOCK_R, BLOCK_D)
    r_valid = offs_r < N
    g = tl.load(G + offs_r, mask=r_valid, other=0.0)
    energy = tl.load(ENERGY + offs_r, mask=r_valid, other=0.0)
    tau = tl.load(TAU)
    e = tl.maximum(energy, 0.0)
    coef = g * tau / ((e + tau) * (e + tau)) * 2.0 / (tl.sum(x * x, 1) + eps)
    coef = tl.where(energy >= 0.0, coef, 0.0)  # the clip at 0 passes no gradient
    for j0 in range(0, D, BLOCK_J):
        lx, offs_j = _lx_block(x, L, offs_d, j0, D, BLOCK_J)
        xj = _cols(X, offs_r, offs_j, N, D)
        gx = coef[:, None] * (lx - energy[:, None] * xj)  # L symmetric: d(x L x) / dx = 2 L x
        tl.store(GX + offs_r[:, None].to(tl.int64) * D + offs_j[None, :], gx.to(GX.dtype.element_ty),
                 mask=r_valid[:, None] & (offs_j[None, :] < D))
