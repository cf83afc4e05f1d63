"""Fast exact tau attention in O(T log T * D) (SPEC section 6).

The weight of key j for query i is w_ij = exp(-|a_i - b_j| / t).  It factorises as
exp(-a_i/t) * exp(b_j/t) when b_j <= a_i and exp(a_i/t) * exp(-b_j/t) otherwise, so for keys
sorted by lambda both sum_j w_ij v_j and sum_j w_ij are a prefix sum plus a suffix sum, read off
at the query's rank (found by binary search).  A column of ones appended to v carries the
softmax denominator through the same sums.

Causality is handled by splitting time recursively (dense diagonal blocks, then at each level
every left half serves every right half without a mask); `tauformer.kernels.sums` does that part.

Numerics: lambdas are centred on the midpoint of their range per (batch, head), so every factor
lies in [exp(-r/t), exp(r/t)] with r the half range.  float32 is used while those factors and
their products stay far from overflow and underflow, float64 beyond that, and the dense kernel
(which subtracts the row maximum) when even float64 would not be safe.  The backward pass checks
its own rows (g / Z grows as a query's total weight Z shrinks) the same way.

Backward (a custom autograd Function) uses the same machinery: the value gradient is the
transposed attention, a second structured pass with queries as sources and time reversed; the
lambda gradients need sign-weighted sums sum_j w_ij sign(a_i - b_j) [v_j, 1], which the forward
pass keeps; the temperature gradient follows from scale invariance,
t * dL/dt = -(sum_i a_i dL/da_i + sum_j b_j dL/db_j).
"""

from __future__ import annotations

import math

import torch
from torch.autograd.function import once_differentiable

from ..errors import ConfigError
from .dense import check_tau_inputs, tau_attention_dense, temperature_bh
from .sums import attention_sums, release_scratch  # noqa: F401  (release_scratch re-exported)

DEFAULT_BLOCK = 128
# Bounds on the spread (lambda range / temperature, the widest log-weight range of a head) and on
# the log of the largest prefix sum.
_F32_MAX_SPREAD = 70.0  # weights down to exp(-70) ~ 4e-31, well above float32's 1e-38
_F32_MAX_LOG = 80.0  # float32 overflows at exp(88.7)
_F64_MAX_SPREAD = 690.0  # float64 underflows at exp(-708)
_F64_MAX_LOG = 690.0  # float64 overflows at exp(709.8)


def tau_attention_fast(lambda_q, lambda_k, v, *, temperature=1.0, causal: bool = True, block: int | None = None):
    """Exact tau attention without the [Tq, Tk] weight matrix.

    Parameters
    ----------
    lambda_q : [B, H, Tq] query lambdas.
    lambda_k : [B, H, Tk] key lambdas (already repeated to H heads for GQA).
    v : [B, H, Tk, D] values.
    temperature : float or tensor of shape [], [H] or [B, H]; may require grad.
    causal : queries are the last Tq positions of the Tk keys and see keys up to their own.
    block : base block size for the dense diagonal blocks (default 128; the actual size is in
        [block, 2 * block), rounded up to a multiple of 16, so that the number of blocks is a
        power of two).

    Returns
    -------
    [B, H, Tq, D] in v's dtype; equal to `tau_attention_dense` up to rounding.  Falls back to
    the dense kernel where the temperature is so small (or the lambdas so spread) that the
    factorised sums would leave float64's range, and for empty inputs.
    """
    check_tau_inputs(lambda_q, lambda_k, v, causal)
    block = DEFAULT_BLOCK if block is None else block
    if not isinstance(block, int) or block < 1:
        raise ConfigError(f"fast tau attention: block must be a positive integer, got {block!r}")
    B, H, Tq = lambda_q.shape
    Tk = lambda_k.shape[-1]
    t_bh = temperature_bh(temperature, B, H, lambda_q.device)
    if Tq == 0 or Tk == 0 or v.shape[-1] == 0:
        return tau_attention_dense(lambda_q, lambda_k, v, temperature=temperature, causal=causal)
    plan = plan_precision(lambda_q, lambda_k, v, t_bh)
    if plan is None:
        return tau_attention_dense(lambda_q, lambda_k, v, temperature=temperature, causal=causal)
    dtype, centre = plan
    return _FastTau.apply(lambda_q, lambda_k, v, t_bh, centre, dtype, causal, block)


def plan_precision(lambda_q, lambda_k, v, t_bh):
    """Pick the accumulation dtype, or None when only the dense kernel is safe.

    Returns ``(dtype, centre)`` with centre the [B, H] midpoint of the lambdas.  One host sync.
    """
    with torch.no_grad():
        lq = lambda_q.detach()
        lk = lambda_k.detach()
        lo = torch.minimum(lq.amin(-1), lk.amin(-1)).double()
        hi = torch.maximum(lq.amax(-1), lk.amax(-1)).double()
        t = t_bh.detach().double()
        spread = ((hi - lo) / t).amax()  # = 2 r / t, the widest log-weight range of any head
        v_lo, v_hi = torch.aminmax(v.detach())
        v_max = torch.maximum(v_lo.abs(), v_hi.abs()).double()
        stats = torch.stack([spread, t.amin(), v_max]).tolist()
    spread, t_min, v_max = stats
    if not (math.isfinite(spread) and math.isfinite(v_max) and t_min > 0):
        return None
    log_max = spread / 2 + math.log(max(v_max, 1.0)) + math.log(lambda_k.shape[-1] + 1)
    wide = torch.float64 in (lambda_q.dtype, lambda_k.dtype, v.dtype)
    if not wide and spread <= _F32_MAX_SPREAD and log_max <= _F32_MAX_LOG:
        dtype = torch.float32
    elif spread <= _F64_MAX_SPREAD and log_max <= _F64_MAX_LOG:
        dtype = torch.float64
    else:
        return None
    return dtype, ((lo + hi) / 2).to(dtype)


class _FastTau(torch.autograd.Function):
    """Autograd wrapper: forward and backward both run the structured prefix-sum passes."""

    @staticmethod
    def forward(ctx, lambda_q, lambda_k, v, t_bh, centre, dtype, causal, block):
        B, H, Tq = lambda_q.shape
        Tk, D = v.shape[-2], v.shape[-1]
        G = B * H
        a = lambda_q.detach().reshape(G, Tq).to(dtype) - centre.reshape(G, 1)  # [G, Tq]
        b = lambda_k.detach().reshape(G, Tk).to(dtype) - centre.reshape(G, 1)  # [G, Tk]
        inv_t = 1.0 / t_bh.detach().reshape(G).to(dtype)  # [G]
        vg = v.detach().reshape(G, Tk, D)
        need_lambda = ctx.needs_input_grad[0] or ctx.needs_input_grad[1] or ctx.needs_input_grad[3]
        # rows [v, 1]: the last column carries the softmax denominator
        total, signed = attention_sums(b, vg, None, None, a, Tk, inv_t, causal=causal, reverse=False,
                                       signed=need_lambda, block=block)
        Z = total[..., D]  # [G, Tq]
        y = total[..., :D] / Z.unsqueeze(-1)
        ctx.save_for_backward(a, b, inv_t, vg, y, Z, signed if need_lambda else None)
        ctx.shape = (B, H, Tq, Tk, D)
        ctx.dtypes = (lambda_q.dtype, lambda_k.dtype, v.dtype, t_bh.dtype)
        ctx.causal, ctx.block = causal, block
        return y.reshape(B, H, Tq, D).to(v.dtype)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_y):
        a, b, inv_t, vg, y, Z, signed = ctx.saved_tensors
        B, H, Tq, Tk, D = ctx.shape
        G = B * H
        dq_dtype, dk_dtype, v_dtype, t_dtype = ctx.dtypes
        need_q, need_k, need_v, need_t = ctx.needs_input_grad[:4]
        dtype = y.dtype
        g = grad_y.reshape(G, Tq, D).to(dtype)
        delta = (g * y).sum(-1)  # [G, Tq] = g_i . y_i
        need_transposed = need_v or need_k or need_t
        if need_transposed:
            # rows g / Z grow as the query's total weight Z shrinks: pick a dtype that holds them
            dtype = _backward_precision(a, inv_t, Z, g, delta, dtype)
            if dtype is None:
                return _dense_backward(ctx, grad_y, a, b, inv_t, vg)
            a, b, inv_t, Z, g, delta = (x.to(dtype) for x in (a, b, inv_t, Z, g, delta))
        rz = 1.0 / Z

        grad_q = grad_k = grad_v = grad_t = None
        da = db = None
        if need_q or need_t:
            signed = signed.to(dtype)
            x = (g * signed[..., :D]).sum(-1) - delta * signed[..., D]  # sum_j p_ij sgn_ij (g.v_j - delta)*Z
            da = -x * rz * inv_t.unsqueeze(-1)  # [G, Tq]
        if need_transposed:
            want_signed = need_k or need_t
            vg_c = vg.to(dtype)
            # transposed pass: queries are the sources, with rows [g, delta] / Z
            total_t, raw_t = attention_sums(a, g, delta, rz, b, Tk, inv_t, causal=ctx.causal, reverse=True,
                                            signed=want_signed, block=ctx.block)
            if need_v:
                grad_v = total_t[..., :D].reshape(B, H, Tk, D).to(v_dtype)
            if want_signed:
                # sign(a_i - b_j) = -sign(target - source) in this transposed pass
                db = -((vg_c * raw_t[..., :D]).sum(-1) - raw_t[..., D]) * inv_t.unsqueeze(-1)  # [G, Tk]
        if need_q:
            grad_q = da.reshape(B, H, Tq).to(dq_dtype)
        if need_k:
            grad_k = db.reshape(B, H, Tk).to(dk_dtype)
        if need_t:
            grad_t = (-((a * da).sum(-1) + (b * db).sum(-1)) * inv_t).reshape(B, H).to(t_dtype)
        return grad_q, grad_k, grad_v, grad_t, None, None, None, None


def _backward_precision(a, inv_t, Z, g, delta, dtype):
    """dtype for the transposed pass (float32, float64) or None when only dense is safe.

    Its table rows are g_i / Z_i * exp(+-a_i / t); their prefix sums must stay finite.
    """
    with torch.no_grad():
        src = (a.abs() * inv_t.unsqueeze(-1) - Z.log()).amax()
        mag = torch.maximum(g.abs().amax(), delta.abs().amax())
        src, mag = torch.stack([src.double(), mag.double()]).tolist()
    if not (math.isfinite(src) and math.isfinite(mag)):
        return None
    log_max = src + math.log(max(mag, 1e-300)) + math.log(Z.shape[-1] + 1)
    if dtype == torch.float32 and log_max <= _F32_MAX_LOG:
        return torch.float32
    if log_max <= _F64_MAX_LOG:
        return torch.float64
    return None


def _dense_backward(ctx, grad_y, a, b, inv_t, vg):
    """Gradients through the dense kernel, for inputs the factorised sums cannot hold."""
    B, H, Tq, Tk, D = ctx.shape
    needs = ctx.needs_input_grad[:4]
    with torch.enable_grad():
        leaves = [a.detach().view(B, H, Tq), b.detach().view(B, H, Tk), vg.detach().view(B, H, Tk, D),
                  (1.0 / inv_t).detach().view(B, H)]
        leaves = [x.requires_grad_(need) for x, need in zip(leaves, needs)]
        y = tau_attention_dense(leaves[0], leaves[1], leaves[2], temperature=leaves[3], causal=ctx.causal)
        wanted = [x for x, need in zip(leaves, needs) if need]
        found = iter(torch.autograd.grad(y, wanted, grad_y.to(y.dtype)))
    grads = [next(found).to(dtype) if need else None for need, dtype in zip(needs, ctx.dtypes)]
    return (*grads, None, None, None, None)
