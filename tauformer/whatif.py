"""What if a tau model measured its heads differently? Change one setting, re-run, compare.

A `Change` replaces the temperature, the tau mode or the Laplacian of every tau layer. `what_if`
applies it to a deep copy of the model (the original is never touched, so other readers of a
cached model are safe) and returns the probe of the prompt plus the validation loss, before and
after. Laplacians to try: the chain, the identity (no domain memory), a degree-preserving
shuffle of the model's own graph, or any other D x D Laplacian (e.g. another domain file).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np
import torch

from .attention import TauAttention
from .config import TAU_MODES
from .errors import ConfigError, ShapeError
from .laplacian import as_laplacian_tensor, chain_laplacian, identity_laplacian
from .probe import ProbeResult, run_probe
from .runtime import eval_mode
from .taumode import rayleigh_energy

LAPLACIAN_VARIANTS = ("model", "chain", "identity", "shuffle")


@dataclass(frozen=True)
class Change:
    """Settings to replace in every tau layer; None (and scale 1) keeps the trained value.

    temperature_scale multiplies each head's temperature (learned or fixed); temperature sets all
    heads to one value instead. tau_mode "calibrated" re-measures the calibrated tau (the median
    Rayleigh energy of q and k) on the calibration batches, so it also suits a new Laplacian.
    """

    temperature_scale: float = 1.0
    temperature: float | None = None
    tau_mode: str | None = None
    tau: float | None = None
    percentile: float | None = None
    laplacian: torch.Tensor | None = None
    laplacian_name: str = "model"

    def __post_init__(self):
        if not self.temperature_scale > 0 or (self.temperature is not None and not self.temperature > 0):
            raise ConfigError(f"temperatures must be > 0, got scale {self.temperature_scale}, value {self.temperature}")
        if self.tau_mode is not None and self.tau_mode not in TAU_MODES:
            raise ConfigError(f"tau_mode must be one of {TAU_MODES}, got {self.tau_mode!r}")
        if self.tau is not None and not self.tau > 0:
            raise ConfigError(f"tau must be > 0, got {self.tau}")

    def describe(self) -> str:
        """A short human summary, e.g. 'temperature x0.1, Laplacian chain'."""
        parts = []
        if self.temperature is not None:
            parts.append(f"temperature = {self.temperature:g}")
        elif self.temperature_scale != 1.0:
            parts.append(f"temperature x{self.temperature_scale:g}")
        if self.tau_mode is not None:
            detail = {"fixed": f" {self.tau if self.tau is not None else 1.0:g}",
                      "percentile": f" {self.percentile}"}.get(self.tau_mode, "")
            parts.append(f"tau {self.tau_mode}{detail}")
        if self.laplacian is not None:
            parts.append(f"Laplacian {self.laplacian_name}")
        return ", ".join(parts) or "no change"


@dataclass
class WhatIfResult:
    """The prompt's probe and the mean validation loss (nats / token) before and after a change."""

    change: Change
    before: ProbeResult
    after: ProbeResult
    val_loss_before: float
    val_loss_after: float


def degree_preserving_shuffle(laplacian: torch.Tensor, *, seed: int = 0, swaps_per_edge: int = 10) -> torch.Tensor:
    """The Laplacian of a seeded rewiring of L's graph that keeps every node's number of neighbours.

    Double-edge swaps (a-b, c-d) -> (a-d, c-b), each new edge keeping the weight of the edge it
    came from, so the degree sequence and the multiset of weights stay, while which features are
    neighbours is scrambled: a null model for "does the domain graph's structure matter?".
    Returns an unnormalised Laplacian D_w - W (dense float32).
    """
    L = laplacian.to_dense() if laplacian.layout != torch.strided else laplacian
    W = -L.detach().double().cpu().numpy()
    np.fill_diagonal(W, 0.0)
    rows, cols = np.nonzero(np.triu(W, 1))
    from .domain.variants import swap_edges  # lazy: the domain package imports scikit-learn

    edges = [[int(a), int(b)] for a, b in zip(rows, cols)]
    weights = [float(W[a, b]) for a, b in edges]
    edges = swap_edges(edges, seed=seed, swaps_per_edge=swaps_per_edge)
    D = W.shape[0]
    A = np.zeros((D, D))
    for (a, b), w in zip(edges, weights):
        A[a, b] = A[b, a] = w
    return torch.from_numpy(np.diag(A.sum(1)) - A).float()


def laplacian_variant(model, name: str, *, seed: int = 0) -> torch.Tensor:
    """A named Laplacian for a tau model: "model" (its own), "chain", "identity", "shuffle" (seeded)."""
    D = model.config.head_dim
    own = model.laplacian
    if name == "model":
        return own.detach().clone()
    if name == "chain":
        return chain_laplacian(D)
    if name == "identity":
        return identity_laplacian(D)
    if name == "shuffle":
        return degree_preserving_shuffle(own, seed=seed)
    raise ConfigError(f"unknown Laplacian variant {name!r}; choose from {LAPLACIAN_VARIANTS} or pass a tensor")


def apply_change(model, change: Change, calibration_batches=None):
    """A deep copy of the tau model with `change` applied (the original is not modified)."""
    if model.config.attention != "tau":
        raise ConfigError("what-if changes apply to tau models only; a dot-product model has no lambda")
    changed = copy.deepcopy(model).eval()
    if change.laplacian is not None:
        L = as_laplacian_tensor(change.laplacian, model.config.head_dim, name=change.laplacian_name)
        changed.laplacian = L.to(model.laplacian.device)
    for block in changed.transformer.h:
        attn = block.attn
        if not isinstance(attn, TauAttention):
            continue
        _set_temperature(attn, change)
        if change.tau_mode is not None:
            attn.taumode.tau_mode = change.tau_mode
            attn.taumode.percentile = change.percentile
            if change.tau is not None:
                attn.taumode.tau = float(change.tau)
    if change.tau_mode == "calibrated":
        if not calibration_batches:
            raise ConfigError("tau_mode 'calibrated' needs calibration batches to measure the median energy on")
        calibrate(changed, calibration_batches)
    return changed


def _set_temperature(attn: TauAttention, change: Change) -> None:
    if change.temperature is None and change.temperature_scale == 1.0:
        return
    with torch.no_grad():
        if attn.log_temperature is not None:
            if change.temperature is not None:
                attn.log_temperature.fill_(math.log(change.temperature))
            else:
                attn.log_temperature.add_(math.log(change.temperature_scale))
        else:
            base = change.temperature if change.temperature is not None else attn.fixed_temperature
            attn.fixed_temperature = base * (change.temperature_scale if change.temperature is None else 1.0)


@torch.no_grad()
def calibrate(model, batches) -> list[float]:
    """Set each tau layer's calibrated tau to the median Rayleigh energy of its q and k on `batches`.

    Layer by layer, since a layer's q and k depend on the taus below it: layer i is measured with
    layers < i already recalibrated (each pass stops at layer i). Returns the new taus.
    """
    laplacian = model.laplacian_operator()
    taus = []
    for i, block in enumerate(model.transformer.h):
        energies = []
        for x, *_ in batches:
            q, k = layer_qk(model, x, i)
            energies += [rayleigh_energy(q, laplacian).flatten(), rayleigh_energy(k, laplacian).flatten()]
        taumode = block.attn.taumode
        tau = torch.cat(energies).median().clamp_min(taumode.eps)
        taumode.tau_running.copy_(tau)
        taumode.tau_updates.fill_(max(1, int(taumode.tau_updates)))
        taus.append(float(tau))
    return taus


class _StopForward(Exception):
    """Raised by a hook to end a forward pass once the wanted tensors are captured."""


def layer_qk(model, x: torch.Tensor, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
    """q [B,H,T,D] and k [B,H_kv,T,D] of one layer, running the network only up to that layer's attention."""
    captured: dict = {}

    def grab(name):
        def hook(module, inputs, output):
            captured[name] = output.detach()
            if len(captured) == 2:
                raise _StopForward
        return hook

    attn = model.transformer.h[layer].attn
    handles = [attn.hook_q.register_forward_hook(grab("q")), attn.hook_k.register_forward_hook(grab("k"))]
    try:
        model(x)
    except _StopForward:
        pass
    finally:
        for handle in handles:
            handle.remove()
    return captured["q"], captured["k"]


@torch.no_grad()
def validation_loss(model, batches) -> float:
    """Mean cross-entropy (nats / token) over (x, y) batches, in eval mode."""
    with eval_mode(model):
        losses = [float(model(x, y)[1]) for x, y in batches]
    if not losses:
        raise ShapeError("validation_loss needs at least one batch")
    return sum(losses) / len(losses)


def what_if(model, idx: torch.Tensor, change: Change, val_batches, *, before: ProbeResult | None = None,
            val_loss_before: float | None = None, calibration_batches=None) -> WhatIfResult:
    """Probe idx and measure validation loss with and without `change`; the model stays unchanged.

    ``before`` / ``val_loss_before`` may be passed in when already known (they are what the
    unchanged model gives). Calibration for tau_mode "calibrated" uses ``calibration_batches``
    (default: ``val_batches``).
    """
    changed = apply_change(model, change, calibration_batches=calibration_batches or val_batches)
    before = before if before is not None else run_probe(model, idx)
    loss_before = val_loss_before if val_loss_before is not None else validation_loss(model, val_batches)
    return WhatIfResult(change=change, before=before, after=run_probe(changed, idx),
                        val_loss_before=loss_before, val_loss_after=validation_loss(changed, val_batches))
