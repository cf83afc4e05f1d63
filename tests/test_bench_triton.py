"""The benchmarks' Triton paths run end to end at tiny sizes (CPU tensors under Triton's interpreter).

On a GPU these are the paths `scripts/gpu_check.sh` times; here they only show that nothing crashes
and that the rows carry the triton columns, with the kernel agreeing with dense.
"""

import pytest
import torch
from bench_support import one_thread, parse, quiet  # noqa: F401 -- one_thread is autouse

pytest.importorskip("triton")

from tauformer.bench import attention as bench_attention  # noqa: E402
from tauformer.bench import decode as bench_decode  # noqa: E402
from tauformer.bench import train as bench_train  # noqa: E402
from tauformer.errors import ConfigError  # noqa: E402
from tauformer.kernels import triton_tau  # noqa: E402

pytestmark = pytest.mark.skipif(not triton_tau.triton_available("cpu"),
                                reason="CPU tensors need TRITON_INTERPRET=1 (set by conftest without CUDA)")


def test_attention_bench_times_the_triton_kernel():
    args = parse(bench_attention, ["--T", "40", "--kernels", "triton,dense,sdpa", "--repeats", "1",
                                   "--batch", "1", "--heads", "2", "--head-dims", "16", "--passes", "fwd,fwd+bwd"])
    rows = bench_attention.run(args, quiet)["rows"]
    assert [(r["pass"], r["D"]) for r in rows] == [("fwd", 16), ("fwd+bwd", 16)]
    assert all(r["triton_ms"] > 0 and r["triton/sdpa"] > 0 for r in rows)
    assert rows[0]["triton_rel_err"] <= 1e-5  # forward against dense, float32


def test_attention_bench_default_kernels_include_triton_where_it_runs():
    assert "triton" in bench_attention._kernels(None, torch.device("cpu"))
    with pytest.raises(ConfigError, match="--kernels"):
        bench_attention._kernels("flash", torch.device("cpu"))


def test_train_bench_has_a_triton_variant():
    args = parse(bench_train, ["--blocks", "16", "--tokens", "32", "--variants", "dot,tau-triton",
                               "--repeats", "1", "--warmup", "0"])
    (row,) = bench_train.run(args, quiet)["rows"]
    assert row["tau-triton_tok/s"] > 0 and row["dot_tok/s"] > 0


def test_decode_bench_graph_steps_run():
    args = parse(bench_decode, ["--shapes", "demo", "--contexts", "24", "--no-cache-contexts", "none",
                                "--steps", "2", "--repeats", "1", "--graph"])
    (row,) = bench_decode.run(args, quiet)["rows"]
    assert row["cache"] == "graph" and row["tau_ms"] > 0 and row["dot_ms"] > 0
    assert row["read_ratio"] == pytest.approx(33 / 64, rel=1e-3)  # (D + 1) / (2 D), D = 32
