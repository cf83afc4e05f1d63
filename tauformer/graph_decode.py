"""Decode steps with fixed shapes over a static cache, captured once in a CUDA graph.

A cached decode step of a small model is a few hundred small kernels; issuing them from Python
costs more than running them.  `StaticDecoder` runs the model's layers for one token with every
shape fixed: the position lives in a device tensor, new keys are written into the preallocated
cache with index_copy_, and attention reads the whole buffer with keys past the position masked
(tau: the split-K Triton kernel with a length, or the dense kernel with a mask; dot: SDPA with a
mask).  On CUDA the step is captured in a CUDA graph and each token is one graph replay; the
position advances inside the graph.  Same weights and modules as `GPT.forward`, so the logits
equal a full forward pass (tests/test_graph_decode.py).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .attention import TauAttention, repeat_kv, rms_norm
from .cache import make_cache
from .kernels import as_temperature
from .kernels.triton_tau import triton_available


class StaticDecoder:
    """Single-token steps of ``model`` (eval mode, no grad) for batch_size rows, up to max_len positions.

    ``graph``: capture the step in a CUDA graph (default: on CUDA).  ``kernel``: tau attention
    over the cache, "triton" or "dense" (default: triton where it can run).  ``cache``: a cache
    of `make_cache(model, batch_size, max_len)`'s kind to continue from (call `set_position`).
    """

    def __init__(self, model, batch_size: int, max_len: int, *, graph: bool | None = None, kernel: str | None = None,
                 cache=None):
        self.model = model.eval()
        self.cache = make_cache(model, batch_size, max_len) if cache is None else cache  # or one already filled
        device = self.cache.v.device
        self.use_graph = device.type == "cuda" if graph is None else graph
        self.kernel = kernel or ("triton" if triton_available(device) else "dense")
        self.pos = torch.zeros((), dtype=torch.long, device=device)  # where the next token goes
        self.token = torch.zeros((batch_size, 1), dtype=torch.long, device=device)
        self.keys = torch.arange(max_len, device=device)
        self.cos, self.sin = model.rotary(0, max_len, device)  # [max_len, D/2]
        self.logits = torch.zeros((batch_size, model.config.vocab_size), device=device)
        self._graph = None

    @torch.no_grad()
    def prefill(self, idx: torch.Tensor) -> torch.Tensor:
        """Run the prompt idx [B, T] through the model into the cache; logits of its last position [B, V]."""
        logits, _ = self.model(idx, cache=self.cache)
        self.set_position(self.cache.pos)
        return logits[:, -1]

    def set_position(self, n: int) -> None:
        """Continue after n cached positions (entries at and past n are overwritten or masked)."""
        self.cache.pos = n
        self.pos.fill_(n)

    @torch.no_grad()
    def step(self, token: torch.Tensor) -> torch.Tensor:
        """Logits [B, V] after appending token [B, 1]; the returned tensor is reused by the next step."""
        self.cache._slot(1)  # refuses a step past max_len
        self.token.copy_(token)
        if self.use_graph:
            if self._graph is None:
                self._capture()
            self._graph.replay()
        else:
            self._forward()
        self.cache.pos += 1
        return self.logits

    def _capture(self) -> None:
        """Warm up (compiles the Triton kernels) on a side stream, then record one step."""
        start = self.pos.clone()
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(2):
                self._forward()
        torch.cuda.current_stream().wait_stream(side)
        self.pos.copy_(start)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            self._forward()
        self.pos.copy_(start)  # recording ran nothing; the first replay is the first step
        self._graph = graph

    def _forward(self) -> None:
        """One token through every layer at position self.pos; writes self.logits, advances self.pos."""
        model, cache = self.model, self.cache
        at = self.pos.view(1)
        cos, sin = self.cos.index_select(0, at), self.sin.index_select(0, at)  # [1, D/2]
        laplacian = model.laplacian_operator()
        x = model.transformer.wte(self.token)  # [B,1,C]
        for layer, block in enumerate(model.transformer.h):
            attn = block.attn
            q, k, v = attn.project(rms_norm(x), cos, sin)
            if isinstance(attn, TauAttention):
                y = self._tau(attn, layer, q, k, v, laplacian, at)
            else:
                y = self._dot(attn, layer, q, k, v, at)
            x = x + attn.merge(y)
            x = x + block.mlp(rms_norm(x))
        logits = model.lm_head(rms_norm(x)).float()[:, -1]  # [B,V]
        if model.config.softcap:
            cap = model.config.softcap
            logits = cap * torch.tanh(logits / cap)
        self.logits.copy_(logits)
        self.pos += 1

    def _tau(self, attn, layer, q, k, v, laplacian, at):
        lambda_q, lambda_k = attn.taumode(q, k, laplacian)  # [B,H,1], [B,Hkv,1]
        lk_all, v_all = self.cache.lambda_k[layer], self.cache.v[layer]  # [B,Hkv,max_len(,D)]
        lk_all.index_copy_(2, at, lambda_k.float())
        v_all.index_copy_(2, at, v.to(v_all.dtype))
        B, H = lambda_q.shape[:2]
        if self.kernel == "triton":
            from .kernels.triton_decode import tau_decode_triton

            t_bh = as_temperature(attn.temperature(), lambda_q).reshape(B, H)
            return tau_decode_triton(lambda_q, lk_all, v_all, t_bh, length=self.pos + 1)
        n_rep = H // lk_all.shape[1]
        t = as_temperature(attn.temperature(), lambda_q)  # [B,H,1,1]
        logits = -(lambda_q.float().unsqueeze(-1) - repeat_kv(lk_all, n_rep).unsqueeze(-2)).abs() / t  # [B,H,1,L]
        logits = logits.masked_fill(self.keys > self.pos, float("-inf"))
        att = torch.softmax(logits, dim=-1)
        return att.to(v_all.dtype) @ repeat_kv(v_all, n_rep)  # [B,H,1,D]

    def _dot(self, attn, layer, q, k, v, at):
        k_all, v_all = self.cache.k[layer], self.cache.v[layer]  # [B,Hkv,max_len,D]
        k_all.index_copy_(2, at, k.to(k_all.dtype))
        v_all.index_copy_(2, at, v.to(v_all.dtype))
        n_rep = attn.n_head // attn.n_kv_head
        mask = (self.keys <= self.pos).view(1, 1, 1, -1)  # keys up to and including this position
        return F.scaled_dot_product_attention(q, repeat_kv(k_all, n_rep), repeat_kv(v_all, n_rep), attn_mask=mask)
