"""KV caches and generation (SPEC section 5).

The dot model caches (K, V): 2 * B * H_kv * T * D values per layer. The tau model caches
(V, lambda_k): B * H_kv * T * (D + 1) values, since attention needs only the keys' lambdas.
Both are preallocated for max_len positions. lambda_k is stored in float32 whatever V's dtype.
"""

from __future__ import annotations

import torch

from .errors import ShapeError
from .runtime import eval_mode


class _PreallocatedCache:
    """Fixed-size per-layer buffers filled left to right; `pos` counts the positions filled."""

    def __init__(self, n_layer: int, max_len: int):
        self.n_layer = n_layer
        self.max_len = max_len
        self.pos = 0

    def _slot(self, T: int) -> slice:
        if self.pos + T > self.max_len:
            raise ShapeError(f"cache holds {self.max_len} positions; {self.pos} used, {T} more requested")
        return slice(self.pos, self.pos + T)

    def advance(self, T: int) -> None:
        """Mark T more positions as filled (called once per forward, after every layer wrote)."""
        self.pos += T

    def tensors(self) -> list[torch.Tensor]:
        raise NotImplementedError

    @property
    def nbytes(self) -> int:
        """Bytes held by the preallocated buffers."""
        return sum(t.numel() * t.element_size() for t in self.tensors())

    def bytes_per_token(self) -> float:
        """Bytes per cached position, all layers together, per batch row."""
        B = self.tensors()[0].shape[1]
        return self.nbytes / (self.max_len * B)


class DotKVCache(_PreallocatedCache):
    """(K, V) per layer: k, v [n_layer, B, H_kv, max_len, D]."""

    def __init__(self, n_layer, batch_size, n_kv_head, max_len, head_dim, *, dtype=torch.float32, device=None):
        super().__init__(n_layer, max_len)
        shape = (n_layer, batch_size, n_kv_head, max_len, head_dim)
        self.k = torch.zeros(shape, dtype=dtype, device=device)
        self.v = torch.zeros(shape, dtype=dtype, device=device)

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor):
        """Store new k, v [B, H_kv, T, D]; return all keys and values so far [B, H_kv, pos+T, D]."""
        slot = self._slot(k.shape[2])
        self.k[layer, :, :, slot] = k
        self.v[layer, :, :, slot] = v
        return self.k[layer, :, :, : slot.stop], self.v[layer, :, :, : slot.stop]

    def tensors(self):
        return [self.k, self.v]


class TauKVCache(_PreallocatedCache):
    """(V, lambda_k) per layer: v [n_layer, B, H_kv, max_len, D], lambda_k [n_layer, B, H_kv, max_len]."""

    def __init__(self, n_layer, batch_size, n_kv_head, max_len, head_dim, *, dtype=torch.float32, device=None):
        super().__init__(n_layer, max_len)
        self.v = torch.zeros((n_layer, batch_size, n_kv_head, max_len, head_dim), dtype=dtype, device=device)
        self.lambda_k = torch.zeros((n_layer, batch_size, n_kv_head, max_len), dtype=torch.float32, device=device)

    def update(self, layer: int, lambda_k: torch.Tensor, v: torch.Tensor):
        """Store new lambda_k [B, H_kv, T] and v [B, H_kv, T, D]; return everything so far."""
        slot = self._slot(v.shape[2])
        self.lambda_k[layer, :, :, slot] = lambda_k
        self.v[layer, :, :, slot] = v
        return self.lambda_k[layer, :, :, : slot.stop], self.v[layer, :, :, : slot.stop]

    def tensors(self):
        return [self.v, self.lambda_k]


def make_cache(model, batch_size: int, max_len: int, *, dtype=None, device=None):
    """The cache that fits `model` (DotKVCache or TauKVCache), on the model's device by default."""
    cfg = model.config
    param = next(model.parameters())
    cls = TauKVCache if cfg.attention == "tau" else DotKVCache
    return cls(cfg.n_layer, batch_size, cfg.n_kv_head, max_len, cfg.head_dim,
               dtype=dtype or param.dtype, device=device or param.device)


def sample_next(logits: torch.Tensor, *, temperature: float = 0.0, top_k: int | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """Next token ids [B, 1] from logits [B, V]: argmax at temperature 0, else top-k sampling."""
    if temperature <= 0:
        return logits.argmax(dim=-1, keepdim=True)
    logits = logits / temperature
    if top_k is not None and top_k < logits.size(-1):
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = torch.softmax(logits, dim=-1)
    return torch.multinomial(probs, 1, generator=generator)


@torch.no_grad()
def generate(model, idx: torch.Tensor, max_new_tokens: int, *, temperature: float = 0.0,
             top_k: int | None = None, use_cache: bool = True, generator: torch.Generator | None = None):
    """Extend idx [B, T] by max_new_tokens tokens -> [B, T + max_new_tokens].

    With the cache, the prompt is run once and each new token costs one position; without it,
    the whole sequence is re-run per token. Greedy results are identical either way. Context
    is never cropped (RoPE has no length limit), so both paths see the same tokens.
    """
    with eval_mode(model):
        out = idx
        if max_new_tokens <= 0:
            return out
        if use_cache:
            cache = make_cache(model, idx.shape[0], idx.shape[1] + max_new_tokens)
            logits, _ = model(idx, cache=cache)
            for i in range(max_new_tokens):
                nxt = sample_next(logits[:, -1], temperature=temperature, top_k=top_k, generator=generator)
                out = torch.cat([out, nxt], dim=1)
                if i + 1 < max_new_tokens:
                    logits, _ = model(nxt, cache=cache)
        else:
            for _ in range(max_new_tokens):
                logits, _ = model(out)
                nxt = sample_next(logits[:, -1], temperature=temperature, top_k=top_k, generator=generator)
                out = torch.cat([out, nxt], dim=1)
        return out
