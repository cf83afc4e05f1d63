"""Next-token predictions: per prompt position (the model's output) and per layer (logit lens).

`token_predictions(model, idx)` is one forward pass read out per position: the loss of the
actual next token and the top-k next tokens with their probabilities.

`logit_lens(model, idx)` reads the residual stream after the embedding and after every block
through the model's own output head (final RMSNorm, lm_head, logit soft-cap -- `read_out`), as if
the network stopped there: which next token each depth already predicts, how likely the actual
one is, and the first depth at which it becomes the most likely. The stream after the last block
read this way is exactly the model's logits. Streams are captured by forward hooks that are
always removed; the model is not edited.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import torch

from .attention import rms_norm
from .errors import ShapeError
from .runtime import eval_mode

TOP_K = 5


def read_out(model, x: torch.Tensor) -> torch.Tensor:
    """Logits (float32) of a residual stream x [..., C], computed as GPT.forward computes its output."""
    logits = model.lm_head(rms_norm(x)).float()  # [..., V]
    cap = model.config.softcap
    return cap * torch.tanh(logits / cap) if cap else logits


@contextmanager
def capture_streams(model):
    """Record the residual stream [B, T, C] after the embedding and after each block.

    Yields a list that a forward pass fills with n_layer + 1 detached tensors (depth 0 is the
    token embedding, depth i + 1 the output of block i); the last pass inside the block wins.
    Hooks are removed on exit, also on error.
    """
    streams: list[torch.Tensor] = []
    wte = model.transformer.wte

    def store(module, inputs, output):
        if module is wte:  # a new forward pass starts
            streams.clear()
        streams.append(output.detach())

    modules = [wte, *model.transformer.h]
    handles = []
    try:
        handles = [module.register_forward_hook(store) for module in modules]
        yield streams
    finally:
        for handle in handles:
            handle.remove()


def depth_labels(n_layer: int) -> list[str]:
    """Names of the lens depths: "embedding", then "layer 0" .. "layer n_layer-1" (after that block)."""
    return ["embedding"] + [f"layer {i}" for i in range(n_layer)]


def _as_batch(idx: torch.Tensor) -> torch.Tensor:
    if idx.dim() == 1:
        idx = idx.unsqueeze(0)  # [1, T]
    if idx.dim() != 2 or idx.shape[1] < 1:
        raise ShapeError(f"token ids must be [T] or [B, T] with T >= 1, got shape {tuple(idx.shape)}")
    return idx


def _target_stats(probs: torch.Tensor, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Probability and rank of each next token: probs [B, T, V], idx [B, T] -> two [B, T-1].

    rank = how many tokens are strictly more probable (0: the actual token is top-1; a tie for the top counts).
    """
    p = probs[:, :-1].gather(-1, idx[:, 1:, None])  # [B, T-1, 1]
    rank = (probs[:, :-1] > p).sum(-1)  # [B, T-1]
    return p.squeeze(-1), rank


@dataclass
class TokenPredictions:
    """The model's next-token predictions on idx [B, T] from one forward pass.

    loss [B, T-1]: -log p(idx[:, t+1] | idx[:, :t+1]) in nats; target_prob [B, T-1] that p.
    top_ids / top_probs [B, T, k]: the k most likely next tokens after position t, most likely first
    (the last position's are the model's guesses for the token after the prompt).
    """

    idx: torch.Tensor
    loss: torch.Tensor
    target_prob: torch.Tensor
    top_ids: torch.Tensor
    top_probs: torch.Tensor

    def mean_loss(self) -> float:
        return float(self.loss.mean()) if self.loss.numel() else float("nan")


@torch.no_grad()
def token_predictions(model, idx: torch.Tensor, *, k: int = TOP_K) -> TokenPredictions:
    """Per position of idx [B, T] (or [T]): the next token's loss and the top-k predictions."""
    idx = _as_batch(idx)
    with eval_mode(model):
        logits, _ = model(idx)  # [B, T, V]
    log_probs = torch.log_softmax(logits, dim=-1)  # [B, T, V]
    target_logp = log_probs[:, :-1].gather(-1, idx[:, 1:, None]).squeeze(-1)  # [B, T-1]
    top_logp, top_ids = log_probs.topk(min(k, logits.shape[-1]), dim=-1)  # [B, T, k]
    return TokenPredictions(idx=idx.detach().cpu(), loss=-target_logp, target_prob=target_logp.exp(),
                            top_ids=top_ids, top_probs=top_logp.exp())


@dataclass
class LogitLens:
    """Next-token predictions of the residual stream at each depth (see `depth_labels`) on idx [B, T].

    Depth d = 0 is the token embedding, d = i + 1 the output of block i; N = n_layer + 1 depths.
    top_ids / top_probs [N, B, T, k]: the k most likely next tokens per depth and position.
    target_prob / target_rank [N, B, T-1]: probability of the actual next token idx[:, t+1] and
    how many tokens are more probable. first_top1 [B, T-1]: the first depth at which the actual
    next token is the most likely one (-1 when no depth predicts it).
    """

    idx: torch.Tensor
    labels: list[str]
    top_ids: torch.Tensor
    top_probs: torch.Tensor
    target_prob: torch.Tensor
    target_rank: torch.Tensor
    first_top1: torch.Tensor


@torch.no_grad()
def residual_streams(model, idx: torch.Tensor) -> torch.Tensor:
    """The residual stream [N, B, T, C] at every depth (N = n_layer + 1) of one eval-mode pass on idx [B, T]."""
    idx = _as_batch(idx)
    with eval_mode(model), capture_streams(model) as streams:
        model(idx)
    return torch.stack(streams)  # N x [B, T, C] -> [N, B, T, C]


@torch.no_grad()
def lens_logits(model, idx: torch.Tensor) -> torch.Tensor:
    """Logits [N, B, T, V] of the residual stream at every depth, one forward pass."""
    return read_out(model, residual_streams(model, idx))


def first_depth(hit: torch.Tensor) -> torch.Tensor:
    """The first index along dim 0 where hit [N, ...] is true, -1 where it never is -> [...]."""
    N = hit.shape[0]
    depth = torch.arange(N, device=hit.device).view(N, *([1] * (hit.dim() - 1)))  # [N, 1, ...]
    return torch.where(hit, depth, N).amin(0).masked_fill(~hit.any(0), -1)


@torch.no_grad()
def logit_lens(model, idx: torch.Tensor, *, k: int = TOP_K) -> LogitLens:
    """The logit lens of idx [B, T] (or [T]): top-k per depth and position, and where the next token wins.

    One forward pass; the depths are read out one at a time, so at most one [B, T, V] distribution
    is held at once (a 1024-token prompt with a large vocabulary stays small).
    """
    idx = _as_batch(idx)
    per_depth = []
    for stream in residual_streams(model, idx):  # [B, T, C]
        probs = torch.softmax(read_out(model, stream), dim=-1)  # [B, T, V]
        top_probs, top_ids = probs.topk(min(k, probs.shape[-1]), dim=-1)  # [B, T, k]
        per_depth.append((top_ids, top_probs, *_target_stats(probs, idx)))
    top_ids, top_probs, target_prob, target_rank = (torch.stack(parts) for parts in zip(*per_depth))  # [N, ...]
    return LogitLens(idx=idx.detach().cpu(), labels=depth_labels(model.config.n_layer), top_ids=top_ids,
                     top_probs=top_probs, target_prob=target_prob, target_rank=target_rank,
                     first_top1=first_depth(target_rank == 0))
