"""Attention kernels side by side: fast, dense and fused Triton tau vs torch's scaled_dot_product_attention.

Causal attention over B x H heads of D (default B = 1, H = 8, D = 64), forward and
forward+backward, for each length T.  The tau kernels get their lambdas given, as SDPA gets
q, k, v given; the "fast+lambda" column also computes lambda from q and k against a D x D
Laplacian (a dense matmul) inside the timing.  The "triton" column is the fused kernel (CUDA, or
CPU tensors under TRITON_INTERPRET=1, which only shows that the path runs).  Every case runs
round-robin with the others (`time_interleaved`), so ratios are fair under load.
"""

from __future__ import annotations

import argparse
import os

import torch
import torch.nn.functional as F

from ..errors import ConfigError
from ..kernels import tau_attention_dense
from ..kernels.fast import tau_attention_fast
from ..kernels.triton_tau import tau_attention_triton, triton_available
from ..laplacian import chain_laplacian
from ..taumode import bound_energy, rayleigh_energy
from .common import load_average, parse_ints, resolve_bench_device, time_interleaved, torch_threads

CPU_T = (512, 1024, 2048, 4096, 8192, 16384)
CUDA_T = (512, 1024, 2048, 4096, 8192, 16384, 32768, 65536)
BATCH_HEADS = (1, 8)  # B, H
HEAD_DIM = 64
KERNELS = ("fast", "dense", "sdpa", "fast+lambda", "triton")
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
    parser.add_argument("--batch", type=int, default=BATCH_HEADS[0], help="batch size B (default 1)")
    parser.add_argument("--heads", type=int, default=BATCH_HEADS[1], help="heads H (default 8)")
    parser.add_argument("--head-dims", default=str(HEAD_DIM), help="comma-separated head dims D (default 64)")
    parser.add_argument("--kernels", default=None,
                        help="which of %s (default: all; triton only where it can run)" % ", ".join(KERNELS))


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
    if args.repeats < 1 or args.batch < 1 or args.heads < 1:
        raise ConfigError("bench attention: --repeats, --batch and --heads must be at least 1")
    head_dims = parse_ints(args.head_dims, "--head-dims", "attention")
    kernels = _kernels(args.kernels, device)
    with torch_threads(args.threads):
        load_before = load_average()
        rows = []
        for D in head_dims:
            for T in lengths:
                for dtype_name in dtypes:
                    for pass_name in passes:
                        row = _measure(T, getattr(torch, dtype_name), pass_name, device, args.repeats,
                                       (args.batch, args.heads, D), kernels)
                        rows.append(row)
                        log(_row_line(row))
        threads = torch.get_num_threads()
        load_after = load_average()
    columns = ["D", "T", "dtype", "pass", "fast_ms", "dense_ms", "sdpa_ms", "fast+lambda_ms", "triton_ms",
               "fast/dense", "fast/sdpa", "triton/sdpa", "max_rel_err", "triton_rel_err"]
    conditions = {"device": str(device), "threads": threads, "B": args.batch, "H": args.heads,
                  "D": head_dims, "kernels": kernels, "temperature": TEMPERATURE, "repeats": args.repeats,
                  "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "unset"),
                  "load_avg_before": load_before, "load_avg_after": load_after}
    summary = _summary(rows)
    if device.type == "cpu" and "OMP_WAIT_POLICY" not in os.environ and threads > 1:
        summary.append("note: OMP_WAIT_POLICY is unset, so idle OpenMP threads spin; when other processes load the "
                       "CPU every parallel op can wait a whole time slice (~8 ms), which punishes kernels made of "
                       "many ops. On a shared machine run with OMP_WAIT_POLICY=PASSIVE (or --threads 1).")
    return {"rows": rows, "columns": columns, "summary": summary, "conditions": conditions}


def _kernels(text: str | None, device: torch.device) -> list[str]:
    """The kernels to time: the listed ones, or all (triton only where it can run)."""
    if text is None:
        return [k for k in KERNELS if k != "triton" or triton_available(device)]
    names = [k.strip() for k in text.split(",") if k.strip()]
    if not names or any(k not in KERNELS for k in names):
        raise ConfigError(f"bench attention: --kernels takes {', '.join(KERNELS)}; got {text!r}")
    if "triton" in names and not triton_available(device):
        raise ConfigError(f"bench attention: the triton kernel cannot run on {device} here "
                          "(CUDA, or CPU with TRITON_INTERPRET=1)")
    return names


def _measure(T: int, dtype: torch.dtype, pass_name: str, device: torch.device, repeats: int,
             shape: tuple[int, int, int] = (*BATCH_HEADS, HEAD_DIM), kernels=KERNELS) -> dict:
    """One case: inputs, the callables to compare, interleaved timing, accuracy against dense."""
    B, H, D = shape
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

    calls = {
        "fast": lambda: tau_attention_fast(lam_q, lam_k, v, temperature=TEMPERATURE),
        "sdpa": lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True),
        "fast+lambda": lambda: tau_attention_fast(_lambda(q, lap), _lambda(k, lap), v, temperature=TEMPERATURE),
        "triton": lambda: tau_attention_triton(lam_q, lam_k, v, temperature=TEMPERATURE),
        "dense": lambda: tau_attention_dense(lam_q, lam_k, v, temperature=TEMPERATURE),
    }
    dense_ok = "dense" in kernels and _dense_fits(B * H, T, pass_name, device)
    fns = {name: case(calls[name]) for name in kernels if name != "dense" or dense_ok}
    sync = torch.cuda.synchronize if device.type == "cuda" else None
    times = time_interleaved(fns, repeats=repeats, warmup=1, sync=sync)
    row = {"D": D, "T": T, "dtype": str(dtype).replace("torch.", ""), "pass": pass_name}
    row.update({f"{name}_ms": sec * 1e3 for name, sec in times.items()})
    for name in ("fast", "triton"):
        if name in times and "sdpa" in times:
            row[f"{name}/sdpa"] = times[name] / times["sdpa"]
    if "dense" in kernels and not dense_ok:
        row["dense_ms"] = "skipped (memory)"
    if dense_ok and "fast" in times:
        row["fast/dense"] = times["fast"] / times["dense"]
    if dense_ok and not grad:
        with torch.no_grad():
            y_dense = tau_attention_dense(lam_q, lam_k, v, temperature=TEMPERATURE).float()
            for name, column in (("fast", "max_rel_err"), ("triton", "triton_rel_err")):
                if name in times:
                    y = calls[name]().float()
                    row[column] = ((y - y_dense).abs().max() / y_dense.abs().max()).item()
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
        parts = [f"D={row['D']} T={row['T']} {row['dtype']} {row['pass']}:"]
        if isinstance(row.get("fast/dense"), float):
            parts.append(f"fast/dense = 1/{1 / row['fast/dense']:.1f}")
        elif row.get("dense_ms") == "skipped (memory)":
            parts.append("dense skipped (memory)")
        for name in ("fast/sdpa", "triton/sdpa"):
            if name in row:
                parts.append(f"{name} = {row[name]:.2f}")
        lines.append(" ".join(parts))
    return lines


def _row_line(row: dict) -> str:
    def ms(name):
        value = row.get(f"{name}_ms")
        return value if isinstance(value, str) else ("-" if value is None else f"{value:.1f} ms")

    times = "  ".join(f"{name} {ms(name)}" for name in ("fast", "dense", "triton", "sdpa") if f"{name}_ms" in row)
    ratios = "  ".join(f"{name} {row[name]:.2f}" for name in ("fast/sdpa", "triton/sdpa") if name in row)
    return f"D={row['D']:3d} T={row['T']:6d} {row['dtype']:8s} {row['pass']:7s} {times}  {ratios}"
