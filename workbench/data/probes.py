"""Probes of checkpoints on a prompt, and everything derived from them, cached by content hash.

`ProbeStore` turns (run, step, prompt) into a `ProbeView` of numpy arrays (lambda, attention,
entropy, per-token loss), pairs a tau run with its dot twin, compares two models' heads
(Jensen-Shannon divergence), explains a token's lambda by the Laplacian's spectrum, runs
what-if changes, and measures KV-cache bytes and decode latency. Results are cached
server-side; views receive numpy arrays and plain dicts only.
"""

from __future__ import annotations

import re
import threading

import numpy as np
import torch

from tauformer.checkpoint import load_checkpoint_tokenizer
from tauformer.data import ByteTokenizer, load_batches, load_corpus
from tauformer.shards import is_shards_dir, open_shards
from tauformer.errors import ConfigError, TauformerError
from tauformer.laplacian import as_laplacian_tensor
from tauformer.probe import run_probe
from tauformer.spectral import laplacian_spectrum, spectral_decomposition
from tauformer.whatif import Change, apply_change, laplacian_variant, validation_loss

from .cache import WorkspaceCache, content_key
from .probe_view import ProbeView, js_divergence, probe_view  # re-exported: the probe store's results
from .speed import CACHE_CONTEXTS, LATENCY_CONTEXTS, kv_cache_bytes
from .speed import decode_latency as measure_decode_latency

MAX_PROMPT_TOKENS = 1024
DEFAULT_PROMPT_BYTES = 256
VAL_SAMPLE = (4, 256)  # sequences x tokens of validation text for the lambda distributions
WHATIF_BATCHES = (2, 2)  # validation batches x rows (block_size tokens each) for what-if losses: paired, so small
TORCH_THREADS = 1  # interactive work on small tensors: one intra-op thread avoids oversubscription


def _corpus_text(data: str | None, max_tokens: int = 65536) -> str:
    """A run's text: the file (or bundled corpus), or the decoded start of a shards directory's val.bin."""
    if not is_shards_dir(data):
        return load_corpus(data)
    shards = open_shards(data)
    return shards.tokenizer.decode(np.asarray(shards.val[:max_tokens]).tolist())


def _train_data(info) -> str | None:
    """The corpus (or shards directory) a run was trained on; None: the bundled corpus."""
    return info.train.data if info.train is not None else None


def default_prompt(text: str, n_bytes: int = DEFAULT_PROMPT_BYTES, val_fraction: float = 0.1) -> str:
    """About n_bytes of prose from the validation part of a corpus (text the model never trained on).

    Prose = blank-line separated paragraphs (whitespace collapsed) of ASCII sentences; consecutive
    ones are joined and cut at a word boundary. Falls back to the start of the validation text.
    """
    data = text.encode("utf-8")
    val = data[len(data) - max(1, int(np.ceil(len(data) * val_fraction))):].decode("utf-8", errors="ignore")
    paragraphs = [re.sub(r"\s+", " ", p).strip() for p in re.split(r"\n\s*\n", val)]
    prose = [p for p in paragraphs if len(p) >= 150 and p.isascii() and p[0].isupper() and p.endswith(".")]
    out = " ".join(prose) if prose else re.sub(r"\s+", " ", val).strip()
    if len(out) > n_bytes:
        out = out[: n_bytes + 1].rsplit(" ", 1)[0]
    return out


class ProbeStore:
    """Probes and derived results for the runs and domain memories of a Workspace.

    Results go into the workspace's cache: probe views in "probes", what is derived from them
    and from checkpoints in "results", decode timings in "measurements" -- each keyed by the
    checkpoint's ref (see RunStore.ref), so a checkpoint rewritten in place is probed afresh.
    """

    def __init__(self, runs, domains, cache: WorkspaceCache):
        self.runs = runs
        self.domains = domains
        self.cache = cache
        self.tokenizer = ByteTokenizer()
        torch.set_num_threads(TORCH_THREADS)  # the store exists for interactive work on small tensors
        # Cached models are shared by the server's request threads. A probe's hooks would also
        # record another thread's forward pass on the same model (and a deep copy would copy
        # them), so every forward pass or copy of a cached model -- here and in the data modules
        # beside this one (ablation, lens) -- holds this lock. Never call
        # a cached computation while holding it.
        self.model_lock = threading.RLock()
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ basics
    def tokenizer_for(self, run: str | None):
        """The tokenizer run was trained with (its checkpoint's tokenizer.json; bytes when None), cached."""
        if not run:
            return self.tokenizer
        ref = self.runs.ref(run)
        return self.cache.get_or_compute("results", content_key("tokenizer", ref),
                                         lambda: load_checkpoint_tokenizer(ref.directory))

    def encode(self, prompt: str | None, run: str | None = None) -> tuple[np.ndarray, bool]:
        """The run's tokens of the prompt (bytes without a run), at most MAX_PROMPT_TOKENS, and whether it was cut."""
        ids = self.tokenizer_for(run).encode(prompt or "")
        return np.asarray(ids[:MAX_PROMPT_TOKENS], dtype=np.int64), len(ids) > MAX_PROMPT_TOKENS

    def token_labels(self, ids, run: str | None = None) -> list[str]:
        tok = self.tokenizer_for(run)
        return [tok.token_label(i) for i in ids]

    def same_tokens(self, a: str, b: str) -> bool:
        """Whether two runs share a tokenizer (so their tokens line up position by position)."""
        return self.tokenizer_for(a).fingerprint == self.tokenizer_for(b).fingerprint

    def corpus(self, run: str | None = None) -> str:
        """The text a run was trained on (the bundled corpus when unknown); for prepared shards,
        the decoded start of their validation split."""
        data = _train_data(self.runs.info(run)) if run else None
        return self.cache.get_or_compute("results", content_key("corpus", data), lambda: _corpus_text(data))

    def default_prompt(self, run: str | None = None) -> str:
        """A passage of the run's validation text (the bundled corpus when no run is given)."""
        data = _train_data(self.runs.info(run)) if run else None
        try:
            fraction = 1.0 if is_shards_dir(data) else 0.1  # shards: corpus() is validation text already
            return self.cache.get_or_compute("results", content_key("default-prompt", data),
                                             lambda: default_prompt(self.corpus(run), val_fraction=fraction))
        except TauformerError:  # the run's text is unreadable: the bundled corpus's passage (cached)
            if data is None:
                raise
            return self.default_prompt(None)

    def pair(self, run: str) -> str | None:
        """The run of the other attention kind trained alike (tau <-> dot) with the same tokenizer."""
        other = self.runs.pair_for(run)
        return other if other and self.same_tokens(run, other) else None

    # ------------------------------------------------------------------ probes
    def probe(self, run: str, step: int | None, prompt: str | None) -> ProbeView:
        """The probe of run at (the checkpoint nearest) step on the prompt, cached."""
        step = self.runs.nearest_step(run, step)
        ids, truncated = self.encode(prompt, run)
        if len(ids) < 2:
            raise ConfigError(f"the prompt needs at least 2 tokens ({self.tokenizer_for(run).name})")
        ref = self.runs.ref(run, step)
        key = content_key("probe", ref, ids.tolist())

        def compute():
            model, _ = self.runs.load_ref(ref)
            with self.model_lock:
                result = run_probe(model, torch.as_tensor(ids))
            return probe_view(result, run, step, truncated=truncated, tokenizer=self.tokenizer_for(run))

        return self.cache.get_or_compute("probes", key, compute)

    def probe_pair(self, run: str, step: int | None, compare: str | None, prompt: str | None):
        """(probe of run, probe of compare at its nearest step or None)."""
        a = self.probe(run, step, prompt)
        if not compare or compare not in self.runs.names():
            return a, None
        self.check_same_tokens(run, compare)
        return a, self.probe(compare, self.runs.nearest_step(compare, a.step), prompt)

    def check_same_tokens(self, run: str, compare: str) -> None:
        """Raise the ConfigError that says why two runs with different tokenizers are not compared."""
        if not self.same_tokens(run, compare):
            raise ConfigError(f"{run} ({self.tokenizer_for(run).name} tokens) and {compare} "
                              f"({self.tokenizer_for(compare).name} tokens) cut the prompt into different tokens, "
                              "so their attention maps and predictions are not compared position by position; "
                              "compare their bits per byte on the Training page")

    def js_divergence(self, a: ProbeView, b: ProbeView) -> np.ndarray:
        """Per-head JS divergence [L, H] between two probes of the same prompt (same shape needed)."""
        if a.weights.shape != b.weights.shape:
            raise ConfigError(f"{a.run} and {b.run} have different shapes "
                              f"({a.n_layer}x{a.n_head} vs {b.n_layer}x{b.n_head} heads); JS needs the same layers and heads")
        key = content_key("js", self.runs.ref(a.run, a.step), self.runs.ref(b.run, b.step), a.ids.tolist())
        return self.cache.get_or_compute("results", key, lambda: js_divergence(a.weights, b.weights))

    # ------------------------------------------------------------------ lambda
    def validation_batches(self, run: str, n_batches: int, batch_size: int, *, seed: int = 0, block_size=None):
        """Fixed validation batches [(x, y)] of the run's corpus (cached)."""
        info = self.runs.info(run)
        data = _train_data(info)
        val_fraction = info.train.val_fraction if info.train is not None else 0.1
        T = int(block_size or info.model.block_size)
        key = content_key("val", data, val_fraction, T, n_batches, batch_size, seed)

        def compute():
            batches = load_batches(data, block_size=T, val_fraction=val_fraction)
            return batches.eval_batches(n_batches, batch_size, seed=seed)

        return self.cache.get_or_compute("results", key, compute)

    def lambda_sample(self, run: str, step: int | None, source: str, prompt: str | None) -> dict | None:
        """{"lambda_q": [L,H,N], "lambda_k": [L,H,N]} on the prompt or a validation sample; None for dot."""
        if self.runs.info(run).attention != "tau":
            return None
        if source != "validation":
            view = self.probe(run, step, prompt)
            return {"lambda_q": view.lambda_q, "lambda_k": view.lambda_k}
        ref = self.runs.ref(run, step)
        key = content_key("lambda-val", ref)

        def compute():
            n, T = VAL_SAMPLE
            x, _ = self.validation_batches(run, 1, n, block_size=T)[0]
            model, _ = self.runs.load_ref(ref)
            with self.model_lock:
                result = run_probe(model, x)
            L, B, H, _ = result.lambda_q.shape  # [L,B,H,T] -> [L,H,B*T]
            lk = result.lambda_k.repeat_interleave(result.n_rep, dim=2)
            return {"lambda_q": result.lambda_q.transpose(1, 2).reshape(L, H, -1).numpy(),
                    "lambda_k": lk.transpose(1, 2).reshape(L, H, -1).numpy()}

        return self.cache.get_or_compute("results", key, compute)

    def lambda_resolution(self, view: ProbeView) -> tuple[np.ndarray, np.ndarray] | None:
        """(spread [L,H] of all lambdas a head compares, temperature [L,H]) on the probe; None for dot."""
        if not view.has_lambda:
            return None
        both = np.concatenate([view.lambda_q, view.lambda_k], axis=-1)  # [L,H,2T]
        return both.max(-1) - both.min(-1), view.temperature

    # ---------------------------------------------------------------- spectral
    def spectrum(self, run: str, step: int | None):
        """Eigen-decomposition of the Laplacian the tau run measures its heads against (cached)."""
        ref = self.runs.ref(run, step)
        return self.cache.get_or_compute("results", content_key("spectrum", ref),
                                         lambda: laplacian_spectrum(self.runs.load_ref(ref)[0].laplacian))

    def spectral(self, run: str, step: int | None, prompt: str | None, layer: int, head: int, token: int) -> dict:
        """Why token `token` of head (layer, head) has its lambda_q and lambda_k.

        Returns eigenvalues [D] (ascending), weights_q / weights_k [D] (energy fractions),
        energy_q / energy_k (the energy-weighted mean eigenvalues), tau_q / tau_k, lambda_q /
        lambda_k as the model computed them and as rebuilt from the spectrum, and the token label.
        """
        view = self.probe(run, step, prompt)
        if not view.has_lambda:
            raise ConfigError(f"{run} is a dot-product model: it has no lambda to explain")
        layer, head = int(layer) % view.n_layer, int(head) % view.n_head
        token = int(np.clip(token, 0, view.T - 1))
        spec = self.spectrum(run, view.step)
        x = torch.from_numpy(np.stack([view.q[layer, head, token], view.k[layer, head, token]]))  # [2, D]
        dec = spectral_decomposition(x, spectrum=spec)
        taus = np.array([view.tau_q[layer, head, token], view.tau_k[layer, head, token]], dtype=np.float64)
        rebuilt = dec.lambdas(torch.from_numpy(taus)).numpy()
        return {
            "eigenvalues": dec.eigenvalues.numpy(), "weights_q": dec.weights[0].numpy(),
            "weights_k": dec.weights[1].numpy(), "energy_q": float(dec.energy[0]), "energy_k": float(dec.energy[1]),
            "tau_q": float(taus[0]), "tau_k": float(taus[1]),
            "lambda_q": float(view.lambda_q[layer, head, token]), "lambda_k": float(view.lambda_k[layer, head, token]),
            "lambda_q_rebuilt": float(rebuilt[0]), "lambda_k_rebuilt": float(rebuilt[1]),
            "token": view.tokens[token], "position": token, "layer": layer, "head": head,
        }

    # ------------------------------------------------------------------ what if
    def laplacian_choice(self, run: str, step: int | None, choice: str, *, seed: int = 0):
        """(tensor or None, display name) for a Laplacian choice: model/chain/identity/shuffle or domain:NAME."""
        if not choice or choice == "model":
            return None, "as trained"
        model, _ = self.runs.load(run, step)
        if choice.startswith("domain:"):
            name = choice.split(":", 1)[1]
            memory = self.domains.load(name)
            return as_laplacian_tensor(memory.laplacian, model.config.head_dim, name=f"domain memory {name!r}"), name
        if choice == "shuffle":
            return laplacian_variant(model, "shuffle", seed=seed), f"shuffled (seed {seed})"
        return laplacian_variant(model, choice), choice

    def whatif(self, run: str, step: int | None, prompt: str | None, *, temperature_scale: float = 1.0,
               tau_mode: str | None = None, tau: float | None = None, percentile: float | None = None,
               laplacian: str | None = None, seed: int = 0) -> dict:
        """Probe and validation loss of the tau run before and after a change (cached).

        Returns {"before": ProbeView, "after": ProbeView, "val_loss": (before, after),
        "prompt_loss": (before, after), "change": description}.
        """
        if self.runs.info(run).attention != "tau":
            raise ConfigError(f"{run} is a dot-product model: what-if changes the lambdas of a tau model")
        step = self.runs.nearest_step(run, step)
        ref = self.runs.ref(run, step)
        tau_mode = tau_mode if tau_mode not in (None, "", "model") else None
        laplacian = laplacian or "model"
        tau = tau if tau_mode == "fixed" else None
        percentile = percentile if tau_mode == "percentile" else None
        seed = seed if laplacian == "shuffle" else 0
        key = content_key("whatif", ref, self.encode(prompt, run)[0].tolist(),
                          float(temperature_scale), tau_mode, tau, percentile, laplacian, seed)

        def compute():
            before = self.probe(run, step, prompt)
            L, name = self.laplacian_choice(run, step, laplacian, seed=seed)
            change = Change(temperature_scale=float(temperature_scale), tau_mode=tau_mode, tau=tau,
                            percentile=percentile, laplacian=L, laplacian_name=name)
            batches = self.validation_batches(run, *WHATIF_BATCHES, seed=1)
            loss_before = self.validation_loss(run, step)
            model, _ = self.runs.load_ref(ref)
            with self.model_lock:  # the copy must not carry another thread's probe hooks
                changed = apply_change(model, change, calibration_batches=batches[:1])
            after = probe_view(run_probe(changed, torch.as_tensor(before.ids)), run, step, truncated=before.truncated,
                               tokenizer=self.tokenizer_for(run))
            return {"before": before, "after": after, "val_loss": (loss_before, validation_loss(changed, batches)),
                    "prompt_loss": (before.mean_loss, after.mean_loss), "change": change.describe()}

        return self.cache.get_or_compute("results", key, compute)

    def validation_loss(self, run: str, step: int | None) -> float:
        """Mean loss of the unchanged checkpoint on the what-if validation batches (cached)."""
        ref = self.runs.ref(run, step)
        key = content_key("val-loss", ref, WHATIF_BATCHES)

        def compute():
            batches = self.validation_batches(run, *WHATIF_BATCHES, seed=1)
            model, _ = self.runs.load_ref(ref)
            with self.model_lock:
                return validation_loss(model, batches)

        return self.cache.get_or_compute("results", key, compute)

    # ---------------------------------------------------------- memory and speed
    def kv_cache(self, runs: list[tuple[str, int | None]], contexts=CACHE_CONTEXTS) -> dict:
        """Cache bytes per run and context from real caches; adds head_dim (of the first run)."""
        refs = {r: self.runs.ref(r, s) for r, s in runs}
        key = content_key("kv", list(refs.items()), list(contexts))

        def compute():
            models = {r: self.runs.load_ref(ref)[0] for r, ref in refs.items()}
            out = kv_cache_bytes(models, contexts)
            out["head_dim"] = next(iter(models.values())).config.head_dim
            return out

        return self.cache.get_or_compute("results", key, compute)

    def decode_latency(self, runs: list[tuple[str, int | None]], contexts=LATENCY_CONTEXTS, *,
                       measure: bool = True) -> dict | None:
        """Per-token decode latency measured here (once per session); None if not measured and measure=False."""
        refs = {r: self.runs.ref(r, s) for r, s in runs}
        key = content_key("latency", list(refs.items()), list(contexts))
        if not measure and not self.cache.contains("measurements", key):
            return None

        def compute():
            models = {r: self.runs.load_ref(ref)[0] for r, ref in refs.items()}
            with self.model_lock:  # also keeps probes from timing (and capturing) the same models
                return measure_decode_latency(models, contexts)

        with self._lock:  # one measurement at a time: two at once would time each other
            return self.cache.get_or_compute("measurements", key, compute)
