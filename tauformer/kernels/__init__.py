"""Tau attention kernels: softmax over -|lambda_q - lambda_k| / temperature, then weights @ v.

`tau_attention` is the public entry point; it validates shapes and dispatches to a kernel:

- dense.py: the O(Tq * Tk) reference (materialises the weights), and the shared input checks;
- fast.py + sums.py: exact O(T log T * D) prefix sums over lambda-sorted keys (SPEC section 6);
- triton_tau.py (+ triton_decode.py): fused flash-style Triton kernels (SPEC section 6b), on
  CUDA, or on CPU tensors under Triton's interpreter (TRITON_INTERPRET=1).

Keys and values may have fewer heads than the queries (GQA): query head h reads key / value head
h // (H / H_kv).  The Triton kernel reads them by index; the others get them repeated.
"""

from __future__ import annotations

import torch

from ..config import TAU_KERNELS as KERNELS
from ..errors import ShapeError
from .dense import (  # noqa: F401  (the public names of the package)
    as_temperature,
    causal_mask,
    check_tau_inputs,
    tau_attention_dense,
    tau_attention_weights,
    temperature_bh,
)


def check_gqa_inputs(lambda_q, lambda_k, v, causal: bool) -> int:
    """Validate shapes allowing H_kv | H key / value heads; returns n_rep = H / H_kv.

    Shapes only (no tensor operation: this runs once per layer and decode step)."""
    if lambda_q.dim() == 3 and lambda_k.dim() == 3 and v.dim() == 4 and lambda_q.shape[0] == lambda_k.shape[0]:
        H, H_kv = lambda_q.shape[1], lambda_k.shape[1]
        if H_kv and H != H_kv and H % H_kv == 0 and lambda_k.shape == v.shape[:3]:
            if causal and lambda_q.shape[2] > lambda_k.shape[2]:
                raise ShapeError(f"causal attention needs Tq <= Tk, got Tq={lambda_q.shape[2]}, Tk={lambda_k.shape[2]}")
            return H // H_kv
    check_tau_inputs(lambda_q, lambda_k, v, causal)
    return 1


def tau_attention(lambda_q, lambda_k, v, *, temperature=1.0, causal: bool = True, kernel: str = "auto"):
    """Tau attention: y_i = sum_j softmax_j(-|lambda_q,i - lambda_k,j| / temperature) v_j.

    Parameters
    ----------
    lambda_q : [B, H, Tq] query taumode scalars.
    lambda_k : [B, H_kv, Tk] key taumode scalars, H_kv dividing H (GQA) or equal to it.
    v : [B, H_kv, Tk, D] values.
    temperature : float or tensor of shape [H] or [B, H]; gradients flow into it.
    causal : mask keys after each query, aligned to the end of the keys (Tq <= Tk).
    kernel : "auto", "dense", "fast" or "triton".

    Returns
    -------
    [B, H, Tq, D] in v's dtype.
    """
    n_rep = check_gqa_inputs(lambda_q, lambda_k, v, causal)
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {KERNELS}, got {kernel!r}")
    if kernel == "auto":
        tensors = (lambda_q, lambda_k, v, temperature)
        needs_grad = torch.is_grad_enabled() and any(isinstance(x, torch.Tensor) and x.requires_grad for x in tensors)
        kernel = choose_kernel(lambda_q.shape[-1], lambda_k.shape[-1], v.device,
                               batch_heads=lambda_q.shape[0] * lambda_q.shape[1], needs_grad=needs_grad)
    if kernel == "triton":
        from .triton_tau import tau_attention_triton

        return tau_attention_triton(lambda_q, lambda_k, v, temperature=temperature, causal=causal)
    if n_rep > 1:  # [B, H_kv, ...] -> [B, H, ...]: query head h reads key / value head h // n_rep
        lambda_k, v = lambda_k.repeat_interleave(n_rep, dim=1), v.repeat_interleave(n_rep, dim=1)
    if kernel == "fast":
        from .fast import tau_attention_fast

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
# T = 16384 (0.21 / 0.17); the crossover is taken at 8192.  These rules apply on CUDA only when
# Triton is missing: with it, `auto` takes the fused Triton kernel for every CUDA shape.
FAST_AT = {
    "cpu": {"min_q": 128, "fwd_bytes": 3 << 19, "grad_bytes": 3 << 20},
    "cuda": {"min_q": 512, "fwd": 8192 * 8192, "grad": 8192 * 8192},
}
ASSUMED_BATCH_HEADS = 8  # for the byte rules when the caller does not give B*H
# Dense materialises [B*H, Tq, Tk] float32 weights several times over; beyond this many bytes for
# one copy the fast kernel is used whatever the length.
DENSE_MAX_BYTES = 1 << 30


def choose_kernel(Tq: int, Tk: int, device, batch_heads: int | None = None, needs_grad: bool = False,
                  use_triton: bool | None = None) -> str:
    """The kernel `auto` uses for this shape: "triton", "fast" or "dense".

    On CUDA with Triton installed, always "triton" (fused: no weight matrix, few launches).
    Otherwise dense for short sequences and few queries (decode-like Tq = 1), where its few large
    operations beat the fast kernel's fixed overhead; fast past the crossover in FAST_AT (later
    when a backward pass follows, and the fewer heads the later), or when the dense weight
    matrix would take more than DENSE_MAX_BYTES.  CPU choices never depend on Triton.
    ``use_triton`` (None: whether Triton can run here) is for asking about the other case.
    """
    kind_of_device = torch.device(device).type
    if kind_of_device == "cuda":
        if use_triton is None:
            from .triton_tau import triton_available

            use_triton = triton_available()
        if use_triton:
            return "triton"
    at = FAST_AT.get(kind_of_device, FAST_AT["cuda"])
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


__all__ = ["KERNELS", "ShapeError", "as_temperature", "causal_mask", "check_gqa_inputs", "check_tau_inputs",
           "choose_kernel", "tau_attention", "tau_attention_dense", "tau_attention_weights", "temperature_bh"]
