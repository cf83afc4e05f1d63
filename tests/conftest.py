"""Shared fixtures: tiny models that run in milliseconds on a CPU."""

import pytest
import torch

from tauformer.config import ModelConfig
from tauformer.model import GPT


def tiny_config(attention="tau", **overrides) -> ModelConfig:
    base = dict(vocab_size=256, block_size=32, n_layer=2, n_head=4, n_kv_head=2, n_embd=32,
                attention=attention, tau_mode="calibrated")
    base.update(overrides)
    return ModelConfig(**base)


def tiny_model(attention="tau", seed=0, **overrides) -> GPT:
    torch.manual_seed(seed)
    return GPT(tiny_config(attention, **overrides)).eval()


@pytest.fixture
def tokens():
    g = torch.Generator().manual_seed(123)
    return torch.randint(0, 256, (2, 24), generator=g)
