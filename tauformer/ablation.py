"""Head ablation: how much does the loss rise when one attention head (or layer) is silenced?

A head's output is its slice of the c_proj input [B, T, H*D] (the per-head attention result
before the heads are mixed). `ablate(model, ablations)` registers forward pre-hooks on the
c_proj of the layers concerned that replace those slices by zero ("zero") or by the head's mean
output over the batch's positions ("mean"), and always removes them, also on error; the model
itself is never edited, and with nothing to ablate its logits are bit-identical to a plain pass.
While registered, the hooks act on every forward pass of the model, so callers that share one
model between threads hold their lock around the block (as they do for the probe).

`ablation_sweep(model, batches)` measures the loss change of every (layer, head) and of every
whole layer on fixed batches. The ablations share forward passes: before the block of layer l
the batch grows by one copy of the unablated rows per ablation at layer l, and that layer's hook
silences each copy's heads, so one pass answers many ablations and the layers below each one
are computed once. This is exact because nothing in an eval-mode forward mixes the rows of a
batch (the tau of every tau mode is chosen per vector, calibration only updates in training
mode, and the rotary tables and the Laplacian do not depend on the batch).
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .errors import ConfigError
from .runtime import eval_mode

ABLATION_MODES = ("zero", "mean")
MAX_LOGITS = 2**25  # logits elements (128 MiB of float32) one stacked forward pass may produce
SWEEP_BATCHES = (2, 4)  # validation batches x rows (block_size tokens each): both demo models swept in ~1.3 s


@dataclass(frozen=True)
class Ablation:
    """Silence head `head` of layer `layer` (every head of the layer when head is None).

    mode "zero" replaces the head's output by 0; "mean" by that head's mean output over all
    positions of the batch it runs on (so the head still adds its average, but no information
    about the token at hand).
    """

    layer: int
    head: int | None = None
    mode: str = "zero"

    def __post_init__(self):
        if self.mode not in ABLATION_MODES:
            raise ConfigError(f"ablation mode must be one of {ABLATION_MODES}, got {self.mode!r}")

    def heads(self, n_head: int) -> range:
        """The head indices this ablation silences."""
        return range(n_head) if self.head is None else range(self.head, self.head + 1)


def check_ablation(model, ablation: Ablation) -> None:
    """Raise ConfigError when the ablation names a layer or head the model does not have."""
    L, H = model.config.n_layer, model.config.n_head
    if not 0 <= ablation.layer < L:
        raise ConfigError(f"ablation layer {ablation.layer} is out of range: the model has {L} layers")
    if ablation.head is not None and not 0 <= ablation.head < H:
        raise ConfigError(f"ablation head {ablation.head} is out of range: the model has {H} heads per layer")


@contextmanager
def ablate(model, ablations):
    """Apply `ablations` (an Ablation or an iterable of them) to every forward pass in the block.

    The hooks are removed when the block exits, whatever happens inside it.
    """
    if isinstance(ablations, Ablation):
        ablations = [ablations]
    per_layer: dict[int, list[tuple[int, int | None, Ablation]]] = {}
    for ablation in ablations:
        check_ablation(model, ablation)
        per_layer.setdefault(ablation.layer, []).append((0, None, ablation))  # every row of the batch
    with _hooks(model, per_layer, {}):
        yield model


@contextmanager
def branch_ablations(model, rows: int, ablations):
    """Answer several single ablations with one forward pass on a batch of `rows` rows.

    Just before each block that has ablations, copies of the unablated rows (the first `rows`)
    are appended to the batch, one per ablation of that layer, and the layer's c_proj hook
    silences each copy's heads; layers below an ablation are computed once for all of them.
    The pass's output holds the unablated rows, then one group of `rows` rows per ablation in
    the given order, which must go by layer. Hooks are removed on exit, also on error.
    """
    ablations = list(ablations)
    if any(a.layer > b.layer for a, b in zip(ablations, ablations[1:])):
        raise ConfigError("branch_ablations needs its ablations ordered by layer")
    per_layer: dict[int, list[tuple[int, int | None, Ablation]]] = {}
    for g, ablation in enumerate(ablations, start=1):
        check_ablation(model, ablation)
        per_layer.setdefault(ablation.layer, []).append((g * rows, rows, ablation))
    copies = {layer: len(items) for layer, items in per_layer.items()}
    with _hooks(model, per_layer, {layer: (rows, n) for layer, n in copies.items()}):
        yield model


@contextmanager
def _hooks(model, slices: dict, branches: dict):
    """Register the c_proj slice hooks and block branch hooks per layer; always remove them."""
    handles = []
    try:
        for layer, (rows, copies) in branches.items():
            block = model.transformer.h[layer]
            handles.append(block.register_forward_pre_hook(_branch_hook(rows, copies)))
        for layer, items in slices.items():
            attn = model.transformer.h[layer].attn
            handles.append(attn.c_proj.register_forward_pre_hook(_slice_hook(items, attn.n_head, attn.head_dim)))
        yield
    finally:
        for handle in handles:
            handle.remove()


def _branch_hook(rows: int, copies: int):
    """A block pre-hook appending `copies` copies of the first `rows` rows of its input x."""

    def hook(module, args):
        x, *rest = args  # x [R, T, C]
        x = torch.cat([x, x[:rows].repeat(copies, 1, 1)])  # [R + copies * rows, T, C]
        return (x, *rest)

    return hook


def _slice_hook(items: list[tuple[int, int | None, Ablation]], n_head: int, head_dim: int):
    """A c_proj pre-hook that silences heads in row ranges (first row, row count or None: to the end)."""

    def hook(module, inputs):
        (y,) = inputs  # [B, T, H*D]
        B, T, _ = y.shape
        y = y.clone().view(B, T, n_head, head_dim)  # [B, T, H, D]
        for first, count, ablation in items:
            rows = slice(first, B if count is None else first + count)
            for h in ablation.heads(n_head):
                part = y[rows, :, h]  # [rows, T, D], a view
                if ablation.mode == "zero":
                    part.zero_()
                else:
                    part.copy_(part.mean(dim=(0, 1), keepdim=True).expand_as(part))
        return (y.view(B, T, n_head * head_dim),)

    return hook


@dataclass
class AblationSweep:
    """Loss changes (ablated minus unablated, nats / token) on fixed batches.

    head_delta [L, H]: one head silenced; layer_delta [L]: every head of the layer silenced.
    base_loss is the unablated mean loss over the same n_tokens target tokens.
    """

    kind: str
    mode: str
    base_loss: float
    head_delta: torch.Tensor
    layer_delta: torch.Tensor
    n_tokens: int


def sweep_ablations(model, mode: str = "zero") -> list[Ablation]:
    """Every single-head ablation (layer-major), then every whole-layer ablation."""
    L, H = model.config.n_layer, model.config.n_head
    heads = [Ablation(layer, head, mode) for layer in range(L) for head in range(H)]
    return heads + [Ablation(layer, None, mode) for layer in range(L)]


@torch.no_grad()
def ablation_losses(model, batches, ablations, *, max_logits: int = MAX_LOGITS) -> tuple[torch.Tensor, float, int]:
    """Mean loss (nats / token) with each ablation in turn, the unablated loss, and the token count.

    batches are (x, y) pairs [B, T] (targets -1 ignored). The ablations of a batch share forward
    passes (`branch_ablations`), as many per pass as keep its logits under max_logits elements.
    Returns (losses [len(ablations)], base_loss, n_tokens).
    """
    if not batches:
        raise ConfigError("an ablation sweep needs at least one batch")
    ablations = list(ablations)
    order = sorted(range(len(ablations)), key=lambda i: ablations[i].layer)
    sums = torch.zeros(len(ablations), dtype=torch.float64)
    base, n_tokens = 0.0, 0
    with eval_mode(model):
        for x, y in batches:
            B, T = x.shape
            per_pass = max(1, max_logits // (B * T * model.config.vocab_size) - 1)  # ablations beside the base
            for start in range(0, max(1, len(order)), per_pass):
                chunk = order[start : start + per_pass]
                with branch_ablations(model, B, [ablations[i] for i in chunk]):
                    logits, _ = model(x)  # [(1 + len(chunk)) * B, T, V]
                G = logits.shape[0] // B
                loss = F.cross_entropy(logits.transpose(1, 2), y.repeat(G, 1), ignore_index=-1,
                                       reduction="none").view(G, B * T).double().sum(-1)  # [G]
                if start == 0:
                    base += float(loss[0])
                sums[chunk] += loss[1:]
            n_tokens += int((y != -1).sum())
    if n_tokens == 0:
        raise ConfigError("the ablation batches have no target tokens (all targets are -1)")
    return (sums / n_tokens).float(), base / n_tokens, n_tokens


def ablation_sweep(model, batches, *, mode: str = "zero", max_logits: int = MAX_LOGITS) -> AblationSweep:
    """The loss change of silencing each head, and each whole layer, of a tau or dot model.

    batches: a small fixed list of (x, y) validation batches [B, T]; the model is left as it was
    (mode restored, no hooks left).
    """
    if mode not in ABLATION_MODES:
        raise ConfigError(f"ablation mode must be one of {ABLATION_MODES}, got {mode!r}")
    L, H = model.config.n_layer, model.config.n_head
    losses, base, n_tokens = ablation_losses(model, batches, sweep_ablations(model, mode), max_logits=max_logits)
    delta = losses - base
    return AblationSweep(kind=model.config.attention, mode=mode, base_loss=base,
                         head_delta=delta[: L * H].view(L, H), layer_delta=delta[L * H :], n_tokens=n_tokens)
