"""StaticDecoder: fixed-shape decode steps over a static cache equal the full forward pass."""

import pytest
import torch
from conftest import tiny_model

from tauformer.errors import ShapeError
from tauformer.graph_decode import StaticDecoder
from tauformer.kernels import triton_tau


def decode_all(model, tokens, prompt, **kw):
    """Logits of positions prompt-1 .. T-1 from a prefill of `prompt` tokens and static steps."""
    dec = StaticDecoder(model, tokens.shape[0], tokens.shape[1], **kw)
    out = [dec.prefill(tokens[:, :prompt]).clone()]
    for i in range(prompt, tokens.shape[1]):
        out.append(dec.step(tokens[:, i:i + 1]).clone())
    return torch.stack(out, 1), dec


def full_logits(model, tokens, prompt):
    with torch.no_grad():
        return model(tokens)[0][:, prompt - 1:]


KERNELS = ["dense"] + (["triton"] if triton_tau.triton_available("cpu") else [])


@pytest.mark.parametrize("attention,kernel", [("dot", None)] + [("tau", k) for k in KERNELS])
def test_static_steps_equal_the_full_forward(attention, kernel, tokens):
    model = tiny_model(attention)  # GQA: 4 query heads, 2 kv heads
    got, dec = decode_all(model, tokens, 10, graph=False, kernel=kernel)
    assert dec.cache.pos == tokens.shape[1] and int(dec.pos) == tokens.shape[1]
    ref = full_logits(model, tokens, 10)
    assert (got - ref).abs().max().item() <= 1e-5 * ref.abs().max().item()


def test_rewinding_reuses_the_cache(tokens):
    model = tiny_model("tau")
    dec = StaticDecoder(model, tokens.shape[0], tokens.shape[1], graph=False, kernel="dense")
    dec.prefill(tokens[:, :12])
    first = dec.step(tokens[:, 12:13]).clone()
    dec.step(tokens[:, 13:14])
    dec.set_position(12)  # entries past 12 are masked, then overwritten
    assert torch.equal(dec.step(tokens[:, 12:13]), first)
    dec.set_position(tokens.shape[1])
    with pytest.raises(ShapeError):
        dec.step(tokens[:, :1])


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("attention", ["tau", "dot"])
def test_graph_captured_steps_equal_the_full_forward(attention, tokens):
    model = tiny_model(attention).cuda()
    tokens = tokens.cuda()
    got, dec = decode_all(model, tokens, 10)
    assert dec._graph is not None and (attention == "dot" or dec.kernel == "triton")
    ref = full_logits(model, tokens, 10)
    assert (got - ref).abs().max().item() <= 1e-5 * ref.abs().max().item()
