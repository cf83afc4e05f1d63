"""Tau attention kernels: softmax over -|lambda_q - lambda_k| / temperature, then weights @ v.

`tau_attention` is the public entry point; it validates shapes and dispatches to a kernel.
The dense kernel here is the O(Tq * Tk) reference that the fast kernel is tested against.
"""

from __future__ import annotations

import torch

from .config import TAU_KERNELS as KERNELS
from .errors import ShapeError


def causal_mask(Tq: int, Tk: int, device=None) -> torch.Tensor:
    """Boolean [Tq, Tk] mask, True where query i may see key j (aligned to the end of the keys)."""
    if Tq > Tk:
        raise ShapeError(f"causal attention needs Tq <= Tk, got Tq={Tq}, Tk={Tk}")
    return torch.ones(Tq, Tk, dtype=torch.bool, device=device).tril(diagonal=Tk - Tq)


def temperature_bh(temperature, B: int, H: int, device) -> torch.Tensor:
    """Temperature as a [B, H] tensor, differentiable with respect to a tensor argument.

    Accepts a float, a 0-d tensor, one value per head ([H]) or per batch and head ([B, H]).
    """
    if isinstance(temperature, torch.Tensor):
        t = temperature.to(device)
        if not t.is_floating_point():
            t = t.float()
    else:
        t = torch.tensor(float(temperature), device=device)
    if t.dim() == 0:
        return t.expand(B, H)
    if t.shape == (H,):
        return t.unsqueeze(0).expand(B, H)
    if t.shape == (B, H):
        return t
    raise ShapeError(f"temperature must be a float, [H]={H} or [B, H]=({B}, {H}); got {tuple(t.shape)}")


def as_temperature(temperature, lambda_q: torch.Tensor) -> torch.Tensor:
    """Temperature as a float32 [B, H, 1, 1] tensor (see `temperature_bh` for what it accepts)."""
    B, H = lambda_q.shape[0], lambda_q.shape[1]
    return temperature_bh(temperature, B, H, lambda_q.device).float()[..., None, None]


def check_tau_inputs(lambda_q: torch.Tensor, lambda_k: torch.Tensor, v: torch.Tensor, causal: bool) -> None:
    """Raise ShapeError unless lambda_q [B,H,Tq], lambda_k [B,H,Tk], v [B,H,Tk,D] fit together."""
    if lambda_q.dim() != 3 or lambda_k.dim() != 3 or v.dim() != 4:
        raise ShapeError(
            "tau_attention expects lambda_q [B,H,Tq], lambda_k [B,H,Tk], v [B,H,Tk,D]; got "
            f"{tuple(lambda_q.shape)}, {tuple(lambda_k.shape)}, {tuple(v.shape)}"
        )
    if lambda_k.shape != v.shape[:3] or lambda_q.shape[:2] != lambda_k.shape[:2]:
        raise ShapeError(
            f"shapes do not fit: lambda_q {tuple(lambda_q.shape)}, lambda_k {tuple(lambda_k.shape)}, "
            f"v {tuple(v.shape)} (batch and heads must agree, lambda_k must match v's first 3 dims)"
        )
    if causal and lambda_q.shape[2] > lambda_k.shape[2]:
        raise ShapeError(f"causal attention needs Tq <= Tk, got Tq={lambda_q.shape[2]}, Tk={lambda_k.shape[2]}")


def tau_attention_weights(lambda_q, lambda_k, *, temperature=1.0, causal: bool = True) -> torch.Tensor:
    """Attention weights [B, H, Tq, Tk] (rows sum to 1), computed in float32."""
    lq = lambda_q if lambda_q.dtype == torch.float32 else lambda_q.float()
    lk = lambda_k if lambda_k.dtype == torch.float32 else lambda_k.float()
    t = as_temperature(temperature, lq)
    logits = -(lq.unsqueeze(-1) - lk.unsqueeze(-2)).abs() / t  # [B,H,Tq,Tk]
    if causal and lq.shape[-1] > 1:  # one query aligned to the end of the keys sees them all
        mask = causal_mask(lq.shape[-1], lk.shape[-1], device=lq.device)
        logits = logits.masked_fill(~mask, float("-inf"))
    return torch.softmax(logits, dim=-1)


def tau_attention_dense(lambda_q, lambda_k, v, *, temperature=1.0, causal: bool = True) -> torch.Tensor:
    """Reference kernel: materialises the [B, H, Tq, Tk] weights. Output [B, H, Tq, D] in v's dtype."""
    if lambda_q.shape[-1] == 1 and not torch.is_grad_enabled():
        return _decode_step(lambda_q, lambda_k, v, temperature)
    att = tau_attention_weights(lambda_q, lambda_k, temperature=temperature, causal=causal)
    return (att if att.dtype == v.dtype else att.to(v.dtype)) @ v


def _decode_step(lambda_q, lambda_k, v, temperature) -> torch.Tensor:
    """One query per head without autograd (cached decoding): the same weights as
    `tau_attention_weights` in fewer, in-place operations, since per-call overhead is a good
    part of a decode step. lambda_q [B, H, 1], lambda_k [B, H, Tk], v [B, H, Tk, D] -> [B, H, 1, D]."""
    lq = lambda_q if lambda_q.dtype == torch.float32 else lambda_q.float()
    lk = lambda_k if lambda_k.dtype == torch.float32 else lambda_k.float()
    t = as_temperature(temperature, lq)[..., 0]  # [1|B, 1|H, 1]
    logits = (lk - lq).abs_().div_(t).neg_()  # [B, H, Tk]; the one query sees every key
    att = torch.softmax(logits, dim=-1).unsqueeze(-2)  # [B, H, 1, Tk]
    return (att if att.dtype == v.dtype else att.to(v.dtype)) @ v


def tau_attention(lambda_q, lambda_k, v, *, temperature=1.0, causal: bool = True, kernel: str = "auto"):
    """Tau attention: y_i = sum_j softmax_j(-|lambda_q,i - lambda_k,j| / temperature) v_j.

    Parameters
    ----------
    lambda_q : [B, H, Tq] query taumode scalars.
    lambda_k : [B, H, Tk] key taumode scalars (already repeated to H heads for GQA).
    v : [B, H, Tk, D] values.
    temperature : float or tensor of shape [H] or [B, H]; gradients flow into it.
    causal : mask keys after each query, aligned to the end of the keys (Tq <= Tk).
    kernel : "auto", "dense" or "fast".

    Returns
    -------
    [B, H, Tq, D] in v's dtype.
    """
    check_tau_inputs(lambda_q, lambda_k, v, causal)
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {KERNELS}, got {kernel!r}")
    if kernel == "auto":
        tensors = (lambda_q, lambda_k, v, temperature)
        needs_grad = torch.is_grad_enabled() and any(isinstance(x, torch.Tensor) and x.requires_grad for x in tensors)
        kernel = choose_kernel(lambda_q.shape[-1], lambda_k.shape[-1], v.device,
                               batch_heads=lambda_q.shape[0] * lambda_q.shape[1], needs_grad=needs_grad)
    if kernel == "fast":
        from .fast_tau import tau_attention_fast

        return tau_attention_fast(lambda_q, lambda_k, v, temperature=temperature, causal=causal)
    return tau_attention_dense(lambda_q, lambda_k, v, temperature=temperature, causal=causal)


# Where the fast kernel wins, per device type: at least `min_q` queries, and either Tq * Tk at
# least `fwd` / `grad` (inference / forward + backward), or the dense kernel's [B*H, Tq, Tk]
# float32 weights -- one copy, all heads together -- at least `fwd_bytes` / `grad_bytes`.  The
# fast kernel has a fixed cost per call (a few hundred small operations), so with few heads it
# needs longer sequences to win.  CPU, measured on a 2-core x86 machine in float32 (fast / dense
# time): forward, B*H = 1, D = 384: 1.6 at T = 256, ~1.0..1.4 at 512, 0.5 at 1024; B*H = 3,
# D = 32: 1.7 at 256, 0.8 at 512; B*H = 8, D = 64: 1.1 at 256, 0.5 at 512 -- about 1.5 MiB of
# weights.  Forward + backward, B*H = 8, D = 64: crossover near T = 320; B*H = 12, D = 32: 1.0 at
# 256; B*H = 48, D = 32: 0.6 at 128; B*H = 4, D = 128: 1.3 at 384, 0.8 at 512 -- about 3 MiB.
# With 64 queries against 4096 keys (chunked decoding) dense stays faster.  CUDA (H200, B*H = 8,
# D = 64, float32, `bench attention --device cuda`): the fast kernel is launch-bound at ~5 ms, so
# dense wins up to T = 4096 (fast / dense 2.2 forward, 1.8 forward + backward) and loses from
# T = 16384 (0.21 / 0.17); the crossover is taken at 8192.
FAST_AT = {
    "cpu": {"min_q": 128, "fwd_bytes": 3 << 19, "grad_bytes": 3 << 20},
    "cuda": {"min_q": 512, "fwd": 8192 * 8192, "grad": 8192 * 8192},
}
ASSUMED_BATCH_HEADS = 8  # for the byte rules when the caller does not give B*H
# Dense materialises [B*H, Tq, Tk] float32 weights several times over; beyond this many bytes for
# one copy the fast kernel is used whatever the length.
DENSE_MAX_BYTES = 1 << 30


def choose_kernel(Tq: int, Tk: int, device, batch_heads: int | None = None, needs_grad: bool = False) -> str:
    """The kernel `auto` uses for this shape: "fast" or "dense".

    Dense for short sequences and few queries (decode-like Tq = 1), where its few large
    operations beat the fast kernel's fixed overhead; fast past the crossover in FAST_AT (later
    when a backward pass follows, and the fewer heads the later), or when the dense weight
    matrix would take more than DENSE_MAX_BYTES.
    """
    at = FAST_AT.get(torch.device(device).type, FAST_AT["cuda"])
    dense_bytes = (ASSUMED_BATCH_HEADS if batch_heads is None else batch_heads) * Tq * Tk * 4  # one copy
    if batch_heads is not None and dense_bytes > DENSE_MAX_BYTES and Tq > 1:
        return "fast"
    if Tq < at["min_q"]:
        return "dense"
    kind = "grad" if needs_grad else "fwd"
    if kind in at and Tq * Tk >= at[kind]:
        return "fast"
    if f"{kind}_bytes" in at and dense_bytes >= at[f"{kind}_bytes"]:
        return "fast"
    return "dense"
