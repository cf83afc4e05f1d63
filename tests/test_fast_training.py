"""Training with the fast tau kernel follows training with the dense one, step for step."""

import pytest
import torch
from conftest import tiny_config

from tauformer.kernels import fast as fast_tau
from tauformer.config import TrainConfig
from tauformer.data import TokenBatches, load_corpus
from tauformer.model import GPT
from tauformer.train import build_optimizer

STEPS = 5
T = 96


def train_steps(kernel: str, batches) -> tuple[list[float], GPT]:
    """STEPS AdamW steps (grad clipping as in training) of a tiny GQA tau model, seed 0."""
    torch.manual_seed(0)
    config = tiny_config("tau", block_size=T, tau_kernel=kernel, learn_temperature=True)
    model = GPT(config).train()
    optimizer = build_optimizer(model, TrainConfig(lr=3e-3))
    losses = []
    for x, y in batches:
        _, loss = model(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
    return losses, model


@pytest.fixture(scope="module")
def batches():
    data = TokenBatches(load_corpus(None), block_size=T)
    g = torch.Generator().manual_seed(7)
    return [data.batch("train", 2, g) for _ in range(STEPS)]


def test_fast_kernel_trains_like_dense(batches, monkeypatch):
    # small blocks so that T = 96 splits into 4 levels and the prefix-sum paths carry the result
    monkeypatch.setattr(fast_tau, "DEFAULT_BLOCK", 8)
    calls = []
    original = fast_tau.attention_sums
    monkeypatch.setattr(fast_tau, "attention_sums", lambda *a, **k: calls.append(1) or original(*a, **k))

    dense_losses, dense = train_steps("dense", batches)
    assert not calls
    fast_losses, fast = train_steps("fast", batches)
    assert calls  # the fast kernel really ran, forward and backward

    assert dense_losses[-1] < dense_losses[0] - 0.1  # it is training, not standing still
    for a, b in zip(fast_losses, dense_losses):
        assert a == pytest.approx(b, rel=1e-5, abs=0)
    fast_params, dense_params = dict(fast.named_parameters()), dict(dense.named_parameters())
    for name, p in dense_params.items():
        diff = (fast_params[name] - p).abs().max().item()
        assert diff <= 1e-5 * max(1.0, p.abs().max().item()), f"{name} differs by {diff:.3g}"
    for name, buf in dense.named_buffers():  # calibrated tau follows the same energies
        assert torch.allclose(dict(fast.named_buffers())[name].float(), buf.float(), rtol=1e-5, atol=0), name
