"""Fast exact tau attention against the dense reference: forward, backward, numerics, dispatch."""

import pytest
import torch

from tauformer.errors import ConfigError, ShapeError
from tauformer.kernels.fast import plan_precision, tau_attention_fast, temperature_bh
from tauformer.kernels import choose_kernel, tau_attention, tau_attention_dense

DEVICE = "cpu"


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    """Largest absolute difference relative to the largest magnitude of the reference."""
    a, b = a.detach().double(), b.detach().double()
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-30)).item()


def make_inputs(B, H, Tq, Tk, D, *, seed=0, device=DEVICE, dtype=torch.float32, grad=False):
    g = torch.Generator().manual_seed(seed)
    lq = torch.rand(B, H, Tq, generator=g, dtype=torch.float64).to(device, dtype)
    lk = torch.rand(B, H, Tk, generator=g, dtype=torch.float64).to(device, dtype)
    v = torch.randn(B, H, Tk, D, generator=g, dtype=torch.float64).to(device, dtype)
    return tuple(x.requires_grad_(grad) for x in (lq, lk, v))


# The temperature gradient is a sum over all pairs with terms of both signs; in float32 both
# kernels carry ~1e-5 relative error on it (measured against float64), so compare it looser.
GRAD_TOL = {"y": 1e-5, "lambda_q": 1e-4, "lambda_k": 1e-4, "v": 1e-4, "temperature": 3e-4}
GRAD_NAMES = tuple(GRAD_TOL)


def grads_of(kernel, lq, lk, v, t, out_grad, **kw):
    y = kernel(lq, lk, v, temperature=t, **kw)
    inputs = [x for x in (lq, lk, v, t) if isinstance(x, torch.Tensor) and x.requires_grad]
    return (y, *torch.autograd.grad((y * out_grad).sum(), inputs))


# (B, H, Tq, Tk, D, causal, block): T not a power of two, Tq < Tk, Tq = 1, non-causal Tq > Tk,
# batch > 1, small blocks so that several levels of the time split are exercised.
SHAPES = [
    (2, 3, 77, 77, 8, True, 8),
    (1, 2, 50, 300, 8, True, 16),
    (2, 2, 1, 130, 4, True, 8),
    (1, 2, 161, 161, 16, True, 16),
    (1, 4, 100, 100, 8, True, 4),
    (1, 2, 64, 50, 8, False, 8),
    (2, 2, 90, 90, 8, False, 8),
]


def temperature_variants(B, H, device=DEVICE):
    return [0.3, torch.linspace(0.05, 2.0, H, device=device), torch.rand(B, H, device=device) + 0.05]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "B{}H{}Tq{}Tk{}D{}{}b{}".format(*s[:5], "c" if s[5] else "n", s[6]))
def test_forward_matches_dense(shape):
    B, H, Tq, Tk, D, causal, block = shape
    lq, lk, v = make_inputs(B, H, Tq, Tk, D)
    for t in temperature_variants(B, H):
        y = tau_attention_fast(lq, lk, v, temperature=t, causal=causal, block=block)
        ref = tau_attention_dense(lq, lk, v, temperature=t, causal=causal)
        assert y.shape == (B, H, Tq, D) and y.dtype == v.dtype
        assert rel_err(y, ref) <= 1e-5


def test_default_block_many_levels_matches_dense():
    lq, lk, v = make_inputs(1, 2, 1500, 1500, 32, seed=3)
    y = tau_attention_fast(lq, lk, v, temperature=0.05)
    assert rel_err(y, tau_attention_dense(lq, lk, v, temperature=0.05)) <= 1e-5


def test_gqa_expanded_inputs():
    B, H, H_kv, T, D = 2, 4, 2, 90, 8
    g = torch.Generator().manual_seed(1)
    lq = torch.rand(B, H, T, generator=g)
    lk_kv = torch.rand(B, H_kv, T, generator=g)
    v_kv = torch.randn(B, H_kv, T, D, generator=g)
    # repeated copies and stride-0 expanded views must both work
    lk_rep = lk_kv.repeat_interleave(H // H_kv, dim=1)
    v_rep = v_kv.repeat_interleave(H // H_kv, dim=1)
    lk_exp = lk_kv[:, :, None].expand(B, H_kv, H // H_kv, T).reshape(B, H, T)
    v_exp = v_kv[:, :, None].expand(B, H_kv, H // H_kv, T, D).flatten(1, 2)
    assert torch.equal(lk_exp, lk_rep) and torch.equal(v_exp, v_rep)
    ref = tau_attention_dense(lq, lk_rep, v_rep, temperature=0.2)
    for lk, v in ((lk_rep, v_rep), (lk_exp, v_exp)):
        assert rel_err(tau_attention_fast(lq, lk, v, temperature=0.2, block=16), ref) <= 1e-5


@pytest.mark.parametrize("causal,Tq,Tk", [(True, 70, 70), (True, 33, 100), (False, 40, 57)])
def test_gradients_match_dense_float32(causal, Tq, Tk):
    B, H, D = 2, 3, 8
    lq, lk, v = make_inputs(B, H, Tq, Tk, D, seed=5, grad=True)
    out_grad = torch.randn(B, H, Tq, D, generator=torch.Generator().manual_seed(6))
    for t0 in (torch.tensor([0.05, 0.3, 1.5]), torch.rand(B, H) + 0.1):
        t = t0.clone().requires_grad_(True)
        fast = grads_of(tau_attention_fast, lq, lk, v, t, out_grad, causal=causal, block=8)
        dense = grads_of(tau_attention_dense, lq, lk, v, t, out_grad, causal=causal)
        for name, a, b in zip(GRAD_NAMES, fast, dense):
            assert rel_err(a, b) <= GRAD_TOL[name], name


@pytest.mark.parametrize("causal,Tq,Tk", [(True, 7, 7), (True, 5, 11), (False, 6, 9)])
def test_gradcheck_float64(causal, Tq, Tk):
    lq, lk, v = make_inputs(1, 2, Tq, Tk, 3, seed=7, dtype=torch.float64, grad=True)
    t = torch.tensor([0.3, 0.8], dtype=torch.float64, requires_grad=True)

    def fn(a, b, c, temp):
        return tau_attention_fast(a, b, c, temperature=temp, causal=causal, block=2)

    assert torch.autograd.gradcheck(fn, (lq, lk, v, t))


def test_gradcheck_float64_batch_temperature():
    lq, lk, v = make_inputs(2, 1, 6, 6, 2, seed=8, dtype=torch.float64, grad=True)
    t = torch.tensor([[0.2], [0.7]], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b, c, temp: tau_attention_fast(a, b, c, temperature=temp, block=2),
                                    (lq, lk, v, t))


@pytest.mark.parametrize("t", [1e-4, 1e-3, 0.005, 0.02, 0.1, 1.0, 10.0, 1e3])
def test_temperature_extremes_finite_and_exact(t):
    lq, lk, v = make_inputs(1, 2, 150, 150, 8, seed=9, grad=True)
    y = tau_attention_fast(lq, lk, v, temperature=t, block=16)
    assert torch.isfinite(y).all()
    ref = tau_attention_dense(lq, lk, v, temperature=t)
    assert rel_err(y, ref) <= 1e-5
    grads = torch.autograd.grad(y.square().sum(), (lq, lk, v))
    assert all(torch.isfinite(gr).all() for gr in grads)


@pytest.mark.parametrize("t,grad_scale", [(1 / 69, 1.0), (0.02, 1e6), (0.005, 1.0)])
def test_far_queries_backward_stays_finite(t, grad_scale):
    # early queries at lambda 0 see only keys near 1: their total weight Z is ~exp(-1/t), so the
    # backward rows g / Z are huge; the backward must widen its dtype (or go dense), not overflow
    T = 200
    lq, lk, v = make_inputs(1, 2, T, T, 8, seed=17)
    lq[..., :40] = 0.0
    lk[..., :40] = 1.0 - 1e-7
    out_grad = grad_scale * torch.randn(1, 2, T, 8, generator=torch.Generator().manual_seed(18))
    results = []
    for kernel, kw in ((tau_attention_fast, {"block": 16}), (tau_attention_dense, {})):
        leaves = [x.clone().requires_grad_(True) for x in (lq, lk, v)]
        temp = torch.tensor(t, requires_grad=True)
        results.append(grads_of(kernel, *leaves, temp, out_grad, **kw))
    for name, a, b in zip(GRAD_NAMES, *results):
        assert torch.isfinite(a).all(), name
        assert rel_err(a, b) <= GRAD_TOL[name], name


def test_precision_plan_by_temperature():
    lq, lk, v = make_inputs(1, 2, 20, 20, 4)
    plan = {t: plan_precision(lq, lk, v, temperature_bh(t, 1, 2, DEVICE)) for t in (1.0, 0.02, 0.005, 1e-4)}
    assert plan[1.0][0] == torch.float32 and plan[0.02][0] == torch.float32
    assert plan[0.005][0] == torch.float64
    assert plan[1e-4] is None  # only the dense kernel is safe there
    # non-positive temperatures are never run by the factorised kernel
    assert plan_precision(lq, lk, v, temperature_bh(-1.0, 1, 2, DEVICE)) is None


def _tie_cases(B, H, T):
    g = torch.Generator().manual_seed(11)
    equal = torch.full((B, H, T), 0.37)
    quantised = (torch.rand(B, H, T, generator=g) * 4).floor() / 4  # many duplicates, includes 0
    zeros = torch.zeros(B, H, T)
    near_one = 1.0 - torch.rand(B, H, T, generator=g) * 1e-6
    ends = torch.where(torch.rand(B, H, T, generator=g) < 0.5, 0.0, 1.0 - 1e-7)
    return {"equal": (equal, equal.clone()), "quantised": (quantised, quantised.flip(-1).clone()),
            "zeros": (zeros, zeros.clone()), "near_one": (near_one, near_one.flip(-1).clone()),
            "zero_and_one": (ends, ends.flip(-1).clone())}


@pytest.mark.parametrize("case", ["equal", "quantised", "zeros", "near_one", "zero_and_one"])
def test_lambda_ties_and_edges(case):
    B, H, T, D = 1, 2, 120, 8
    lq0, lk0 = _tie_cases(B, H, T)[case]
    v0 = torch.randn(B, H, T, D, generator=torch.Generator().manual_seed(12))
    out_grad = torch.randn(B, H, T, D, generator=torch.Generator().manual_seed(13))
    results = []
    for kernel, kw in ((tau_attention_fast, {"block": 16}), (tau_attention_dense, {})):
        lq, lk, v = (x.clone().requires_grad_(True) for x in (lq0, lk0, v0))
        t = torch.tensor(0.05, requires_grad=True)
        results.append(grads_of(kernel, lq, lk, v, t, out_grad, **kw))
    for name, a, b in zip(GRAD_NAMES, *results):
        assert torch.isfinite(a).all(), name
        # exact ties get the zero subgradient of |x| at 0, as autograd gives the dense kernel
        assert (a - b).abs().max() <= 1e-4 * max(b.abs().max().item(), 1.0), name


def test_bfloat16_values():
    lq, lk, v = make_inputs(1, 2, 200, 200, 16, seed=14)
    vb = v.bfloat16()
    y = tau_attention_fast(lq, lk, vb, temperature=0.1, block=16)
    assert y.dtype == torch.bfloat16
    assert rel_err(y.float(), tau_attention_dense(lq, lk, v, temperature=0.1)) <= 2e-2
    vb.requires_grad_(True)
    (grad_v,) = torch.autograd.grad(tau_attention_fast(lq, lk, vb, temperature=0.1, block=16).float().sum(), vb)
    assert grad_v.dtype == torch.bfloat16 and torch.isfinite(grad_v.float()).all()


def test_outputs_do_not_share_scratch_memory():
    lq, lk, v = make_inputs(1, 2, 300, 300, 8, seed=15)
    y1 = tau_attention_fast(lq, lk, v, temperature=0.1, block=16)
    keep = y1.clone()
    tau_attention_fast(lk, lq, -v, temperature=0.2, block=16)  # reuses the scratch buffers
    assert torch.equal(y1, keep)


def test_bad_arguments_raise_clear_errors():
    lq, lk, v = make_inputs(1, 2, 10, 10, 4)
    with pytest.raises(ConfigError, match="block"):
        tau_attention_fast(lq, lk, v, block=0)
    with pytest.raises(ShapeError, match="temperature"):
        tau_attention_fast(lq, lk, v, temperature=torch.ones(3))
    with pytest.raises(ShapeError, match="Tq <= Tk"):
        tau_attention_fast(lk, lq[..., :5], v[..., :5, :])


def test_choose_kernel_rules():
    assert choose_kernel(1, 100_000, "cpu") == "dense"  # decode
    assert choose_kernel(64, 4096, "cpu") == "dense"  # few queries
    assert choose_kernel(128, 128, "cpu") == "dense"  # short
    assert choose_kernel(256, 256, "cpu") == "fast"
    assert choose_kernel(256, 256, "cpu", needs_grad=True) == "dense"  # backward moves the crossover
    assert choose_kernel(2048, 2048, "cpu", needs_grad=True) == "fast"
    # many heads at once: the dense copies outgrow the caches, so fast wins earlier ...
    assert choose_kernel(256, 256, "cpu", batch_heads=48, needs_grad=True) == "fast"
    assert choose_kernel(256, 256, "cpu", batch_heads=8, needs_grad=True) == "dense"
    assert choose_kernel(64, 4096, "cpu", batch_heads=48) == "dense"  # still too few queries
    # ... and with one head the fast kernel's fixed cost needs a longer sequence
    assert choose_kernel(256, 256, "cpu", batch_heads=1) == "dense"
    assert choose_kernel(512, 512, "cpu", batch_heads=1) == "dense"
    assert choose_kernel(1024, 1024, "cpu", batch_heads=1) == "fast"
    # CUDA without Triton: measured on an H200, dense wins to 4096
    assert choose_kernel(16384, 16384, "cuda", use_triton=False) == "fast"
    assert choose_kernel(4096, 4096, "cuda", use_triton=False) == "dense"
    assert choose_kernel(512, 512, "cuda", use_triton=False) == "dense"
    assert choose_kernel(512, 512, "cuda", use_triton=True) == "triton"
    assert choose_kernel(1, 512, "cuda", use_triton=True) == "triton"
    assert choose_kernel(4096, 4096, "cpu", use_triton=True) == "fast"  # never on the CPU
    # the dense weight matrix would not fit: fast whatever the length
    assert choose_kernel(100, 200_000, "cpu", batch_heads=64) == "fast"


@pytest.mark.parametrize("T", [100, 300])
def test_auto_dispatch_consistent(T):
    lq, lk, v = make_inputs(1, 2, T, T, 8, seed=16)
    auto = tau_attention(lq, lk, v, temperature=0.1, kernel="auto")
    fast = tau_attention(lq, lk, v, temperature=0.1, kernel="fast")
    dense = tau_attention(lq, lk, v, temperature=0.1, kernel="dense")
    assert rel_err(auto, dense) <= 1e-5 and rel_err(fast, dense) <= 1e-5
    expected = dense if choose_kernel(T, T, "cpu", batch_heads=2) == "dense" else fast
    assert torch.equal(auto, expected)
    # with gradients wanted, auto follows the forward + backward crossover
    lq.requires_grad_(True)
    auto_grad = tau_attention(lq, lk, v, temperature=0.1, kernel="auto")
    expected = dense if choose_kernel(T, T, "cpu", batch_heads=2, needs_grad=True) == "dense" else fast
    assert torch.equal(auto_grad.detach(), expected)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_single_query_inference_path_matches_weights(dtype):
    """Decoding (one query, no autograd) takes a leaner path; it gives the weights' result."""
    from tauformer.kernels import tau_attention_weights

    B, H, Tk = 2, 3, 41
    lq, lk, v = make_inputs(B, H, 1, Tk, 8, seed=21)
    v = v.to(dtype)
    for t in temperature_variants(B, H) + [1e-30, 1e6]:
        expected = (tau_attention_weights(lq, lk, temperature=t).to(dtype) @ v)
        with torch.no_grad():
            got = tau_attention(lq, lk, v, temperature=t, kernel="dense")
        assert got.dtype == dtype and got.shape == (B, H, 1, 8)
        assert torch.isfinite(got.float()).all()
        assert torch.equal(got, expected)  # same operations on the same values: bit for bit


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
class TestCuda:
    """The same comparisons on the GPU (run by scripts/gpu_check.sh)."""

    @pytest.mark.parametrize("shape", SHAPES + [(2, 4, 3000, 3000, 64, True, 128)])
    def test_forward_matches_dense(self, shape):
        B, H, Tq, Tk, D, causal, block = shape
        lq, lk, v = make_inputs(B, H, Tq, Tk, D, device="cuda")
        for t in temperature_variants(B, H, device="cuda"):
            y = tau_attention_fast(lq, lk, v, temperature=t, causal=causal, block=block)
            ref = tau_attention_dense(lq, lk, v, temperature=t, causal=causal)
            assert y.device.type == "cuda" and rel_err(y, ref) <= 1e-5

    @pytest.mark.parametrize("causal,Tq,Tk", [(True, 700, 700), (True, 333, 1000), (False, 400, 570)])
    def test_gradients_match_dense(self, causal, Tq, Tk):
        B, H, D = 2, 3, 32
        lq, lk, v = make_inputs(B, H, Tq, Tk, D, seed=5, device="cuda", grad=True)
        out_grad = torch.randn(B, H, Tq, D, device="cuda")
        t = torch.tensor([0.05, 0.3, 1.5], device="cuda", requires_grad=True)
        fast = grads_of(tau_attention_fast, lq, lk, v, t, out_grad, causal=causal, block=64)
        dense = grads_of(tau_attention_dense, lq, lk, v, t, out_grad, causal=causal)
        for name, a, b in zip(GRAD_NAMES, fast, dense):
            assert rel_err(a, b) <= GRAD_TOL[name], name

    def test_gradcheck_float64(self):
        lq, lk, v = make_inputs(1, 2, 9, 9, 3, seed=7, device="cuda", dtype=torch.float64, grad=True)
        t = torch.tensor([0.3, 0.8], dtype=torch.float64, device="cuda", requires_grad=True)
        assert torch.autograd.gradcheck(
            lambda a, b, c, temp: tau_attention_fast(a, b, c, temperature=temp, block=2), (lq, lk, v, t))

    @pytest.mark.parametrize("t", [1e-4, 0.005, 0.02, 1.0, 1e3])
    def test_temperature_extremes(self, t):
        lq, lk, v = make_inputs(1, 2, 500, 500, 16, seed=9, device="cuda")
        y = tau_attention_fast(lq, lk, v, temperature=t, block=32)
        assert torch.isfinite(y).all()
        assert rel_err(y, tau_attention_dense(lq, lk, v, temperature=t)) <= 1e-5

    def test_bfloat16_values(self):
        lq, lk, v = make_inputs(2, 4, 2048, 2048, 64, seed=14, device="cuda")
        y = tau_attention_fast(lq, lk, v.bfloat16(), temperature=0.1)
        assert y.dtype == torch.bfloat16
        assert rel_err(y.float(), tau_attention_dense(lq, lk, v, temperature=0.1)) <= 2e-2

    def test_auto_dispatch_consistent(self):
        lq, lk, v = make_inputs(1, 2, 2500, 2500, 16, seed=16, device="cuda")
        auto = tau_attention(lq, lk, v, temperature=0.1)
        dense = tau_attention_dense(lq, lk, v, temperature=0.1)
        assert rel_err(auto, dense) <= 1e-5
