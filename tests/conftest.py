"""Shared fixtures: tiny models that run in milliseconds on a CPU."""

import os

import pytest
import torch

# Without CUDA, the Triton kernels run on CPU tensors in Triton's interpreter, which must be
# chosen before triton is first imported (nothing above imports it).  With CUDA they compile.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

from tauformer.config import ModelConfig
from tauformer.model import GPT


def tiny_config(attention="tau", **overrides) -> ModelConfig:
    base = dict(vocab_size=256, block_size=32, n_layer=2, n_head=4, n_kv_head=2, n_embd=32,
                attention=attention, tau_mode="calibrated")
    base.update(overrides)
    return ModelConfig(**base)


def tiny_model(attention="tau", seed=0, laplacian=None, **overrides) -> GPT:
    """A tiny model (head_dim 8); a tau model measures against `laplacian` (None: the chain)."""
    torch.manual_seed(seed)
    return GPT(tiny_config(attention, **overrides), laplacian=laplacian).eval()


def random_laplacian(D: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    W = torch.rand(D, D, generator=g) * (torch.rand(D, D, generator=g) < 0.3)
    W = torch.triu(W, 1)
    W = W + W.T
    return torch.diag(W.sum(1)) - W


@pytest.fixture
def tokens():
    g = torch.Generator().manual_seed(123)
    return torch.randint(0, 256, (2, 24), generator=g)
