"""The GPT (SPEC section 4): the same network for both attention kinds.

token embedding -> n_layer x [x += Attn(RMSNorm(x)); x += MLP(RMSNorm(x))] -> RMSNorm -> lm_head,
MLP C -> 4C -> C with ReLU^2, optional logit soft-cap 15 tanh(z / 15). A tau model also holds
its Laplacian as a buffer, so a checkpoint carries its domain memory with it.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .attention import build_attention, rms_norm, rotary_tables
from .config import ModelConfig
from .errors import ConfigError
from .laplacian import as_laplacian_tensor

INIT_GAIN = 0.5


class MLP(nn.Module):
    """C -> 4C, ReLU^2, 4C -> C, no bias."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=False)
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c_proj(F.relu(self.c_fc(x)).square())


class Block(nn.Module):
    """Pre-norm residual block: attention then MLP."""

    def __init__(self, config: ModelConfig, layer_idx: int):
        super().__init__()
        self.attn = build_attention(config, layer_idx)
        self.mlp = MLP(config)

    def forward(self, x, cos, sin, cache=None, laplacian=None):
        x = x + self.attn(rms_norm(x), cos, sin, cache, laplacian)
        return x + self.mlp(rms_norm(x))


class GPT(nn.Module):
    """A nanochat-style GPT with attention config.attention in {"tau", "dot"}.

    Parameters
    ----------
    config : ModelConfig
    laplacian : None, "chain", a tensor (dense or sparse), a scipy.sparse matrix, or a path to a
        domain-memory file. Only for tau models; None means the chain Laplacian of size head_dim.
    """

    def __init__(self, config: ModelConfig, laplacian=None):
        super().__init__()
        self.config = config
        self.transformer = nn.ModuleDict(
            dict(
                wte=nn.Embedding(config.vocab_size, config.n_embd),
                h=nn.ModuleList(Block(config, i) for i in range(config.n_layer)),
            )
        )
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        if config.attention == "tau":
            self.register_buffer("laplacian", as_laplacian_tensor(laplacian, config.head_dim))
        elif laplacian is not None and not (isinstance(laplacian, str) and laplacian == "chain"):
            raise ConfigError("a dot-product model has no Laplacian; pass laplacian only for attention='tau'")
        self._rope: dict = {}
        self._csr = None  # (buffer identity and version, CSR copy) for laplacian_layout="sparse"
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Kaiming-uniform (gain 0.5) for every linear, N(0, 1) for the embedding."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                fan_in = module.weight.shape[1]
                bound = INIT_GAIN * math.sqrt(3.0 / fan_in)
                nn.init.uniform_(module.weight, -bound, bound)
            elif isinstance(module, nn.Embedding):
                nn.init.normal_(module.weight, mean=0.0, std=1.0)

    def rotary(self, start: int, T: int, device):
        """cos, sin [T, D/2] for positions start..start+T-1, from a table grown on demand."""
        key = str(device)
        cos, sin = self._rope.get(key, (None, None))
        if cos is None or cos.shape[0] < start + T:
            n = max(2 * self.config.block_size, 2 * (start + T))
            cos, sin = rotary_tables(0, n, self.config.head_dim, self.config.rope_base, device=device)
            self._rope[key] = (cos, sin)
        return cos[start : start + T], sin[start : start + T]

    def laplacian_operator(self):
        """The Laplacian in the layout attention uses (dense buffer, or CSR when configured).

        The CSR copy is made once and reused until the buffer changes (load_state_dict bumps its
        version, .to() replaces it), not once per forward: a decode step would pay for it.
        """
        if self.config.attention != "tau":
            return None
        if self.config.laplacian_layout != "sparse":
            return self.laplacian
        L = self.laplacian
        key = (L.data_ptr(), L._version, L.device, L.dtype)
        if self._csr is None or self._csr[0] != key:
            self._csr = (key, L.to_sparse_csr())
        return self._csr[1]

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None, cache=None):
        """Logits [B, T, vocab] (float32) and the mean cross-entropy loss (None without targets).

        With a cache, idx holds only the new tokens; their positions continue from cache.pos.
        Targets equal to -1 are ignored.
        """
        B, T = idx.shape
        start = cache.pos if cache is not None else 0
        cos, sin = self.rotary(start, T, idx.device)
        laplacian = self.laplacian_operator()
        x = self.transformer.wte(idx)  # [B,T,C]
        for block in self.transformer.h:
            x = block(x, cos, sin, cache, laplacian)
        if cache is not None:
            cache.advance(T)
        logits = self.lm_head(rms_norm(x)).float()  # [B,T,V]
        if self.config.softcap:
            cap = self.config.softcap
            logits = cap * torch.tanh(logits / cap)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-1)
        return logits, loss

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
