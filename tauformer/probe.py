"""Read what attention does without changing it.

`capture(model)` registers forward hooks on the identity hook points of every attention layer
inside a context manager and always removes them, also on error; logits are identical with and
without it. Attention weights are recomputed outside the model from the captured q, k (dot) or
lambda_q, lambda_k (tau), so no kernel ever has to materialise them. `run_probe` does all of it
for one batch of tokens and returns a `ProbeResult`, optionally with heads ablated (the ablation
hooks live in `ablation.py`, with the same guaranteed removal).
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from .ablation import ablate
from .attention import TauAttention, repeat_kv
from .kernels import causal_mask, tau_attention_weights
from .runtime import eval_mode
from .taumode import rayleigh_energy

CAPTURED = ("q", "k", "v", "lambda_q", "lambda_k")


@dataclass
class LayerCapture:
    """Detached tensors of one layer: q [B,H,T,D], k / v [B,H_kv,T,D], lambda_q [B,H,T], lambda_k [B,H_kv,T]."""

    q: torch.Tensor | None = None
    k: torch.Tensor | None = None
    v: torch.Tensor | None = None
    lambda_q: torch.Tensor | None = None
    lambda_k: torch.Tensor | None = None


@dataclass
class Capture:
    """Everything captured during one `capture` block, one LayerCapture per layer."""

    layers: list[LayerCapture] = field(default_factory=list)


@contextmanager
def capture(model):
    """Record q, k, v (and lambda_q, lambda_k for tau) of every layer while the block runs.

    The last forward pass inside the block wins. Hooks are removed when the block exits,
    whatever happens inside it.
    """
    blocks = model.transformer.h
    result = Capture(layers=[LayerCapture() for _ in blocks])
    handles = []
    try:
        for layer_idx, block in enumerate(blocks):
            for name in CAPTURED:
                hook_point = getattr(block.attn, f"hook_{name}", None)
                if hook_point is not None:
                    handles.append(hook_point.register_forward_hook(_store(result.layers[layer_idx], name)))
        yield result
    finally:
        for handle in handles:
            handle.remove()


def _store(layer: LayerCapture, name: str):
    def hook(module, inputs, output):
        setattr(layer, name, output.detach())

    return hook


def attention_weights(model, layer: LayerCapture, layer_idx: int) -> torch.Tensor:
    """Attention weights [B, H, Tq, Tk] of one layer from its captured tensors (float32, rows sum to 1)."""
    attn = model.transformer.h[layer_idx].attn
    n_rep = attn.n_head // attn.n_kv_head
    if isinstance(attn, TauAttention):
        lambda_k = repeat_kv(layer.lambda_k, n_rep)
        return tau_attention_weights(layer.lambda_q, lambda_k, temperature=attn.temperature().detach(), causal=True)
    q, k = layer.q.float(), repeat_kv(layer.k, n_rep).float()
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])  # [B,H,Tq,Tk]
    mask = causal_mask(q.shape[2], k.shape[2], device=q.device)
    return torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)


def entropy_fraction(weights: torch.Tensor) -> torch.Tensor:
    """Attention entropy as a fraction of the uniform entropy over the visible keys -> [B, H].

    weights [B, H, Tq, Tk] (causal, aligned to the end). Queries that see a single key (where
    every distribution is uniform and the fraction is 0/0) are left out of the mean.
    """
    Tq, Tk = weights.shape[-2:]
    visible = torch.arange(Tk - Tq + 1, Tk + 1, device=weights.device, dtype=torch.float32)  # [Tq]
    p = weights.float().clamp_min(1e-30)
    entropy = -(weights.float() * p.log()).sum(-1)  # [B,H,Tq]
    keep = visible > 1
    if not keep.any():
        return torch.ones(weights.shape[:2], device=weights.device)
    return (entropy[..., keep] / visible[keep].log()).mean(-1)


def _quantiles(x: torch.Tensor, qs=(0.05, 0.95)) -> list[torch.Tensor]:
    return [torch.quantile(x, q, dim=-1) for q in qs]


@torch.no_grad()
def head_statistics(model, idx: torch.Tensor) -> dict:
    """Per layer and head: lambda_q / lambda_k mean, std, p05, p95 (tau only) and the entropy fraction.

    Runs one eval-mode forward pass on idx [B, T]; values are nested lists [layer][head].
    """
    with eval_mode(model), capture(model) as cap:
        model(idx)
    stats: dict = {"entropy": []}
    is_tau = model.config.attention == "tau"
    if is_tau:
        stats.update({name: {"mean": [], "std": [], "p05": [], "p95": []} for name in ("lambda_q", "lambda_k")})
    n_rep = model.config.n_head // model.config.n_kv_head
    for layer_idx, layer in enumerate(cap.layers):
        weights = attention_weights(model, layer, layer_idx)
        stats["entropy"].append(entropy_fraction(weights).mean(0).tolist())
        if not is_tau:
            continue
        for name in ("lambda_q", "lambda_k"):
            lam = getattr(layer, name)
            lam = repeat_kv(lam, n_rep) if name == "lambda_k" else lam  # [B,H,T]
            per_head = lam.transpose(0, 1).reshape(lam.shape[1], -1).float()  # [H, B*T]
            p05, p95 = _quantiles(per_head)
            stats[name]["mean"].append(per_head.mean(-1).tolist())
            stats[name]["std"].append(per_head.std(-1).tolist())
            stats[name]["p05"].append(p05.tolist())
            stats[name]["p95"].append(p95.tolist())
    return stats


class EnergyMeans:
    """Running mean of the Rayleigh energy E(x) = x^T L x / (x^T x + eps) of q and of k, per layer
    and head, over the forward passes of a tau model added to it (SPEC section 2).

    The energy is what calibrated tau tracks (its running median) and what lambda bounds, so its
    mean over training shows how the heads' vectors move on the Laplacian. k's energy is reported
    per query head (repeated for GQA, as the lambda_k statistics are).
    """

    def __init__(self):
        self.sums: torch.Tensor | None = None  # [2, L, H] float64: q, k
        self.count = 0

    def add(self, model, cap: Capture) -> None:
        """Add the vectors one `capture` block recorded (a tau model's forward pass)."""
        laplacian = model.laplacian
        n_rep = model.config.n_head // model.config.n_kv_head
        per_layer = []
        for block, layer in zip(model.transformer.h, cap.layers):
            eps = block.attn.taumode.eps
            e_q = rayleigh_energy(layer.q, laplacian, eps=eps)  # [B,H,T]
            e_k = repeat_kv(rayleigh_energy(layer.k, laplacian, eps=eps), n_rep)  # [B,H_kv,T] -> [B,H,T]
            per_layer.append(torch.stack([e_q, e_k]).double().sum(dim=(1, 3)))  # [2, H]
        sums = torch.stack(per_layer, dim=1)  # [2, L, H]
        self.sums = sums if self.sums is None else self.sums + sums
        self.count += cap.layers[0].q.shape[0] * cap.layers[0].q.shape[2]  # B * T vectors per head

    def result(self) -> dict:
        """{"energy_q": [layer][head], "energy_k": [layer][head]} means (empty before any add)."""
        if self.sums is None:
            return {}
        means = (self.sums / self.count).tolist()
        return {"energy_q": means[0], "energy_k": means[1]}


@torch.no_grad()
def head_energies(model, batches) -> dict:
    """Mean Rayleigh energy of q and k per layer and head of a tau model over token batches.

    ``batches``: tensors idx [B, T] or (x, y) pairs (x is used). One eval-mode forward pass per
    batch; returns EnergyMeans.result() ({} for a dot-product model).
    """
    if model.config.attention != "tau":
        return {}
    meter = EnergyMeans()
    for batch in batches:
        idx = batch[0] if isinstance(batch, (tuple, list)) else batch
        with eval_mode(model), capture(model) as cap:
            model(idx)
        meter.add(model, cap)
    return meter.result()


@dataclass
class ProbeResult:
    """Everything the workbench shows about one forward pass on idx [B, T].

    Per layer (stacked along the first axis): q [L,B,H,T,D], k [L,B,H_kv,T,D], attention weights
    [L,B,H,T,T] (float32, rows sum to 1). A tau model also has lambda_q [L,B,H,T], lambda_k
    [L,B,H_kv,T], the tau each was bounded with (tau_q / tau_k, same shapes) and the temperature
    [L,H]; for a dot model those are None. logits [B,T,V] are the model's own output;
    token_loss [B,T-1] is -log p(idx[:, t+1] | idx[:, :t+1]) in nats.
    """

    kind: str
    idx: torch.Tensor
    q: torch.Tensor
    k: torch.Tensor
    weights: torch.Tensor
    logits: torch.Tensor
    token_loss: torch.Tensor
    lambda_q: torch.Tensor | None = None
    lambda_k: torch.Tensor | None = None
    tau_q: torch.Tensor | None = None
    tau_k: torch.Tensor | None = None
    temperature: torch.Tensor | None = None

    @property
    def n_rep(self) -> int:
        """Query heads per key head (GQA): lambda_k / k of head h are at index h // n_rep."""
        return self.q.shape[2] // self.k.shape[2]

    def entropy(self) -> torch.Tensor:
        """Attention entropy as a fraction of uniform, per layer and head -> [L, B, H]."""
        return torch.stack([entropy_fraction(w) for w in self.weights])

    def mean_loss(self) -> float:
        return float(self.token_loss.mean()) if self.token_loss.numel() else float("nan")


@torch.no_grad()
def run_probe(model, idx: torch.Tensor, *, ablations=()) -> ProbeResult:
    """One eval-mode forward pass on idx [B, T] (or [T]) with every layer's internals captured.

    The model is left as it was (train / eval mode restored, hooks removed even on error), and
    its logits are exactly those of a plain forward pass -- or, with ``ablations`` (Ablation
    objects, see `ablation.ablate`), of the pass with those heads silenced.
    """
    if idx.dim() == 1:
        idx = idx.unsqueeze(0)  # [1, T]
    with eval_mode(model), ablate(model, ablations), capture(model) as cap:
        logits, _ = model(idx)
    blocks = model.transformer.h
    weights = torch.stack([attention_weights(model, layer, i) for i, layer in enumerate(cap.layers)])
    token_loss = F.cross_entropy(logits[:, :-1].transpose(1, 2), idx[:, 1:], reduction="none")  # [B, T-1]
    result = ProbeResult(
        kind=model.config.attention, idx=idx.detach().cpu(),
        q=torch.stack([layer.q for layer in cap.layers]).float(),
        k=torch.stack([layer.k for layer in cap.layers]).float(),
        weights=weights, logits=logits, token_loss=token_loss,
    )
    if model.config.attention == "tau":
        result.lambda_q = torch.stack([layer.lambda_q for layer in cap.layers]).float()
        result.lambda_k = torch.stack([layer.lambda_k for layer in cap.layers]).float()
        taus = [block.attn.taumode.taus(layer.q, layer.k) for block, layer in zip(blocks, cap.layers)]
        result.tau_q = torch.stack([torch.broadcast_to(tq, lq.shape) for (tq, _), lq
                                    in zip(taus, result.lambda_q)]).float()
        result.tau_k = torch.stack([torch.broadcast_to(tk, lk.shape) for (_, tk), lk
                                    in zip(taus, result.lambda_k)]).float()
        result.temperature = torch.stack([block.attn.temperature().detach() for block in blocks]).float()
    return result
