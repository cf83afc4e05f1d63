"""Attention kernels side by side: fast tau vs dense tau vs torch's scaled_dot_product_attention.

Causal attention over B*H = 8 heads of D = 64, forward and forward+backward, for each length T.
The tau kernels get their lambdas given, as SDPA gets q, k, v given; the "fast+lambda" column
also computes lambda from q and k against a D x D Laplacian (a dense matmul) inside the timing.
Every case runs round-robin with the others (`time_interleaved`), so ratios are fair under load.
"""

from __future__ import annotations

import argparse
import math
import os

import torch
import torch.nn.functional as F

from ..errors import ConfigError
from ..kernels.fast import tau_attention_fast
from ..kernels import tau_attention_dense
from ..laplacian import chain_laplacian
from ..taumode import bound_energy, rayleigh_energy
from .common import load_average, parse_ints, resolve_bench_device, time_interleaved, torch_threads

CPU_T = (512, 1024, 2048, 4096, 8192, 16384)
CUDA_T = (512, 1024, 2048, 4096, 8192, 16384, 32768, 65536)
BATCH_HEADS = (1, 8)  # B, H
HEAD_DIM = 64
TEMPERATURE = 0.1
# Dense tau keeps about this many [B*H, T, T] float32 copies alive at its peak.
DENSE_COPIES = {"fwd": 3, "fwd+bwd": 7}
DENSE_MEMORY_SHARE = 0.5  # of the free memory


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `python -m tauformer bench attention`."""
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--T", default=None, help="comma-separated lengths (default: %s on CPU, %s on CUDA)"
                        % (",".join(map(str, CPU_T)), ",".join(map(str, CUDA_T))))
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds per case (median reported)")
    parser.add_argument("--passes", default="fwd,fwd+bwd", help="fwd, fwd+bwd or both (comma-separated)")
    parser.add_argument("--dtypes", default=None, help="float32 and/or bfloat16 (default: float32 on CPU, both on CUDA)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")


def run(args: argparse.Namespace, log) -> dict:
    """Time every (T, dtype, pass) case; rows hold medians in ms and the ratios."""
    device = resolve_bench_device(args.device, "attention")
    lengths = parse_ints(args.T, "--T", "attention") if args.T else (CPU_T if device.type == "cpu" else CUDA_T)
    passes = [p.strip() for p in args.passes.split(",") if p.strip()]
    if any(p not in DENSE_COPIES for p in passes):
        raise ConfigError(f"bench attention: --passes takes fwd and/or fwd+bwd, got {args.passes!r}")
    dtypes = args.dtypes.split(",") if args.dtypes else (["float32"] if device.type == "cpu" else ["float32", "bfloat16"])
    if any(d not in ("float32", "bfloat16") for d in dtypes):
        raise ConfigError(f"bench attention: --dtypes takes float32 and/or bfloat16, got {args.dtypes!r}")
    if args.repeats < 1:
        raise ConfigError("bench attention: --repeats must be at least 1")
    with torch_threads(args.threads):
        load_before = load_average()
        rows = []
        for T in lengths:
            for dtype_name in dtypes:
                for pass_name in passes:
                    row = _measure(T, getattr(torch, dtype_name), pass_name, device, args.repeats)
                    rows.append(row)
                    log(_row_line(row))
        threads = torch.get_num_threads()
        load_after = load_average()
    columns = ["T", "dtype", "pass", "fast_ms", "dense_ms", "sdpa_ms", "fast+lambda_ms",
               "fast/dense", "fast/sdpa", "max_rel_err"]
    conditions = {"device": str(device), "threads": threads, "B*H": math.prod(BATCH_HEADS),
                  "D": HEAD_DIM, "temperature": TEMPERATURE, "repeats": args.repeats,
                  "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "unset"),
                  "load_avg_before": load_before, "load_avg_after": load_after}
    summary = _summary(rows)
    if device.type == "cpu" and "OMP_WAIT_POLICY" not in os.environ and threads > 1:
        summary.append("note: OMP_WAIT_POLICY is unset, so idle OpenMP threads spin; when other processes load the "
                       "CPU every parallel op can wait a whole time slice (~8 ms), which punishes kernels made of "
                       "many ops. On a shared machine run with OMP_WAIT_POLICY=PASSIVE (or --threads 1).")
    return {"rows": rows, "columns": columns, "summary": summary, "conditions": conditions}


def _measure(T: int, dtype: torch.dtype, pass_name: str, device: torch.device, repeats: int) -> dict:
    """One case: inputs, the callables to compare, interleaved timing, accuracy of fast vs dense."""
    B, H = BATCH_HEADS
    D = HEAD_DIM
    grad = pass_name == "fwd+bwd"
    gen = torch.Generator(device="cpu").manual_seed(T)

    def rand(*shape, kind="normal", dt=dtype):
        x = torch.randn(*shape, generator=gen) if kind == "normal" else torch.rand(*shape, generator=gen)
        return x.to(device=device, dtype=dt).requires_grad_(grad)

    q, k, v = (rand(B, H, T, D) for _ in range(3))
    lam_q, lam_k = (rand(B, H, T, kind="uniform", dt=torch.float32) for _ in range(2))
    lap = chain_laplacian(D).to(device=device, dtype=torch.float32)
    out_grad = torch.randn(B, H, T, D, generator=gen).to(device=device, dtype=dtype)
    leaves = (q, k, v, lam_q, lam_k)

    def case(forward):
        if not grad:
            def fn():
                with torch.no_grad():
                    return forward()
            return fn

        def fn():
            for leaf in leaves:
                leaf.grad = None
            forward().backward(out_grad)
        return fn

    fns = {
        "fast": case(lambda: tau_attention_fast(lam_q, lam_k, v, temperature=TEMPERATURE)),
        "sdpa": case(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True)),
        "fast+lambda": case(lambda: tau_attention_fast(_lambda(q, lap), _lambda(k, lap), v, temperature=TEMPERATURE)),
    }
    dense_ok = _dense_fits(B * H, T, pass_name, device)
    if dense_ok:
        fns["dense"] = case(lambda: tau_attention_dense(lam_q, lam_k, v, temperature=TEMPERATURE))
    sync = torch.cuda.synchronize if device.type == "cuda" else None
    times = time_interleaved(fns, repeats=repeats, warmup=1, sync=sync)
    row = {"T": T, "dtype": str(dtype).replace("torch.", ""), "pass": pass_name,
           "fast_ms": times["fast"] * 1e3, "sdpa_ms": times["sdpa"] * 1e3,
           "fast+lambda_ms": times["fast+lambda"] * 1e3, "fast/sdpa": times["fast"] / times["sdpa"]}
    if dense_ok:
        row["dense_ms"] = times["dense"] * 1e3
        row["fast/dense"] = times["fast"] / times["dense"]
        if not grad:
            with torch.no_grad():
                y_fast = tau_attention_fast(lam_q, lam_k, v, temperature=TEMPERATURE).float()
                y_dense = tau_attention_dense(lam_q, lam_k, v, temperature=TEMPERATURE).float()
            row["max_rel_err"] = ((y_fast - y_dense).abs().max() / y_dense.abs().max()).item()
    else:
        row["dense_ms"] = "skipped (memory)"
        row["fast/dense"] = ""
    row.setdefault("max_rel_err", "")
    return row


def _lambda(x: torch.Tensor, lap: torch.Tensor) -> torch.Tensor:
    """Bounded Rayleigh quotient lambda = E / (E + 1), E = x L x / (x x + eps), per head vector."""
    return bound_energy(rayleigh_energy(x, lap), 1.0)


def _dense_fits(batch_heads: int, T: int, pass_name: str, device: torch.device) -> bool:
    """Whether dense tau's [B*H, T, T] float32 copies fit comfortably in free memory."""
    need = DENSE_COPIES[pass_name] * batch_heads * T * T * 4
    if device.type == "cuda":
        free = torch.cuda.mem_get_info(device)[0]
    else:
        import psutil

        free = psutil.virtual_memory().available
    return need <= DENSE_MEMORY_SHARE * free


def _summary(rows: list[dict]) -> list[str]:
    lines = []
    for row in rows:
        parts = [f"T={row['T']} {row['dtype']} {row['pass']}:"]
        if isinstance(row.get("fast/dense"), float):
            parts.append(f"fast/dense = 1/{1 / row['fast/dense']:.1f}")
        else:
            parts.append("dense skipped (memory)")
        parts.append(f"fast/sdpa = {row['fast/sdpa']:.2f}")
        lines.append(" ".join(parts))
    return lines


def _row_line(row: dict) -> str:
    dense = row["dense_ms"] if isinstance(row["dense_ms"], str) else f"{row['dense_ms']:.1f} ms"
    return (f"T={row['T']:6d} {row['dtype']:8s} {row['pass']:7s} fast {row['fast_ms']:9.1f} ms  "
            f"dense {dense}  sdpa {row['sdpa_ms']:9.1f} ms  fast/sdpa {row['fast/sdpa']:.2f}")
