"""Causal self-attention: the dot-product baseline and taumode attention (SPEC section 3).

Both share everything but the scoring: bias-free c_q / c_k / c_v / c_proj, clamp to [-5, 5],
RoPE (half-split), parameter-free RMS QK-norm, GQA via n_kv_head. Dot scores q k^T / sqrt(D);
tau compresses each q and k to lambda and scores -|lambda_q - lambda_k| / temperature.
Identity hook points (hook_q, hook_k, hook_v, hook_lambda_q, hook_lambda_k) let a probe read
the intermediate tensors without changing the forward pass.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .config import ModelConfig
from .kernels import causal_mask, tau_attention
from .kernels.triton_tau import triton_available
from .taumode import Taumode

QKV_CLAMP = 5.0
NORM_EPS = 1e-6


class HookPoint(nn.Module):
    """Identity module; forward hooks registered on it see the tensor passing through."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def rms_norm(x: torch.Tensor, eps: float = NORM_EPS) -> torch.Tensor:
    """Parameter-free RMSNorm over the last dimension."""
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)


def rotary_tables(start: int, T: int, D: int, base: float, device=None):
    """cos, sin tables [T, D/2] for positions start .. start+T-1 (float32)."""
    inv_freq = 1.0 / (base ** (torch.arange(0, D, 2, dtype=torch.float32, device=device) / D))  # [D/2]
    pos = torch.arange(start, start + T, dtype=torch.float32, device=device)  # [T]
    angles = torch.outer(pos, inv_freq)  # [T, D/2]
    return angles.cos(), angles.sin()


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """RoPE in the half-split layout: x [B, H, T, D], cos / sin [T, D/2]."""
    d = x.shape[-1] // 2
    x1, x2 = x[..., :d], x[..., d:]
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    return torch.cat([x1 * cos + x2 * sin, x2 * cos - x1 * sin], dim=-1)


def repeat_kv(x: torch.Tensor, n_rep: int) -> torch.Tensor:
    """[B, H_kv, ...] -> [B, H_kv * n_rep, ...]: query head h reads key/value head h // n_rep."""
    return x if n_rep == 1 else x.repeat_interleave(n_rep, dim=1)


class CausalSelfAttention(nn.Module):
    """Projections, RoPE and QK-norm shared by both variants; subclasses define `attend`."""

    def __init__(self, config: ModelConfig, layer_idx: int):
        super().__init__()
        self.layer_idx = layer_idx
        self.n_head, self.n_kv_head = config.n_head, config.n_kv_head
        self.head_dim = config.head_dim
        C, D = config.n_embd, config.head_dim
        self.c_q = nn.Linear(C, self.n_head * D, bias=False)
        self.c_k = nn.Linear(C, self.n_kv_head * D, bias=False)
        self.c_v = nn.Linear(C, self.n_kv_head * D, bias=False)
        self.c_proj = nn.Linear(C, C, bias=False)
        self.hook_q, self.hook_k, self.hook_v = HookPoint(), HookPoint(), HookPoint()

    def forward(self, x, cos, sin, cache=None, laplacian=None):
        q, k, v = self.project(x, cos, sin)
        y = self.attend(q, k, v, cache, laplacian)  # [B,H,T,D]
        return self.merge(y)

    def project(self, x, cos, sin):
        """q [B,H,T,D], k and v [B,Hkv,T,D] of x [B,T,C]: projections, clamp, RoPE, QK-norm, hooks."""
        B, T, C = x.shape
        D = self.head_dim
        q = self.c_q(x).clamp(-QKV_CLAMP, QKV_CLAMP).view(B, T, self.n_head, D).transpose(1, 2)  # [B,H,T,D]
        k = self.c_k(x).clamp(-QKV_CLAMP, QKV_CLAMP).view(B, T, self.n_kv_head, D).transpose(1, 2)  # [B,Hkv,T,D]
        v = self.c_v(x).clamp(-QKV_CLAMP, QKV_CLAMP).view(B, T, self.n_kv_head, D).transpose(1, 2)  # [B,Hkv,T,D]
        q = rms_norm(apply_rotary(q, cos, sin))
        k = rms_norm(apply_rotary(k, cos, sin))
        return self.hook_q(q), self.hook_k(k), self.hook_v(v)

    def merge(self, y):
        """Heads of y [B,H,T,D] merged and projected back to [B,T,C]."""
        B, H, T, D = y.shape
        return self.c_proj(y.transpose(1, 2).reshape(B, T, H * D))

    def attend(self, q, k, v, cache, laplacian):
        raise NotImplementedError


class DotAttention(CausalSelfAttention):
    """The baseline: softmax(q k^T / sqrt(D)) v, causal; caches (K, V)."""

    def attend(self, q, k, v, cache, laplacian):
        if cache is not None:
            k, v = cache.update(self.layer_idx, k, v)  # [B,Hkv,Tk,D] with all cached positions
        n_rep = self.n_head // self.n_kv_head
        k, v = repeat_kv(k, n_rep), repeat_kv(v, n_rep)
        Tq, Tk = q.shape[2], k.shape[2]
        if Tq == Tk:
            return F.scaled_dot_product_attention(q, k, v, is_causal=True)
        if Tq == 1:  # one query aligned to the end of the keys sees them all
            return F.scaled_dot_product_attention(q, k, v)
        mask = causal_mask(Tq, Tk, device=q.device)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)


class TauAttention(CausalSelfAttention):
    """Taumode attention: softmax(-|lambda_q - lambda_k| / temperature) v, causal; caches (V, lambda_k)."""

    def __init__(self, config: ModelConfig, layer_idx: int):
        super().__init__(config, layer_idx)
        self.kernel = config.tau_kernel
        self.taumode = Taumode(config.tau_mode, config.tau, percentile=config.tau_percentile,
                               momentum=config.calibration_momentum)
        self.fixed_temperature = float(config.temperature)
        if config.learn_temperature:
            self.log_temperature = nn.Parameter(torch.full((self.n_head,), math.log(config.temperature)))
        else:
            self.log_temperature = None
        self.hook_lambda_q, self.hook_lambda_k = HookPoint(), HookPoint()

    def temperature(self) -> torch.Tensor:
        """Per-head temperature [H] (a learnable exp(log_temperature) or the fixed value)."""
        if self.log_temperature is not None:
            return self.log_temperature.exp()
        return torch.full((self.n_head,), self.fixed_temperature, device=self.c_q.weight.device)

    def attend(self, q, k, v, cache, laplacian):
        lambda_q, lambda_k = self.taumode(q, k, laplacian)  # [B,H,T], [B,Hkv,T]
        lambda_q, lambda_k = self.hook_lambda_q(lambda_q), self.hook_lambda_k(lambda_k)
        if cache is not None:
            lambda_k, v = cache.update(self.layer_idx, lambda_k, v)  # only (lambda_k, V) are kept
        # lambda_k, v stay at H_kv heads: the kernels read them by index (GQA).  A model configured
        # for the Triton kernel (e.g. trained on a GPU) still runs where Triton cannot, via "auto".
        kernel = self.kernel
        if kernel == "triton" and not triton_available(v.device):
            kernel = "auto"
        return tau_attention(lambda_q, lambda_k, v, temperature=self.temperature(), causal=True, kernel=kernel)


def build_attention(config: ModelConfig, layer_idx: int) -> CausalSelfAttention:
    """The attention module for config.attention ("tau" or "dot")."""
    return TauAttention(config, layer_idx) if config.attention == "tau" else DotAttention(config, layer_idx)
