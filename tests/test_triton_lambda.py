"""The fused Triton lambda kernel against taumode's torch formula (Triton's interpreter on CPU)."""

import pytest
import torch
from conftest import random_laplacian, tiny_model

pytest.importorskip("triton")

from tauformer.kernels import triton_tau  # noqa: E402
from tauformer.kernels.triton_lambda import lambda_kernel_fits, taumode_lambda_triton  # noqa: E402
from tauformer.taumode import Taumode, bound_energy  # noqa: E402

needs_interpreter = pytest.mark.skipif(not triton_tau.triton_available("cpu"),
                                       reason="CPU tensors need TRITON_INTERPRET=1 (set by conftest without CUDA)")


def reference(x, L, tau):
    """taumode's torch formula in float64 (the kernel and the float32 path round differently)."""
    e = (x.double() @ L.double() * x.double()).sum(-1) / ((x.double() ** 2).sum(-1) + 1e-6)
    e = e.clamp_min(0.0)
    return bound_energy(e, torch.as_tensor(tau, dtype=torch.float64)), e


@needs_interpreter
@pytest.mark.parametrize("D", [8, 20, 96, 512])
def test_lambda_and_gradient_match_torch(D):
    L = random_laplacian(D, seed=D)
    g = torch.Generator().manual_seed(D)
    x = torch.randn(2, 3, 5 if D < 512 else 2, D, generator=g)
    x[0, 0, 0] = 0.0  # a zero vector: lambda 0, not NaN
    x = x.requires_grad_(True)
    tau = torch.tensor(0.7)
    lam, e = taumode_lambda_triton(x, L, tau)
    ref_lam, ref_e = reference(x, L, tau)
    assert lam[0, 0, 0].item() == 0.0
    assert torch.allclose(lam.double(), ref_lam, rtol=1e-5, atol=1e-6)
    assert torch.allclose(e.double(), ref_e, rtol=1e-5, atol=1e-5)
    w = torch.randn(lam.shape, generator=g)
    got, = torch.autograd.grad((lam * w).sum(), x)
    want, = torch.autograd.grad((ref_lam * w).sum(), x)
    # d x = c (L x - E x): a difference of similar terms, so float32 keeps ~1e-5 of the largest
    assert ((got - want).abs().max() / want.abs().max()).item() <= 5e-5


@needs_interpreter
def test_negative_energies_are_clipped_without_gradient():
    D = 16
    S = torch.randn(D, D, generator=torch.Generator().manual_seed(1))
    L = (S + S.T) / 2  # symmetric but indefinite: some energies are negative
    x = torch.randn(40, D, generator=torch.Generator().manual_seed(2), requires_grad=True)
    lam, e = taumode_lambda_triton(x, L, 1.3)
    ref_lam, _ = reference(x, L, 1.3)
    raw = (x.detach() @ L * x.detach()).sum(-1)
    assert (raw < 0).any() and (e >= 0).all()
    assert torch.allclose(lam.double(), ref_lam, rtol=1e-5, atol=1e-6)
    got, = torch.autograd.grad(lam.sum(), x)
    want, = torch.autograd.grad(ref_lam.float().sum(), x)
    assert torch.allclose(got, want, rtol=1e-4, atol=1e-6)
    assert got[raw < 0].abs().max() == 0


@needs_interpreter
def test_bfloat16_rows():
    L = random_laplacian(32, seed=3)
    x = torch.randn(10, 32, generator=torch.Generator().manual_seed(4)).bfloat16()
    lam, _ = taumode_lambda_triton(x, L, 0.5)
    assert lam.dtype == torch.float32
    assert torch.allclose(lam.double(), reference(x, L, 0.5)[0], rtol=1e-5, atol=1e-6)  # x read exactly


def test_fits_only_dense_laplacians_up_to_512():
    x = torch.zeros(2, 8)
    assert lambda_kernel_fits(x, torch.eye(8))
    assert not lambda_kernel_fits(x, torch.eye(8).to_sparse_csr())
    assert not lambda_kernel_fits(torch.zeros(2, 640), torch.eye(640))


@needs_interpreter
def test_model_with_the_fused_lambda_matches_the_torch_path(monkeypatch, tokens):
    """The model's Taumode on the fused kernel (allowed on CPU here): same logits, gradients and calibration."""
    results = {}
    for fused in (False, True):
        monkeypatch.setattr(Taumode, "fused_devices", ("cpu",) if fused else ())
        model = tiny_model("tau", laplacian=random_laplacian(8, seed=5)).train()
        _, loss = model(tokens, tokens)
        loss.backward()
        results[fused] = (loss.detach(), model.transformer.h[0].attn.c_k.weight.grad.clone(),
                          model.transformer.h[1].attn.taumode.tau_running.clone())
    for a, b in zip(results[True], results[False]):  # float32 both ways, summed in different orders
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-6)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("D", [32, 128, 384, 512])
def test_cuda_lambda_and_gradient_match_torch(D):
    L = random_laplacian(D, seed=D).cuda()
    x = torch.randn(4, 8, 300, D, device="cuda", requires_grad=True)
    lam, e = taumode_lambda_triton(x, L, torch.tensor(0.7, device="cuda"))
    ref_lam, ref_e = reference(x, L, 0.7)
    assert torch.allclose(lam.double(), ref_lam, rtol=1e-5, atol=1e-6)
    got, = torch.autograd.grad(lam.sum(), x)
    want, = torch.autograd.grad(ref_lam.float().sum(), x)
    assert ((got - want).abs().max() / want.abs().max()).item() <= 5e-5
