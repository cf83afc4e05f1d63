"""Benchmarks run end to end on tiny settings; what they count (bytes, shapes) is checked exactly."""

import pytest
import torch
from bench_support import one_thread, parse, quiet  # noqa: F401 -- one_thread is autouse

from tauformer.bench import BENCHMARKS
from tauformer.bench import cache as bench_cache
from tauformer.bench import decode as bench_decode
from tauformer.bench import train as bench_train
from tauformer.cache import TauKVCache, make_cache
from tauformer.errors import ConfigError


def test_new_benchmarks_are_registered():
    for name in ("decode", "cache", "train"):
        assert BENCHMARKS[name] == f"tauformer.bench.{name}"


def test_decode_rows_and_cache_reads():
    torch.set_num_threads(2)  # inside the fixture's one thread: --threads must set, then restore, its own
    threads_before = torch.get_num_threads()
    args = parse(bench_decode, ["--shapes", "demo", "--contexts", "8,20", "--no-cache-contexts", "8",
                                "--steps", "2", "--repeats", "1", "--batch", "2", "--threads", "1"])
    result = bench_decode.run(args, quiet)
    cached = [r for r in result["rows"] if r["cache"] == "yes"]
    assert [r["context"] for r in cached] == [8, 20]
    assert [r["context"] for r in result["rows"] if r["cache"] == "no"] == [8]
    n_layer, H, D, B = 4, 3, 32, 2
    for r in cached:
        keys = r["context"] + 1  # the cached positions plus the new token
        # tau hands attention lambda_k (float32) and V only; dot hands it K and V
        assert r["tau_cache_read_MB"] * 1e6 == n_layer * B * H * keys * (D + 1) * 4
        assert r["dot_cache_read_MB"] * 1e6 == n_layer * B * H * keys * 2 * D * 4
        assert r["read_ratio"] == pytest.approx((D + 1) / (2 * D))
        assert r["tau_ms"] > 0 and r["dot_ms"] > 0 and r["tau/dot"] == pytest.approx(r["tau_ms"] / r["dot_ms"])
    assert result["conditions"]["batch"] == 2 and "omp_wait_policy" in result["conditions"]["before"]
    assert result["conditions"]["before"]["threads"] == 1 and torch.get_num_threads() == threads_before


def test_tau_cache_hands_attention_no_keys():
    models = bench_decode.build_pair(bench_decode.SHAPES["demo"], 256, 32, "cpu")
    tokens = torch.randint(0, 256, (1, 12), generator=torch.Generator().manual_seed(0))
    cache = make_cache(models["tau"], 1, 12)
    assert isinstance(cache, TauKVCache) and not hasattr(cache, "k")
    seen = []
    original = cache.update
    cache.update = lambda layer, a, b: seen.append(original(layer, a, b)) or seen[-1]
    with torch.no_grad():
        models["tau"](tokens[:, :11], cache=cache)
        models["tau"](tokens[:, 11:], cache=cache)
    lambda_k, v = seen[-1]
    assert lambda_k.shape == (1, 3, 12) and lambda_k.dtype == torch.float32  # one scalar per key
    assert v.shape == (1, 3, 12, 32)


def test_prefilled_cache_equals_a_batch_prefill():
    models = bench_decode.build_pair(bench_decode.SHAPES["demo"], 256, 32, "cpu")
    tokens = torch.randint(0, 256, (1, 16), generator=torch.Generator().manual_seed(1)).expand(3, 16)
    for model in models.values():
        with torch.no_grad():
            copied = bench_decode.prefilled_cache(model, tokens, 10, 16)
            direct = make_cache(model, 3, 16)
            model(tokens[:, :10], cache=direct)
        assert copied.pos == direct.pos == 10
        for a, b in zip(copied.tensors(), direct.tensors()):
            assert torch.allclose(a, b, atol=1e-5)


def test_cache_bench_matches_the_formula():
    result = bench_cache.run(parse(bench_cache, ["--head-dims", "8,64", "--dtypes", "float32,bfloat16"]), quiet)
    assert len(result["rows"]) == 6  # 2 head dims + demo, 2 dtypes
    for r in result["rows"]:
        assert r["matches"]
        if r["dtype"] == "float32":
            assert r["tau/dot"] == pytest.approx((r["D"] + 1) / (2 * r["D"]))
            assert r["dot_B/token/layer"] == 2 * r["H_kv"] * r["D"] * 4
        else:
            assert r["tau/dot"] == pytest.approx((r["D"] + 2) / (2 * r["D"]))


def test_train_bench_tiny():
    args = parse(bench_train, ["--blocks", "16", "--tokens", "32", "--variants", "dot,tau,tau-fast",
                               "--repeats", "1", "--warmup", "0", "--threads", "1"])
    result = bench_train.run(args, quiet)
    (row,) = result["rows"]
    assert row["T"] == 16 and row["batch"] == 2
    assert all(row[f"{v}_tok/s"] > 0 for v in ("dot", "tau", "tau-fast"))
    assert row["tau/dot"] == pytest.approx(row["tau_tok/s"] / row["dot_tok/s"])
    assert row["auto_kernel"] == "dense"  # 16 queries are far below the crossover


@pytest.mark.parametrize("module,argv,match", [
    (bench_decode, ["--shapes", "huge"], "--shapes"),
    (bench_decode, ["--contexts", "0"], "--contexts"),
    (bench_train, ["--variants", "tau-magic"], "--variants"),
    (bench_train, ["--blocks", "64", "--tokens", "32"], "--tokens"),
    (bench_cache, ["--dtypes", "int8"], "--dtypes"),
    (bench_cache, ["--head-dims", "7"], "even"),
])
def test_bad_options_are_config_errors(module, argv, match):
    with pytest.raises(ConfigError, match=match):
        module.run(parse(module, argv), quiet)


def test_profiles_name_the_top_operators():
    decode = bench_decode.run(parse(bench_decode, ["--shapes", "demo", "--contexts", "8", "--no-cache-contexts",
                                                   "none", "--steps", "2", "--repeats", "1", "--profile"]), quiet)
    train = bench_train.run(parse(bench_train, ["--blocks", "16", "--tokens", "32", "--variants", "dot,tau",
                                                "--repeats", "1", "--warmup", "0", "--profile"]), quiet)
    assert len(decode["profile"]) == 2 and len(train["profile"]) == 3  # tau, dot; tau, dot, layer parts
    for title, table in [*decode["profile"].items(), *train["profile"].items()]:
        if "parts" in title:
            assert {p["part"] for p in table} >= {"lambda(q,k)", "tau kernel fast", "dot sdpa"}
            assert all(p["ms"] > 0 for p in table)
        else:
            total, *ops = table
            assert total["op"] == "(all ops)" and total["calls"] > 0 and ops
            assert sum(op["self_cpu_ms"] for op in ops) <= total["self_cpu_ms"] + 1e-9
