"""Fused flash-style tau attention in Triton, forward and backward (SPEC section 6b).

The logits s_ij = -|lq_i - lk_j| / t come from two scalars, so there is no Q K^T product: a
program holds a tile of queries, walks the key tiles once with an online softmax and accumulates
P V in float32; the only matrix product is P V.  Work is done in base 2 (c = log2(e) / t, so
exp(s) = exp2(-|lq - lk| c)); the saved log-sum-exp is in the same units.

Backward, FlashAttention-2 style, recomputes P = exp2(s2 - lse2) from the saved log-sum-exp:
- `bwd_kv_kernel`, one program per key tile and key / value head, walks the queries of every
  query head that reads that kv head (GQA by index: dV and d lk need no atomics):
  dV_j = sum_i P_ij dO_i and d lk_j = sum_i dS_ij sign(lq_i - lk_j) / t; it also adds
  d lq_i = -sum_j dS_ij sign(.) / t (one scalar per row and key tile) and the head's
  d t = sum_ij dS_ij |lq_i - lk_j| / t^2 atomically;
- with DETERMINISTIC_BACKWARD, `bwd_q_kernel` (one program per query tile and head) computes
  d lq and the d t sums instead, in a fixed order,
with dS_ij = P_ij (dO_i . v_j - Delta_i) and Delta_i = dO_i . o_i.  Ties get sign 0.

The kernels run on CUDA tensors, or on CPU tensors under Triton's interpreter (TRITON_INTERPRET=1,
set before triton is imported).  `tau_attention_triton` wraps them as torch custom ops, so the
model compiles with torch.compile without graph breaks and the ops can be CUDA-graph captured.
"""

from __future__ import annotations

import importlib.util
import math
import os

import torch

from ..errors import ConfigError
from .dense import temperature_bh

LOG2E = 1.4426950408889634
# True: the backward's d lq and d t come from a second kernel over query tiles (bit-reproducible,
# but P and dO . v are computed twice); False: the key-tile kernel adds them atomically.
DETERMINISTIC_BACKWARD = False


# looked up without importing triton: TRITON_INTERPRET must be set before its first import
HAS_TRITON = importlib.util.find_spec("triton") is not None


def interpreting() -> bool:
    """Whether Triton runs kernels in its interpreter (on CPU tensors)."""
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def triton_available(device=None) -> bool:
    """Whether the Triton kernels can run on ``device`` (None: on CUDA)."""
    if not HAS_TRITON:
        return False
    kind = "cuda" if device is None else torch.device(device).type
    if kind == "cuda":
        return torch.cuda.is_available()
    return kind == "cpu" and interpreting()


def check_device(*tensors) -> None:
    """ConfigError unless Triton can run on these tensors' device."""
    device = tensors[0].device
    if not HAS_TRITON:
        raise ConfigError("tau_attention(kernel='triton') needs the triton package (pip install triton)")
    if not triton_available(device):
        raise ConfigError(f"tau_attention(kernel='triton') runs on CUDA, or on CPU only with TRITON_INTERPRET=1 "
                          f"set before triton is imported; got tensors on {device}")


def tau_attention_triton(lambda_q, lambda_k, v, *, temperature=1.0, causal: bool = True):
    """Fused tau attention.  lambda_q [B, H, Tq], lambda_k [B, H_kv, Tk], v [B, H_kv, Tk, D] -> [B, H, Tq, D].

    H_kv must divide H (query head h reads kv head h // (H / H_kv)).  temperature: float, [H] or
    [B, H], differentiable.  Lambdas are used in float32; v may be float32, bfloat16 or float16
    (P V is accumulated in float32, the output has v's dtype).  A single query without autograd
    takes the split-K decode kernel.
    """
    from . import check_gqa_inputs

    check_gqa_inputs(lambda_q, lambda_k, v, causal)
    check_device(lambda_q, lambda_k, v)
    if v.dtype not in (torch.float32, torch.bfloat16, torch.float16):
        raise ConfigError(f"tau_attention(kernel='triton') takes float32, bfloat16 or float16 values, got {v.dtype}")
    B, H, Tq = lambda_q.shape
    t_bh = temperature_bh(temperature, B, H, lambda_q.device).float()
    lq = lambda_q.float()
    lk = lambda_k.float()
    if Tq == 0 or lk.shape[-1] == 0 or v.shape[-1] == 0:
        return _empty_result(lq, lk, v, t_bh, causal)
    grad = torch.is_grad_enabled() and any(x.requires_grad for x in (lq, lk, v, t_bh))
    if Tq == 1 and not grad:
        from .triton_decode import tau_decode_triton

        return tau_decode_triton(lq, lk, v, t_bh)
    out, _ = torch.ops.tauformer.tau_flash_fwd(lq, lk, v, t_bh, causal)
    return out


def _empty_result(lq, lk, v, t_bh, causal):
    """Degenerate sizes go through the dense reference (it defines what they mean)."""
    from .dense import tau_attention_dense

    n_rep = lq.shape[1] // lk.shape[1]
    return tau_attention_dense(lq, lk.repeat_interleave(n_rep, 1), v.repeat_interleave(n_rep, 1),
                               temperature=t_bh, causal=causal)


# ----------------------------------------------------------------------------------------------
# launch configuration


def block_sizes(D: int, dtype: torch.dtype) -> dict:
    """Tile sizes and warps.  The interpreter gets small tiles (fewer numpy ops per program)."""
    block_d = max(16, 1 << (D - 1).bit_length())
    if interpreting():
        return dict(BLOCK_M=32, BLOCK_N=32, BLOCK_D=block_d, num_warps=1, num_stages=1)
    wide = block_d > 64 or dtype == torch.float32
    return dict(BLOCK_M=128 if not wide else 64, BLOCK_N=64, BLOCK_D=block_d,
                num_warps=8 if block_d > 64 else 4, num_stages=2 if wide else 3)


def _dot_mode(dtype: torch.dtype) -> int:
    """How the kernels multiply P V (see `_triton_kernels._pv`)."""
    if dtype == torch.float32:
        return 1
    return 2 if interpreting() else 0


def _flat(x: torch.Tensor) -> torch.Tensor:
    """A contiguous copy only where needed (the kernels index with unit last stride)."""
    return x if x.is_contiguous() else x.contiguous()


def _fwd_impl(lq, lk, v, t_bh, causal):
    from ._triton_kernels import fwd_kernel

    B, H, Tq = lq.shape
    H_kv, Tk, D = v.shape[1], v.shape[2], v.shape[3]
    lq, lk, v = _flat(lq), _flat(lk), _flat(v)
    scale = (LOG2E / _flat(t_bh)).reshape(B * H)  # [B*H] base-2 logit scale
    out = torch.empty((B, H, Tq, D), device=v.device, dtype=v.dtype)
    lse2 = torch.empty((B, H, Tq), device=v.device, dtype=torch.float32)
    cfg = block_sizes(D, v.dtype)
    grid = (math.ceil(Tq / cfg["BLOCK_M"]), B * H)
    fwd_kernel[grid](lq, lk, v, scale, out, lse2, H, H // H_kv, Tq, Tk, D, Tk - Tq,
                     CAUSAL=bool(causal), IEEE=_dot_mode(v.dtype), **cfg)
    return out, lse2


def _bwd_impl(grad_out, lq, lk, v, t_bh, out, lse2, causal):
    from ._triton_kernels import bwd_kv_kernel, bwd_q_kernel

    B, H, Tq = lq.shape
    H_kv, Tk, D = v.shape[1], v.shape[2], v.shape[3]
    n_rep = H // H_kv
    lq, lk, v = _flat(lq), _flat(lk), _flat(v)
    grad_out = _flat(grad_out.to(v.dtype))
    delta = (grad_out.float() * out.float()).sum(-1)  # [B, H, Tq] = dO_i . o_i
    scale = (LOG2E / _flat(t_bh)).reshape(B * H)
    cfg = block_sizes(D, v.dtype)
    dv = torch.empty(v.shape, device=v.device, dtype=v.dtype)
    dlk = torch.empty((B, H_kv, Tk), device=v.device, dtype=torch.float32)
    fuse = not DETERMINISTIC_BACKWARD
    dlq = (torch.zeros if fuse else torch.empty)((B, H, Tq), device=v.device, dtype=torch.float32)
    dt_sum = torch.zeros((B * H, 1), device=v.device, dtype=torch.float32)
    grid_kv = (math.ceil(Tk / cfg["BLOCK_N"]), B * H_kv)
    bwd_kv_kernel[grid_kv](lq, lk, v, scale, grad_out, lse2, delta, dv, dlk, dlq, dt_sum, H, n_rep, Tq, Tk, D,
                           Tk - Tq, CAUSAL=bool(causal), IEEE=_dot_mode(v.dtype), FUSE_Q=fuse, **cfg)
    if fuse:
        dt_part = dt_sum
    else:
        n_q_tiles = math.ceil(Tq / cfg["BLOCK_M"])
        dt_part = torch.empty((B * H, n_q_tiles), device=v.device, dtype=torch.float32)
        bwd_q_kernel[(n_q_tiles, B * H)](lq, lk, v, scale, grad_out, lse2, delta, dlq, dt_part, H, n_rep, Tq, Tk,
                                         D, Tk - Tq, n_q_tiles, CAUSAL=bool(causal), IEEE=_dot_mode(v.dtype), **cfg)
    dt = dt_part.sum(-1).reshape(B, H) / (t_bh * t_bh)  # the tiles' sum_ij dS_ij |lq_i - lk_j|, / t^2
    return dlq, dlk, dv, dt


# ----------------------------------------------------------------------------------------------
# torch custom ops: opaque to torch.compile (no graph break), capturable in a CUDA graph


@torch.library.custom_op("tauformer::tau_flash_fwd", mutates_args=())
def tau_flash_fwd(lq: torch.Tensor, lk: torch.Tensor, v: torch.Tensor, t_bh: torch.Tensor,
                  causal: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Fused forward: (out [B, H, Tq, D] in v's dtype, base-2 log-sum-exp [B, H, Tq] float32)."""
    return _fwd_impl(lq, lk, v, t_bh, causal)


@tau_flash_fwd.register_fake
def _(lq, lk, v, t_bh, causal):
    B, H, Tq = lq.shape
    return v.new_empty((B, H, Tq, v.shape[-1])), lq.new_empty((B, H, Tq), dtype=torch.float32)


@torch.library.custom_op("tauformer::tau_flash_bwd", mutates_args=())
def tau_flash_bwd(grad_out: torch.Tensor, lq: torch.Tensor, lk: torch.Tensor, v: torch.Tensor,
                  t_bh: torch.Tensor, out: torch.Tensor, lse2: torch.Tensor,
                  causal: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Fused backward: gradients for lq [B, H, Tq], lk [B, H_kv, Tk], v, t [B, H] (float32 but v's)."""
    return _bwd_impl(grad_out, lq, lk, v, t_bh, out, lse2, causal)


@tau_flash_bwd.register_fake
def _(grad_out, lq, lk, v, t_bh, out, lse2, causal):
    return (lq.new_empty(lq.shape), lk.new_empty(lk.shape), v.new_empty(v.shape), t_bh.new_empty(t_bh.shape))


def _setup_context(ctx, inputs, output):
    lq, lk, v, t_bh, causal = inputs
    out, lse2 = output
    ctx.save_for_backward(lq, lk, v, t_bh, out, lse2)
    ctx.causal = causal


def _backward(ctx, grad_out, _grad_lse):
    lq, lk, v, t_bh, out, lse2 = ctx.saved_tensors
    dlq, dlk, dv, dt = torch.ops.tauformer.tau_flash_bwd(grad_out, lq, lk, v, t_bh, out, lse2, ctx.causal)
    return dlq, dlk, dv, dt, None


tau_flash_fwd.register_autograd(_backward, setup_context=_setup_context)
