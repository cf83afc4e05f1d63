"""The model compiles as one graph (torch.compile(fullgraph=True)), for both attention kinds.

fullgraph=True turns any graph break into an error.  The quick tests use the "eager" backend
(Dynamo's graph capture, no code generation); the slow ones also run AOT autograd, which traces
the backward and the Triton custom ops' fake implementations, and compare with eager mode.
"""

import pytest
import torch
from conftest import tiny_model

from tauformer.kernels import triton_tau


def _compiled_step(model, backend, x):
    torch._dynamo.reset()
    compiled = torch.compile(model, fullgraph=True, backend=backend)
    _, loss = compiled(x, x)
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}


def _eager_step(model, x):
    _, loss = model(x, x)
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}


def _check_same(attention, backend, tokens, **overrides):
    compiled = _compiled_step(tiny_model(attention, **overrides).train(), backend, tokens)
    eager = _eager_step(tiny_model(attention, **overrides).train(), tokens)
    assert torch.allclose(compiled[0], eager[0], rtol=1e-6, atol=0)
    for name, grad in eager[1].items():
        assert torch.allclose(compiled[1][name], grad, rtol=1e-5, atol=1e-7), name


@pytest.mark.parametrize("attention", ["tau", "dot"])
def test_model_compiles_without_graph_breaks(attention, tokens):
    _check_same(attention, "eager", tokens)


@pytest.mark.slow
@pytest.mark.parametrize("attention", ["tau", "dot"])
def test_model_compiles_with_aot_autograd(attention, tokens):
    _check_same(attention, "aot_eager", tokens)


@pytest.mark.slow
@pytest.mark.skipif(not triton_tau.triton_available("cpu"), reason="needs triton's interpreter on CPU")
def test_triton_kernel_compiles_as_a_custom_op(tokens):
    _check_same("tau", "aot_eager", tokens, tau_kernel="triton")
