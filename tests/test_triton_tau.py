"""Fused Triton tau attention against the dense reference: forward, all four gradients, decode.

Without CUDA the kernels run on CPU tensors in Triton's interpreter (tests/conftest.py sets
TRITON_INTERPRET=1 before triton is imported); sizes stay small because the interpreter is slow.
The gpu-marked tests repeat the comparisons with compiled kernels on CUDA.
"""

import pytest
import torch

pytest.importorskip("triton")  # only where triton is genuinely absent (it is in the dev extra)

from tauformer.errors import ConfigError  # noqa: E402
from tauformer.kernels import tau_attention  # noqa: E402
from tauformer.kernels import triton_tau  # noqa: E402
from tauformer.kernels.triton_decode import plan_splits, tau_decode_triton  # noqa: E402

needs_interpreter = pytest.mark.skipif(not triton_tau.interpreting(),
                                       reason="CPU tensors need TRITON_INTERPRET=1 (set by conftest without CUDA)")
gpu = pytest.mark.gpu


def rel_err(a, b) -> float:
    a, b = a.detach().double(), b.detach().double()
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-30)).item()


def make_inputs(B, H, H_kv, Tq, Tk, D, *, seed=0, device="cpu", dtype=torch.float32, ties=False):
    g = torch.Generator().manual_seed(seed)
    lq = torch.rand(B, H, Tq, generator=g, dtype=torch.float64)
    lk = torch.rand(B, H_kv, Tk, generator=g, dtype=torch.float64)
    if ties:  # a few distinct values: many exact ties between queries and keys (sign 0)
        lq, lk = (lq * 4).floor() / 4, (lk * 4).floor() / 4
    # laid out as the model hands it over: [B, T, H_kv, D] viewed as [B, H_kv, T, D] (not contiguous)
    v = torch.randn(B, Tk, H_kv, D, generator=g, dtype=torch.float64).transpose(1, 2)
    return lq.float().to(device), lk.float().to(device), v.to(device=device, dtype=dtype)


def forward_and_grads(kernel, lq, lk, v, t, out_grad, causal):
    """y and d(y . out_grad) / d(lq, lk, v, t), for one kernel, on fresh leaves."""
    leaves = [x.detach().clone().requires_grad_(True) for x in (lq, lk, v, t)]
    y = tau_attention(*leaves[:3], temperature=leaves[3], causal=causal, kernel=kernel)
    grads = torch.autograd.grad((y.float() * out_grad.float()).sum(), leaves)
    return (y, *grads)


def compare_with_dense(shape, t, *, causal, device="cpu", dtype=torch.float32, ties=False, seed=0):
    """Relative errors of the triton kernel's y, d lq, d lk, d v, d t against float64 dense."""
    B, H, H_kv, Tq, Tk, D = shape
    lq, lk, v = make_inputs(B, H, H_kv, Tq, Tk, D, seed=seed, device=device, dtype=dtype, ties=ties)
    t = torch.as_tensor(t, dtype=torch.float32, device=device)
    out_grad = torch.randn(B, Tq, H, D, generator=torch.Generator().manual_seed(seed + 1)).to(device).transpose(1, 2)
    got = forward_and_grads("triton", lq, lk, v, t, out_grad.to(dtype), causal)
    # the reference: the dense kernel in float64 on the same (rounded) inputs
    ref = forward_and_grads("dense", lq.double(), lk.double(), v.double(), t.double(), out_grad.double(), causal)
    assert got[0].dtype == dtype and got[0].shape == (B, H, Tq, D)
    return {name: rel_err(a, b) for name, a, b in zip(("y", "lambda_q", "lambda_k", "v", "t"), got, ref)}


# (B, H, H_kv, Tq, Tk, D): odd sizes that leave partial tiles, Tq < Tk, GQA, D not a power of two
SHAPES = [
    (2, 4, 2, 37, 53, 20),
    (1, 3, 3, 40, 40, 16),
    (1, 4, 1, 19, 64, 8),
    (2, 2, 2, 1, 29, 12),
]
TEMPERATURES = torch.tensor([0.02, 0.5, 2.0, 10.0])  # per head
F32_TOL = {"y": 1e-5, "lambda_q": 1e-4, "lambda_k": 1e-4, "v": 1e-5, "t": 1e-4}


@needs_interpreter
@pytest.mark.parametrize("causal", [True, False], ids=["causal", "full"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "B{}H{}kv{}Tq{}Tk{}D{}".format(*s))
def test_float32_forward_and_gradients_match_dense(shape, causal):
    t = TEMPERATURES[: shape[1]]
    errs = compare_with_dense(shape, t, causal=causal)
    for name, tol in F32_TOL.items():
        assert errs[name] <= tol, f"{name}: {errs[name]:.2e}"


@needs_interpreter
def test_scalar_temperature():
    errs = compare_with_dense((1, 2, 2, 20, 20, 8), 0.3, causal=True)
    assert max(errs.values()) <= 1e-4, errs


@needs_interpreter
@pytest.mark.parametrize("shape", [(2, 4, 2, 37, 53, 20), (1, 2, 2, 40, 40, 16)], ids=["gqa", "mha"])
def test_deterministic_backward_matches_dense(shape, monkeypatch):
    monkeypatch.setattr(triton_tau, "DETERMINISTIC_BACKWARD", True)  # the second, query-tile kernel
    errs = compare_with_dense(shape, TEMPERATURES[: shape[1]], causal=True)
    for name, tol in F32_TOL.items():
        assert errs[name] <= tol, f"{name}: {errs[name]:.2e}"


@needs_interpreter
def test_ties_get_sign_zero_like_the_dense_gradient():
    errs = compare_with_dense((1, 2, 2, 24, 40, 8), torch.tensor([0.1, 1.0]), causal=True, ties=True)
    assert max(errs.values()) <= 1e-4, errs


@needs_interpreter
def test_per_batch_and_head_temperature():
    errs = compare_with_dense((2, 2, 1, 17, 17, 8), torch.tensor([[0.03, 0.7], [1.5, 0.2]]), causal=True)
    assert max(errs.values()) <= 1e-4, errs


@needs_interpreter
def test_bfloat16_within_its_precision():
    errs = compare_with_dense((1, 4, 2, 33, 33, 32), torch.tensor([0.05, 0.2, 1.0, 3.0]), causal=True,
                              dtype=torch.bfloat16)
    # bf16 keeps 8 significant bits (relative step 2^-8 ~ 4e-3); P is rounded to bf16 for P V
    for name, err in errs.items():
        assert err <= 3e-2, f"{name}: {err:.2e}"


@needs_interpreter
def test_decode_kernel_matches_dense_and_respects_length():
    B, H, H_kv, Tk, D = 2, 4, 2, 300, 20
    lq, lk, v = make_inputs(B, H, H_kv, 1, Tk, D, seed=3)
    t = torch.tensor([0.02, 0.3, 1.0, 7.0])
    with torch.no_grad():
        y = tau_attention(lq, lk, v, temperature=t, kernel="triton")  # Tq = 1 without grad: split-K
        ref = tau_attention(lq, lk, v, temperature=t, kernel="dense")
        assert plan_splits(Tk, B * H_kv, "cpu")[0] > 1  # really split
        assert rel_err(y, ref) <= 1e-5
        n = 97  # a static cache of Tk slots with only the first n filled
        y_n = tau_decode_triton(lq, lk, v, t.expand(B, H), length=torch.tensor([n], dtype=torch.int32))
        ref_n = tau_attention(lq, lk[..., :n], v[:, :, :n], temperature=t, kernel="dense")
        assert rel_err(y_n, ref_n) <= 1e-5


def test_cpu_tensors_without_the_interpreter_are_refused(monkeypatch):
    monkeypatch.setattr(triton_tau, "interpreting", lambda: False)
    lq, lk, v = make_inputs(1, 1, 1, 4, 4, 4)
    with pytest.raises(ConfigError, match="TRITON_INTERPRET"):
        tau_attention(lq, lk, v, kernel="triton")


@needs_interpreter
def test_float64_values_are_refused():
    lq, lk, v = make_inputs(1, 1, 1, 4, 4, 4)
    with pytest.raises(ConfigError, match="float64"):
        tau_attention(lq, lk, v.double(), kernel="triton")


def test_a_model_configured_for_triton_runs_where_triton_cannot(monkeypatch, tokens):
    monkeypatch.setattr(triton_tau, "interpreting", lambda: False)
    dense, fused = _tiny_pair()
    with torch.no_grad():
        assert torch.equal(fused(tokens)[0], dense(tokens)[0])  # the same kernel ("auto" -> dense) ran


def test_gqa_shapes_are_checked_and_read_by_index():
    from tauformer.errors import ShapeError

    lq, lk, v = make_inputs(2, 4, 2, 9, 12, 8)
    y = tau_attention(lq, lk, v, temperature=0.3, kernel="dense")
    ref = tau_attention(lq, lk.repeat_interleave(2, 1), v.repeat_interleave(2, 1), temperature=0.3, kernel="dense")
    assert torch.equal(y, ref)  # query head h reads kv head h // 2
    with pytest.raises(ShapeError, match="Tq <= Tk"):
        tau_attention(lk.repeat(1, 2, 2)[:, :, :20], lk, v, kernel="dense")
    with pytest.raises(ShapeError):
        tau_attention(lq[:, :3], lk, v, kernel="dense")  # 3 query heads cannot share 2 kv heads


def test_auto_never_picks_triton_on_cpu():
    from tauformer.kernels import choose_kernel

    for T in (1, 64, 4096):
        assert choose_kernel(T, T, "cpu") != "triton"


# ---------------------------------------------------------------------------------------------
# CUDA: compiled kernels (scripts/gpu_check.sh)

GPU_SHAPES = [(2, 8, 2, 1000, 1000, 64), (1, 4, 4, 300, 1029, 128), (4, 8, 8, 2048, 2048, 64)]


@gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("causal", [True, False], ids=["causal", "full"])
@pytest.mark.parametrize("shape", GPU_SHAPES, ids=lambda s: "B{}H{}kv{}Tq{}Tk{}D{}".format(*s))
def test_cuda_matches_dense(shape, causal):
    H = shape[1]
    t = torch.linspace(0.02, 10.0, H)
    errs = compare_with_dense(shape, t, causal=causal, device="cuda")
    for name, tol in F32_TOL.items():
        assert errs[name] <= tol * 10, f"{name}: {errs[name]:.2e}"  # long sums: 10x looser than small sizes
    errs = compare_with_dense(shape, t, causal=causal, device="cuda", dtype=torch.bfloat16)
    assert max(errs.values()) <= 5e-2, errs


@gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_decode_matches_dense():
    lq, lk, v = make_inputs(2, 8, 2, 1, 5000, 64, device="cuda")
    t = torch.linspace(0.02, 2.0, 8, device="cuda")
    with torch.no_grad():
        assert rel_err(tau_attention(lq, lk, v, temperature=t, kernel="triton"),
                       tau_attention(lq, lk, v, temperature=t, kernel="dense")) <= 1e-5


# ---------------------------------------------------------------------------------------------
# the model with tau_kernel="triton"


def _tiny_pair(**overrides):
    from conftest import tiny_model

    return tiny_model("tau", tau_kernel="dense", **overrides), tiny_model("tau", tau_kernel="triton", **overrides)


@needs_interpreter
def test_model_forward_and_cached_decode_match_dense(tokens):
    from tauformer.cache import make_cache

    dense, fused = _tiny_pair()  # GQA: 4 query heads, 2 kv heads
    with torch.no_grad():
        ref, _ = dense(tokens)
        got, _ = fused(tokens)
        assert rel_err(got, ref) <= 1e-5
        cache = make_cache(fused, tokens.shape[0], tokens.shape[1])
        fused(tokens[:, :16], cache=cache)
        steps = [fused(tokens[:, i:i + 1], cache=cache)[0] for i in range(16, tokens.shape[1])]
    assert rel_err(torch.cat(steps, 1), ref[:, 16:]) <= 1e-5


def _training_follows_dense(device, T=32, **shape):
    from conftest import tiny_config

    from tauformer.config import TrainConfig
    from tauformer.model import GPT
    from tauformer.train import build_optimizer

    g = torch.Generator().manual_seed(7)
    batches = [torch.randint(0, 256, (2, T + 1), generator=g).to(device) for _ in range(3)]
    losses = {}
    for kernel in ("dense", "triton"):
        torch.manual_seed(0)
        config = tiny_config("tau", tau_kernel=kernel, learn_temperature=True, block_size=T, **shape)
        model = GPT(config).to(device).train()
        opt = build_optimizer(model, TrainConfig(lr=3e-3))
        losses[kernel] = []
        for b in batches:
            _, loss = model(b[:, :-1], b[:, 1:])
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            losses[kernel].append(loss.item())
        losses[kernel + "_temp"] = [m.attn.log_temperature.detach().clone() for m in model.transformer.h]
    assert losses["triton"] == pytest.approx(losses["dense"], rel=1e-5, abs=0)
    for a, b in zip(losses["triton_temp"], losses["dense_temp"]):  # the temperature gradient reached it
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-6)
    assert not torch.equal(losses["dense_temp"][0], torch.full_like(losses["dense_temp"][0],
                                                                    losses["dense_temp"][0][0].item()))


@needs_interpreter
def test_training_steps_follow_the_dense_kernel():
    _training_follows_dense("cpu")


@gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_training_steps_follow_the_dense_kernel():
    # float32 (no autocast), several tiles per head, GQA, the fused lambda kernel in both runs
    _training_follows_dense("cuda", T=300, n_layer=2, n_head=4, n_kv_head=2, n_embd=256)
