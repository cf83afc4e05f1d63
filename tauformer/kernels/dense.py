"""The dense tau attention kernel: the O(Tq * Tk) reference every other kernel is tested against.

Also the shared input handling (shape checks, causal mask, temperature as a [B, H] tensor) that
the fast and Triton kernels use.
"""

from __future__ import annotations

import torch

from ..errors import ShapeError


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
