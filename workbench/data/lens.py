"""Logit lens and per-token loss of a checkpoint on a prompt, as numpy, cached per (checkpoint, prompt).

`lens_view(probes, run, step, prompt)` reads the residual stream after the embedding and after
every block through the model's own output head (`tauformer.lens.logit_lens`) and adds the
model's per-token loss and top-5 next tokens (`token_predictions`), labelled with the run's
tokenizer. `lens_pair` pairs it with the compared run's (same tokenizer needed: positions must
line up). `formation_depth` and `hardest_tokens` summarise them for the page.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from tauformer.errors import ConfigError
from tauformer.lens import logit_lens, token_predictions

from .cache import content_key

LENS_TOP_K = 5


@dataclass
class LensView:
    """One checkpoint's logit lens and next-token predictions on a prompt of T tokens (numpy).

    N = n_layer + 1 depths named by ``depths`` ("embedding", "layer 0", ...). Position t predicts
    token t + 1. target_prob / target_rank [N, T-1]: probability of the actual next token at each
    depth and how many tokens are more probable; first_top1 [T-1]: first depth where it is top-1
    (-1: never). top_tokens [N][T][k] labels with top_probs [N, T, k]. loss [T-1] (nats) and
    pred_tokens [T][5] / pred_probs [T, 5]: the model's own output (the lens's last depth).
    """

    run: str
    step: int
    kind: str
    ids: np.ndarray
    tokens: list[str]
    depths: list[str]
    target_prob: np.ndarray
    target_rank: np.ndarray
    first_top1: np.ndarray
    top_tokens: list
    top_probs: np.ndarray
    loss: np.ndarray
    pred_tokens: list
    pred_probs: np.ndarray
    truncated: bool = False

    @property
    def T(self) -> int:
        return len(self.ids)

    @property
    def mean_loss(self) -> float:
        return float(self.loss.mean()) if self.loss.size else float("nan")


def _labels(tokenizer, ids: np.ndarray) -> list:
    """Token labels of an integer array of any shape, as nested lists of the same shape (one lookup per id)."""
    flat = ids.reshape(-1)
    names = {int(i): tokenizer.token_label(int(i)) for i in np.unique(flat)}
    out = np.array([names[int(i)] for i in flat], dtype=object).reshape(ids.shape)
    return out.tolist()


def lens_view(probes, run: str, step: int | None, prompt: str | None) -> LensView:
    """The logit lens and per-token loss of run at (the checkpoint nearest) step on the prompt, cached."""
    step = probes.runs.nearest_step(run, step)
    ids, truncated = probes.encode(prompt, run)
    tokenizer = probes.tokenizer_for(run)
    if len(ids) < 2:
        raise ConfigError(f"the prompt needs at least 2 tokens ({tokenizer.name}) to predict a next token")
    ref = probes.runs.ref(run, step)
    key = content_key("lens", ref, ids.tolist(), LENS_TOP_K)

    def compute():
        model, _ = probes.runs.load_ref(ref)
        idx = torch.as_tensor(ids)
        with probes.model_lock:  # the store's lock on shared cached models (hooks see one pass)
            lens = logit_lens(model, idx, k=LENS_TOP_K)
            pred = token_predictions(model, idx, k=LENS_TOP_K)
        top_ids = lens.top_ids[:, 0].numpy()  # [N, 1, T, k] -> [N, T, k]
        pred_ids = pred.top_ids[0].numpy()  # [1, T, k] -> [T, k]
        return LensView(
            run=run, step=step, kind=probes.runs.info(run).attention,
            ids=ids, tokens=[tokenizer.token_label(int(i)) for i in ids], depths=list(lens.labels),
            target_prob=lens.target_prob[:, 0].numpy(), target_rank=lens.target_rank[:, 0].numpy(),
            first_top1=lens.first_top1[0].numpy(), top_tokens=_labels(tokenizer, top_ids),
            top_probs=lens.top_probs[:, 0].numpy(), loss=pred.loss[0].numpy(),
            pred_tokens=_labels(tokenizer, pred_ids), pred_probs=pred.top_probs[0].numpy(), truncated=truncated)

    return probes.cache.get_or_compute("results", key, compute)


def lens_pair(probes, run: str, step: int | None, compare: str | None, prompt: str | None):
    """(lens of run, lens of compare at its nearest step, or None when there is nothing to compare).

    Two runs with different tokenizers raise the ConfigError the attention pages give (their
    positions do not line up).
    """
    a = lens_view(probes, run, step, prompt)
    if not compare or compare not in probes.runs.names():
        return a, None
    probes.check_same_tokens(run, compare)
    return a, lens_view(probes, compare, probes.runs.nearest_step(compare, a.step), prompt)


def formation_depth(view: LensView) -> dict:
    """Where predictions form: over the positions the model gets right (top-1 at the last depth),
    the median first depth at which the actual next token is top-1.

    Returns {"depth": index into view.depths or None, "label", "right": positions right,
    "total": positions}.
    """
    right = view.target_rank[-1] == 0  # [T-1]
    firsts = view.first_top1[right]
    if firsts.size == 0:
        return {"depth": None, "label": None, "right": 0, "total": int(right.size)}
    depth = int(np.ceil(np.median(firsts)))
    return {"depth": depth, "label": view.depths[depth], "right": int(firsts.size), "total": int(right.size)}


def hardest_tokens(a: LensView, b: LensView, n: int = 10) -> list[dict]:
    """The positions where a's loss exceeds b's the most (largest a - b first, at most n, only a > b).

    Each: {"position": index of the predicted token, "token", "context" (the labels of the up to 8
    tokens before it), "loss_a", "loss_b", "diff"}.
    """
    if a.loss.shape != b.loss.shape:
        raise ConfigError(f"{a.run} and {b.run} cut the prompt into {a.T} and {b.T} tokens")
    diff = a.loss - b.loss  # [T-1]
    order = np.argsort(-diff, kind="stable")[:n]
    return [{"position": int(t) + 1, "token": a.tokens[t + 1], "context": "".join(a.tokens[max(0, t - 7): t + 1]),
             "loss_a": float(a.loss[t]),
             "loss_b": float(b.loss[t]), "diff": float(diff[t])} for t in order if diff[t] > 0]
