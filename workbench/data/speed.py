"""Memory and speed of decoding, measured on this machine with the models' real KV caches.

Cache sizes come from `tauformer.cache.make_cache(...).nbytes` (the preallocated buffers), so
they are what the model would hold, not a formula. Decode latency is timed token by token with
the cache, the models interleaved within each repeat so machine load hits both alike.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from tauformer.cache import make_cache

CACHE_CONTEXTS = (128, 256, 512, 1024, 2048, 4096, 8192)
LATENCY_CONTEXTS = (64, 256, 1024)


def kv_cache_bytes(models: dict, contexts=CACHE_CONTEXTS) -> dict:
    """{"context": [N], "bytes": {name: [N]}} for batch 1, from each model's real cache buffers."""
    out = {name: [] for name in models}
    for ctx in contexts:
        for name, model in models.items():
            out[name].append(make_cache(model, 1, int(ctx)).nbytes)
    return {"context": np.asarray(contexts, dtype=float),
            "bytes": {name: np.asarray(v, dtype=float) for name, v in out.items()}}


@torch.no_grad()
def decode_latency(models: dict, contexts=LATENCY_CONTEXTS, *, new_tokens: int = 8, repeats: int = 3,
                   seed: int = 0) -> dict:
    """Milliseconds per decoded token with the KV cache, per model and context -> [N, repeats].

    For each context c the prompt of c random tokens is prefilled (not timed), then `new_tokens`
    single-token steps are timed. Each repeat runs every (context, model) pair, alternating the
    model order, so slow moments of a shared machine spread over both models.
    """
    gen = torch.Generator().manual_seed(seed)
    vocab = min(m.config.vocab_size for m in models.values())
    prompts = {c: torch.randint(0, vocab, (1, int(c)), generator=gen) for c in contexts}
    names = list(models)
    ms = {name: np.zeros((len(contexts), repeats)) for name in names}
    for m in models.values():
        m.eval()
    for r in range(repeats):
        for i, c in enumerate(contexts):
            for name in (names if (r + i) % 2 == 0 else names[::-1]):
                ms[name][i, r] = _time_decode(models[name], prompts[c], new_tokens)
    return {"context": np.asarray(contexts, dtype=float), "ms": ms, "new_tokens": new_tokens, "repeats": repeats}


def _time_decode(model, prompt: torch.Tensor, new_tokens: int) -> float:
    cache = make_cache(model, 1, prompt.shape[1] + new_tokens)
    logits, _ = model(prompt, cache=cache)
    token = logits[:, -1:].argmax(-1)  # [1, 1]
    start = time.perf_counter()
    for _ in range(new_tokens):
        logits, _ = model(token, cache=cache)
        token = logits[:, -1:].argmax(-1)
    return 1000.0 * (time.perf_counter() - start) / new_tokens
