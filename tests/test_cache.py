"""KV caches (SPEC section 5): decoding reproduces the full forward; the tau cache is ~half."""

import pytest
import torch

from tauformer.cache import DotKVCache, TauKVCache, generate, make_cache
from tauformer.errors import ShapeError

from conftest import tiny_model


@pytest.mark.parametrize("attention", ["tau", "dot"])
@pytest.mark.parametrize("kernel", ["dense", "auto"])
def test_cached_decoding_reproduces_full_forward_logits(attention, kernel, tokens):
    model = tiny_model(attention, tau_kernel=kernel)
    full, _ = model(tokens)
    cache = make_cache(model, batch_size=2, max_len=tokens.shape[1])
    steps = [model(tokens[:, :9], cache=cache)[0]]  # prefill 9 tokens, then one at a time
    for t in range(9, tokens.shape[1]):
        steps.append(model(tokens[:, t : t + 1], cache=cache)[0])
    decoded = torch.cat(steps, dim=1)
    assert cache.pos == tokens.shape[1]
    assert (decoded - full).abs().max() < 1e-5


@pytest.mark.parametrize("attention", ["tau", "dot"])
def test_greedy_generation_is_identical_with_and_without_cache(attention, tokens):
    model = tiny_model(attention)
    prompt = tokens[:, :6]
    with_cache = generate(model, prompt, 40, use_cache=True)  # runs past block_size=32
    without = generate(model, prompt, 40, use_cache=False)
    assert with_cache.shape == (2, 46)
    assert torch.equal(with_cache, without)


def test_sampling_is_reproducible_with_a_generator(tokens):
    model = tiny_model("tau")
    runs = [generate(model, tokens[:, :4], 20, temperature=1.0, top_k=10,
                     generator=torch.Generator().manual_seed(5)) for _ in range(2)]
    assert torch.equal(runs[0], runs[1])


@pytest.mark.parametrize("D", [8, 32, 64])
def test_tau_cache_bytes_are_d_plus_one_over_two_d_of_dot(D):
    shape = dict(n_layer=3, batch_size=2, n_kv_head=2, max_len=50, head_dim=D)
    tau, dot = TauKVCache(**shape), DotKVCache(**shape)
    assert dot.nbytes == 3 * 2 * 2 * 2 * 50 * D * 4
    assert tau.nbytes / dot.nbytes == pytest.approx((D + 1) / (2 * D))


def test_model_cache_kinds_and_ratio_at_head_dim_32():
    tau = tiny_model("tau", n_embd=128, n_head=4, n_kv_head=4)
    dot = tiny_model("dot", n_embd=128, n_head=4, n_kv_head=4)
    tc, dc = make_cache(tau, 1, 64), make_cache(dot, 1, 64)
    assert isinstance(tc, TauKVCache) and isinstance(dc, DotKVCache)
    assert tc.nbytes / dc.nbytes == pytest.approx(33 / 64)  # 0.516 at D = 32 (SPEC)


def test_cache_overflow_is_a_clear_error(tokens):
    model = tiny_model("tau")
    cache = make_cache(model, 2, 10)
    with pytest.raises(ShapeError, match="cache holds 10 positions"):
        model(tokens[:, :12], cache=cache)
