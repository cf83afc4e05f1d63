"""One checkpoint's probe of a prompt as numpy arrays, and the divergence between two of them.

Kept apart from the store that computes them: views and figures read ProbeViews; only
:func:`probe_view` touches the torch tensors of a ProbeResult.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tauformer.data import ByteTokenizer
from tauformer.probe import ProbeResult


@dataclass
class ProbeView:
    """One checkpoint's probe of a prompt as numpy (batch axis dropped; lambda_k repeated to H heads).

    weights [L,H,T,T]; lambda_q / lambda_k / tau_q / tau_k [L,H,T] and temperature [L,H] (None for
    dot); q / k [L,H,T,D]; entropy [L,H] (fraction of uniform); token_loss [T-1] (nats).
    """

    run: str
    step: int
    kind: str
    ids: np.ndarray
    tokens: list[str]
    weights: np.ndarray
    q: np.ndarray
    k: np.ndarray
    entropy: np.ndarray
    token_loss: np.ndarray
    truncated: bool = False
    lambda_q: np.ndarray | None = None
    lambda_k: np.ndarray | None = None
    tau_q: np.ndarray | None = None
    tau_k: np.ndarray | None = None
    temperature: np.ndarray | None = None

    @property
    def n_layer(self) -> int:
        return self.weights.shape[0]

    @property
    def n_head(self) -> int:
        return self.weights.shape[1]

    @property
    def T(self) -> int:
        return len(self.ids)

    @property
    def mean_loss(self) -> float:
        return float(self.token_loss.mean()) if self.token_loss.size else float("nan")

    @property
    def has_lambda(self) -> bool:
        return self.lambda_q is not None


def probe_view(result: ProbeResult, run: str, step: int, *, truncated: bool = False, tokenizer=None) -> ProbeView:
    """A ProbeResult (batch row 0) as a ProbeView; tokens labelled with the run's tokenizer (bytes if None)."""
    tok = tokenizer or ByteTokenizer()
    ids = result.idx[0].numpy()
    n_rep = result.n_rep

    def heads(t):  # [L, B, H_kv, ...] -> [L, H, ...] numpy
        return t[:, 0].repeat_interleave(n_rep, dim=1).numpy() if t is not None else None

    return ProbeView(
        run=run, step=step, kind=result.kind, ids=ids, tokens=[tok.token_label(i) for i in ids],
        weights=result.weights[:, 0].numpy(), q=result.q[:, 0].numpy(), k=heads(result.k),
        entropy=result.entropy()[:, 0].numpy(), token_loss=result.token_loss[0].numpy(), truncated=truncated,
        lambda_q=result.lambda_q[:, 0].numpy() if result.lambda_q is not None else None,
        lambda_k=heads(result.lambda_k),
        tau_q=result.tau_q[:, 0].numpy() if result.tau_q is not None else None,
        tau_k=heads(result.tau_k),
        temperature=result.temperature.numpy() if result.temperature is not None else None,
    )


def js_divergence(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Jensen-Shannon divergence (nats) between attention maps [..., T, T], mean over queries 1..T-1 -> [...].

    The first query sees one key in every model, so it says nothing and is left out. Computed in
    float32 with logs taken only where the weights are positive (0 log 0 = 0).
    """
    p = p.astype(np.float32, copy=False)
    q = q.astype(np.float32, copy=False)
    m = 0.5 * (p + q)
    log_m = np.log(m, where=m > 0, out=np.zeros_like(m))
    terms = p * (np.log(p, where=p > 0, out=np.zeros_like(p)) - log_m)
    terms += q * (np.log(q, where=q > 0, out=np.zeros_like(q)) - log_m)
    js = 0.5 * terms.sum(-1, dtype=np.float64)  # [..., T]
    return js[..., 1:].mean(-1) if js.shape[-1] > 1 else np.zeros(js.shape[:-1])
