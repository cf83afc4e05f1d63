"""The taumode scalar lambda of a head vector (SPEC section 2).

E(x) = x^T L x / (x^T x + eps) is the Rayleigh energy of x on the Laplacian L (clipped at 0);
lambda(x) = E / (E + tau) bounds it to [0, 1). tau comes from one of the modes in TAU_MODES.
Everything here is differentiable, for a dense or a torch.sparse (CSR / COO) Laplacian, and
computed in float32 whatever the input dtype (lambda differences drive attention; bf16 would
blur them).
"""

from __future__ import annotations

import torch
from torch import nn

from .config import TAU_MODES
from .errors import ConfigError, ShapeError

TAU_FLOOR = 1e-10


def rayleigh_energy(x: torch.Tensor, laplacian: torch.Tensor, *, eps: float = 1e-6) -> torch.Tensor:
    """E(x) = x^T L x / (x^T x + eps) >= 0 for x [..., D] and a symmetric L [D, D] -> x.shape[:-1]."""
    D = x.shape[-1]
    if laplacian.dim() != 2 or laplacian.shape[0] != laplacian.shape[1] or laplacian.shape[0] != D:
        raise ShapeError(f"Laplacian is {tuple(laplacian.shape)} but the vectors have D={D}; it must be D x D")
    if torch.is_autocast_enabled(x.device.type):
        with torch.autocast(device_type=x.device.type, enabled=False):
            energy = _energy(x.reshape(-1, D), laplacian, eps)
    else:  # entering an autocast context costs more than the rest for a decode step
        energy = _energy(x.reshape(-1, D), laplacian, eps)
    return energy.clamp_min(0.0).reshape(x.shape[:-1])


def _energy(flat: torch.Tensor, laplacian: torch.Tensor, eps: float) -> torch.Tensor:
    """Unclipped Rayleigh energy of the rows of flat [N, D], in float32 (no-op casts skipped)."""
    if flat.dtype != torch.float32:
        flat = flat.float()
    L = laplacian if laplacian.dtype == torch.float32 else laplacian.to(torch.float32)
    if L.layout == torch.strided:
        Lx = flat @ L  # [N, D]; L is symmetric so x^T L = (L x)^T
    else:
        Lx = (L @ flat.T).T  # sparse [D, D] @ dense [D, N] -> [N, D]
    return (Lx * flat).sum(-1) / ((flat * flat).sum(-1) + eps)


def select_tau(
    x: torch.Tensor,
    tau_mode: str = "fixed",
    *,
    tau: float | torch.Tensor = 1.0,
    eps: float = 1e-6,
    percentile: float | None = None,
) -> torch.Tensor:
    """tau for each vector of x [..., D]: a constant, or a statistic of x's own components.

    "fixed" and "calibrated" return ``tau`` itself (the calibrated value is kept by `Taumode`).
    "median" / "mean" / "percentile" use x's D components, floored at 1e-10 then at eps, as the
    reference's sparse path does. ``percentile`` is a quantile p in [0, 1] (values in (1, 100]
    are read as percent).
    """
    if tau_mode not in TAU_MODES:
        raise ConfigError(f"tau_mode must be one of {TAU_MODES}, got {tau_mode!r}")
    if tau_mode in ("fixed", "calibrated"):
        # a plain number is checked on the host: `(t <= 0).any()` would wait for the GPU
        if not isinstance(tau, torch.Tensor) and float(tau) <= 0:
            raise ConfigError(f"tau must be > 0, got {tau}")
        t = torch.as_tensor(tau, dtype=torch.float32, device=x.device)
        if isinstance(tau, torch.Tensor) and (t <= 0).any():
            raise ConfigError(f"tau must be > 0, got {tau}")
        return t
    xf = x.float()
    if tau_mode == "median":
        t = torch.quantile(xf, 0.5, dim=-1)
    elif tau_mode == "mean":
        t = xf.mean(dim=-1)
    else:
        t = torch.quantile(xf, _as_quantile(percentile), dim=-1)
    return t.clamp_min(TAU_FLOOR).clamp_min(eps)


def _as_quantile(percentile: float | None) -> float:
    if percentile is None:
        raise ConfigError("tau_mode='percentile' needs percentile=p (a quantile in [0, 1])")
    p = float(percentile)
    if 1.0 < p <= 100.0:
        p /= 100.0
    if not 0.0 <= p <= 1.0:
        raise ConfigError(f"percentile must be in [0, 1] (or (1, 100] as percent), got {percentile}")
    return p


def bound_energy(energy: torch.Tensor, tau: torch.Tensor | float) -> torch.Tensor:
    """lambda = E / (E + tau), in [0, 1) for E >= 0 and tau > 0."""
    return energy / (energy + tau)


def taumode_lambdas(
    x: torch.Tensor,
    laplacian: torch.Tensor,
    *,
    tau_mode: str = "fixed",
    tau: float | torch.Tensor = 1.0,
    eps: float = 1e-6,
    percentile: float | None = None,
) -> torch.Tensor:
    """lambda of every vector of x [..., D] against L [D, D] (dense or sparse) -> x.shape[:-1].

    A zero vector gets lambda 0 (its energy is 0), never NaN. For tau_mode="calibrated" pass the
    calibrated value as ``tau``.
    """
    energy = rayleigh_energy(x, laplacian, eps=eps)
    t = select_tau(x, tau_mode, tau=tau, eps=eps, percentile=percentile)
    return bound_energy(energy, t)


class Taumode(nn.Module):
    """lambda for one attention layer, with the calibrated tau kept as a checkpointed buffer.

    In "calibrated" mode the layer's tau is the running median of the Rayleigh energies of its
    queries and keys over training batches (EMA with ``momentum``; the first batch sets it), so
    lambda spreads around 0.5. Outside training the stored value is used unchanged.

    In "fixed" mode a positive number ``tau`` lives in the non-persistent float32 buffer
    ``tau_fixed`` (it follows the module across devices and is left out of checkpoints), so a
    decode step copies nothing from the host and can be captured in a CUDA graph.
    """

    def __init__(self, tau_mode: str = "calibrated", tau: float = 1.0, *, percentile=None,
                 momentum: float = 0.99, eps: float = 1e-6):
        super().__init__()
        self.tau_mode = tau_mode
        self.register_buffer("tau_fixed", torch.tensor(1.0, dtype=torch.float32), persistent=False)
        self.tau = tau
        self.percentile = percentile
        self.momentum = momentum
        self.eps = eps
        self.register_buffer("tau_running", torch.tensor(float(tau)))
        self.register_buffer("tau_updates", torch.tensor(0, dtype=torch.long))

    @property
    def tau(self):
        """The constant tau of "fixed" mode (and the first value of "calibrated")."""
        return self._tau

    @tau.setter
    def tau(self, value) -> None:
        self._tau = value
        # a bad value is not kept in the buffer: `taus` then goes through select_tau, which raises
        self._tau_in_buffer = isinstance(value, (int, float)) and float(value) > 0
        if self._tau_in_buffer:
            with torch.no_grad():
                self.tau_fixed.fill_(float(value))  # float32, rounded as torch.as_tensor rounds it

    # device types on which the fused Triton lambda kernel is used (when it fits and Triton runs)
    fused_devices = ("cuda",)

    def forward(self, q: torch.Tensor, k: torch.Tensor, laplacian: torch.Tensor):
        """lambda_q, lambda_k for q [B, H, T, D] and k [B, H_kv, T, D] -> [B, H, T], [B, H_kv, T]."""
        if self._fused(q, laplacian):
            return self._forward_fused(q, k, laplacian)
        e_q = rayleigh_energy(q, laplacian, eps=self.eps)
        e_k = rayleigh_energy(k, laplacian, eps=self.eps)
        if self.tau_mode == "calibrated" and self.training:
            self._update_calibration(e_q, e_k)
        tau_q, tau_k = self.taus(q, k)
        return bound_energy(e_q, tau_q), bound_energy(e_k, tau_k)

    def _fused(self, x: torch.Tensor, laplacian: torch.Tensor) -> bool:
        """Whether the fused Triton kernel computes lambda here: a scalar tau and a dense L <= 512."""
        if x.device.type not in self.fused_devices or self.tau_mode not in ("fixed", "calibrated"):
            return False
        from .kernels.triton_lambda import lambda_kernel_fits
        from .kernels.triton_tau import triton_available

        return triton_available(x.device) and lambda_kernel_fits(x, laplacian)

    def _forward_fused(self, q, k, laplacian):
        """`forward` through `taumode_lambda_triton` (x L, Rayleigh quotient and bounding in one kernel)."""
        from .kernels.triton_lambda import taumode_lambda_triton

        if laplacian.shape[0] != q.shape[-1]:
            rayleigh_energy(q[..., :0, :], laplacian)  # raises the usual ShapeError
        tau, _ = self.taus(q, k)
        lambda_q, e_q = taumode_lambda_triton(q, laplacian, tau, self.eps)
        lambda_k, e_k = taumode_lambda_triton(k, laplacian, tau, self.eps)
        if self.tau_mode == "calibrated" and self.training:
            self._update_calibration(e_q, e_k)
            tau, _ = self.taus(q, k)  # this batch's lambdas use the updated tau, as in `forward`
            lambda_q, _ = taumode_lambda_triton(q, laplacian, tau, self.eps)
            lambda_k, _ = taumode_lambda_triton(k, laplacian, tau, self.eps)
        return lambda_q, lambda_k

    def taus(self, q: torch.Tensor, k: torch.Tensor):
        """The tau this layer divides by: a scalar tensor, or one per vector ([B, H, T] / [B, H_kv, T])."""
        if self.tau_mode == "calibrated":
            tau = self.tau_running.clamp_min(self.eps)
            return tau, tau
        if self.tau_mode == "fixed":  # one constant for q and k
            tau = self.tau_fixed
            if not (self._tau_in_buffer and tau.device == q.device and tau.dtype == torch.float32):
                tau = select_tau(q, "fixed", tau=self.tau)  # a tensor tau, or the module cast / elsewhere
            return tau, tau
        return (select_tau(q, self.tau_mode, tau=self.tau, eps=self.eps, percentile=self.percentile),
                select_tau(k, self.tau_mode, tau=self.tau, eps=self.eps, percentile=self.percentile))

    @torch.no_grad()
    def _update_calibration(self, e_q: torch.Tensor, e_k: torch.Tensor) -> None:
        median = torch.cat([e_q.detach().flatten(), e_k.detach().flatten()]).median().clamp_min(self.eps)
        # the first update sets tau, later ones blend; chosen on the device, since reading
        # tau_updates on the host would wait for the GPU once per layer and step
        blended = self.tau_running * self.momentum + (1.0 - self.momentum) * median
        self.tau_running.copy_(torch.where(self.tau_updates == 0, median, blended))
        self.tau_updates += 1
