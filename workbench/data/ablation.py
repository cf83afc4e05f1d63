"""Heads that matter: the loss change of silencing each head (and each whole layer) of a run.

`head_ablation(workspace, run, step, mode=..., source=...)` runs tauformer's one-pass
`ablation_sweep` on fixed validation batches (`SWEEP_BATCHES`) or on the prompt, on a copy of
the cached model made under the probe store's model lock: the sweep's hooks never see another
thread's forward pass, and the seconds a sweep takes never hold up the other pages' probes.
The numpy result is cached in the workspace's "results" part under the checkpoint's ref, the
mode, the source and -- for the prompt -- the prompt's token ids. `top_heads` ranks a sweep's
heads for the page's "heads that matter most" list. Torch and the sweep are imported on first
use, so the page module that imports this one does not pull torch into the app's start.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from tauformer.errors import ConfigError

from .cache import content_key

MODES = ("zero", "mean")  # tauformer.ablation.ABLATION_MODES (a test keeps them equal)
SOURCES = ("validation", "prompt")
VALIDATION_SEED = 2  # the sweep's own fixed validation batches (what-if losses use seed 1)


@dataclass(frozen=True)
class HeadAblation:
    """One run's ablation sweep as numpy.

    head_delta [L, H] and layer_delta [L]: ablated minus unablated mean loss (nats / token);
    base_loss: the unablated loss on the same n_tokens target tokens.
    """

    run: str
    step: int
    kind: str
    mode: str
    source: str
    base_loss: float
    head_delta: np.ndarray
    layer_delta: np.ndarray
    n_tokens: int

    @property
    def n_layer(self) -> int:
        return self.head_delta.shape[0]

    @property
    def n_head(self) -> int:
        return self.head_delta.shape[1]


def check_choice(mode: str, source: str) -> None:
    """Raise ConfigError for a mode or source the sweep does not know."""
    if mode not in MODES:
        raise ConfigError(f"ablation mode must be one of {MODES}, got {mode!r}")
    if source not in SOURCES:
        raise ConfigError(f"ablation source must be one of {SOURCES}, got {source!r}")


def sweep_batches(workspace, run: str, source: str, prompt: str | None) -> tuple[list, list | None]:
    """(batches [(x, y)] of [B, T] token ids, the prompt's ids or None) the sweep runs on.

    The prompt (None: the run's default passage) is one row: x = ids[:-1], y = ids[1:]
    (at least 2 tokens are needed).
    """
    import torch

    from tauformer.ablation import SWEEP_BATCHES

    if source == "validation":
        return workspace.probes.validation_batches(run, *SWEEP_BATCHES, seed=VALIDATION_SEED), None
    text = prompt if prompt is not None else workspace.probes.default_prompt(run)
    ids, _ = workspace.probes.encode(text, run)
    if len(ids) < 2:
        raise ConfigError(f"the prompt needs at least 2 tokens ({workspace.probes.tokenizer_for(run).name}) "
                          "to measure a loss on it")
    row = torch.as_tensor(ids)[None]  # [1, T]
    return [(row[:, :-1], row[:, 1:])], ids.tolist()


def head_ablation(workspace, run: str, step: int | None, *, mode: str = "zero", source: str = "validation",
                  prompt: str | None = None) -> HeadAblation:
    """The ablation sweep of run at (the checkpoint nearest) step, cached per checkpoint ref,
    mode, source and prompt ids (the prompt is ignored for the validation source)."""
    from tauformer.ablation import SWEEP_BATCHES, ablation_sweep

    check_choice(mode, source)
    step = workspace.runs.nearest_step(run, step)
    ref = workspace.runs.ref(run, step)
    batches, ids = sweep_batches(workspace, run, source, prompt)
    key = content_key("ablation", ref, mode, source, ids if ids is not None else list(SWEEP_BATCHES))

    def compute():
        model, _ = workspace.runs.load_ref(ref)
        with workspace.probes.model_lock:  # copied while no other thread's probe hooks are on it
            private = copy.deepcopy(model)
        sweep = ablation_sweep(private, batches, mode=mode)  # seconds: other pages' probes need not wait
        return HeadAblation(run=run, step=step, kind=sweep.kind, mode=mode, source=source,
                            base_loss=float(sweep.base_loss), head_delta=sweep.head_delta.numpy().astype(np.float64),
                            layer_delta=sweep.layer_delta.numpy().astype(np.float64), n_tokens=int(sweep.n_tokens))

    return workspace.cache.get_or_compute("results", key, compute)


def ablation_pair(workspace, run: str, step: int | None, compare: str | None, *, mode: str = "zero",
                  source: str = "validation", prompt: str | None = None):
    """(sweep of run, sweep of compare at its checkpoint nearest run's step, or None)."""
    a = head_ablation(workspace, run, step, mode=mode, source=source, prompt=prompt)
    if not compare or compare not in workspace.runs.names():
        return a, None
    other_step = workspace.runs.nearest_step(compare, a.step)
    return a, head_ablation(workspace, compare, other_step, mode=mode, source=source, prompt=prompt)


def top_heads(sweep: HeadAblation, n: int = 5) -> list[dict]:
    """The n heads whose ablation raises the loss most: [{"layer", "head", "delta"}], largest
    first (equal changes in layer, then head order)."""
    L, H = sweep.head_delta.shape
    order = sorted(range(L * H), key=lambda i: (-sweep.head_delta.flat[i], i))
    return [{"layer": i // H, "head": i % H, "delta": float(sweep.head_delta.flat[i])} for i in order[:n]]
