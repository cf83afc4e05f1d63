"""Training throughput of the tau and dot models: tokens/s of forward + backward + AdamW steps.

The demo model shape (4 layers, 3 heads, n_embd 96, head dim 32) on the bundled corpus, at each
block length with the same tokens per step (batch = tokens // block).  A step is what
`tauformer.train` does: forward with the loss, backward, gradient clipping, AdamW, zero grad;
float32 on CPU, bf16 autocast on CUDA.  The tau model runs with its default kernel choice
("auto") and, for comparison, forced to the dense and to the fast kernel.  All variants see the
same batches, their steps are interleaved round by round (order alternating), and each figure is
the median step time.  `--profile` adds where a step's time goes (top ops per variant) and the
tau-specific parts of one layer timed alone (lambda, tau kernel) against dot's attention.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from ..config import ModelConfig, TrainConfig
from ..data import TokenBatches, load_corpus
from ..errors import ConfigError
from ..kernels import choose_kernel, tau_attention
from ..kernels.triton_tau import triton_available
from ..model import GPT
from ..runtime import autocast
from ..train import build_optimizer, optimisation_step
from .common import (
    cpu_conditions,
    parse_ints,
    resolve_bench_device,
    time_interleaved,
    torch_threads,
)
from .profile import attach_profiles, top_ops

DEMO_SHAPE = dict(vocab_size=256, n_layer=4, n_head=3, n_kv_head=3, n_embd=96)  # head dim 32
BLOCKS = (256, 1024)
TOKENS_PER_STEP = 4096  # the demo trains 16 x 256
# the small reference preset (SPEC section 4): head dim 128
SHAPES = {"demo": DEMO_SHAPE, "small": dict(vocab_size=256, n_layer=12, n_head=6, n_kv_head=6, n_embd=768)}
VARIANTS = {"dot": ("dot", "auto"), "tau": ("tau", "auto"), "tau-dense": ("tau", "dense"),
            "tau-fast": ("tau", "fast"), "tau-triton": ("tau", "triton")}
DEFAULT_VARIANTS = ("dot", "tau", "tau-dense", "tau-fast")  # + tau-triton where it runs
GRAD_CLIP = TrainConfig().grad_clip


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `python -m tauformer bench train`."""
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--blocks", default=",".join(map(str, BLOCKS)), help="block lengths T")
    parser.add_argument("--tokens", type=int, default=TOKENS_PER_STEP, help="tokens per step (batch = tokens // T)")
    parser.add_argument("--variants", default=None,
                        help="which of %s (default: all but tau-triton, which joins where Triton runs)"
                        % ", ".join(VARIANTS))
    parser.add_argument("--shape", choices=tuple(SHAPES), default="demo",
                        help="model shape: demo (4 x 3 x 96) or small (12 x 6 x 768)")
    parser.add_argument("--compile", action="store_true", help="torch.compile every model (both variants alike)")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved rounds (one timed step each)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps per variant first")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--profile", action="store_true", help="also report where a step's time goes")


def run(args: argparse.Namespace, log) -> dict:
    """One row per block length: tokens/s of each variant and tau/dot."""
    device = resolve_bench_device(args.device, "train")
    blocks = parse_ints(args.blocks, "--blocks", "train")
    if args.variants is None:
        variants = list(DEFAULT_VARIANTS) + (["tau-triton"] if triton_available(device) else [])
    else:
        variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    if not variants or any(v not in VARIANTS for v in variants):
        raise ConfigError(f"bench train: --variants takes {', '.join(VARIANTS)}; got {args.variants!r}")
    if args.repeats < 1 or args.warmup < 0:
        raise ConfigError("bench train: --repeats must be at least 1 and --warmup at least 0")
    if any(args.tokens < T for T in blocks):
        raise ConfigError(f"bench train: --tokens ({args.tokens}) must be at least the largest block")
    text = load_corpus(None)
    rows, profiles = [], {}
    with torch_threads(args.threads):
        before = cpu_conditions()
        for T in blocks:
            row, prof = _measure_block(T, args, variants, text, device)
            rows.append(row)
            profiles.update(prof)
            log(_row_line(row))
        after = cpu_conditions()
    columns = (["T", "batch"] + [f"{v}_tok/s" for v in variants]
               + ["tau/dot", "round_ratio_range", "cpu_tau/dot", "auto_kernel"])
    result = {"rows": rows, "columns": columns, "summary": _summary(rows),
              "conditions": {"device": str(device), "repeats": args.repeats, "tokens_per_step": args.tokens,
                             "dtype": "bf16 autocast" if device.type == "cuda" else "float32",
                             "shape": args.shape, "compile": args.compile,
                             "before": before, "after": after}}
    return attach_profiles(result, profiles, log)


def build_variant(name: str, block: int, device, shape: str = "demo", compile: bool = False):
    """A model of ``shape`` (seed 0) in training mode and its AdamW optimizer -> (model to call, optimizer)."""
    attention, kernel = VARIANTS[name]
    torch.manual_seed(0)
    model = GPT(ModelConfig(block_size=block, attention=attention, tau_kernel=kernel, **SHAPES[shape])).to(device)
    model.train()
    optimizer = build_optimizer(model, TrainConfig())
    return (torch.compile(model) if compile else model), optimizer


def train_step(model, optimizer, x, y, device) -> float:
    """One optimisation step as the training loop takes it (default gradient clipping); returns the loss."""
    return optimisation_step(model, optimizer, x, y, device, GRAD_CLIP)


def _measure_block(T, args, variants, text, device):
    batch = args.tokens // T
    data = TokenBatches(text, block_size=T)
    gen = torch.Generator().manual_seed(0)
    batches = [data.batch("train", batch, gen, device) for _ in range(args.warmup + args.repeats)]
    built = {v: build_variant(v, T, device, args.shape, args.compile) for v in variants}
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    samples = {v: [] for v in variants}
    cpu = {v: [] for v in variants}

    def step(v, i, record):
        model, opt = built[v]
        start, start_cpu = time.perf_counter(), time.process_time()
        train_step(model, opt, *batches[i], device)
        sync()
        if record:
            samples[v].append(time.perf_counter() - start)
            cpu[v].append(time.process_time() - start_cpu)

    for i in range(args.warmup):
        for v in variants:
            step(v, i, record=False)
    for r in range(args.repeats):
        for v in (variants if r % 2 == 0 else variants[::-1]):
            step(v, args.warmup + r, record=True)
    tokens = batch * T
    row = {"T": T, "batch": batch}
    for v in variants:
        row[f"{v}_tok/s"] = tokens / statistics.median(samples[v])
    if "tau" in samples and "dot" in samples:
        row["tau/dot"] = row["tau_tok/s"] / row["dot_tok/s"]
        ratios = [d / t for t, d in zip(samples["tau"], samples["dot"])]
        row["round_ratio_range"] = f"{min(ratios):.2f}..{max(ratios):.2f}"
        # process CPU seconds: time spent waiting for a core on a shared machine is not in it
        row["cpu_tau/dot"] = statistics.median(cpu["dot"]) / statistics.median(cpu["tau"])
    row["auto_kernel"] = choose_kernel(T, T, device, batch_heads=batch * SHAPES[args.shape]["n_head"],
                                       needs_grad=True)
    profiles = {}
    if args.profile:
        for v in [v for v in ("dot", "tau") if v in built]:
            def one_step(model=built[v][0], opt=built[v][1]):
                train_step(model, opt, *batches[0], device)
                sync()

            profiles[f"T={T} {v}: top ops of one step (ms)"] = top_ops(one_step)
        profiles[f"T={T}: one layer's attention parts alone, forward + backward (ms)"] = _layer_parts(
            T, batch, device, built.get("tau", built.get("tau-fast", (None,)))[0], SHAPES[args.shape])
    return row, profiles


def _layer_parts(T, batch, device, tau_model, shape=DEMO_SHAPE) -> list[dict]:
    """lambda (both q and k), the tau kernel (auto / dense / fast / triton) and SDPA, each fwd + bwd."""
    if tau_model is None:
        return []
    H, D = shape["n_head"], shape["n_embd"] // shape["n_head"]
    gen = torch.Generator().manual_seed(1)
    q0, k0, v0 = (torch.randn(batch, H, T, D, generator=gen).to(device) for _ in range(3))
    lq0, lk0 = (torch.rand(batch, H, T, generator=gen).to(device) for _ in range(2))
    attn = tau_model.transformer.h[0].attn
    laplacian = tau_model.laplacian_operator()

    def leaves(*xs):
        return [x.clone().requires_grad_(True) for x in xs]

    def lam():
        q, k = leaves(q0, k0)
        lq, lk = attn.taumode(q, k, laplacian)
        (lq.sum() + lk.sum()).backward()

    def kernel(name):
        def fn():
            lq, lk, v = leaves(lq0, lk0, v0)
            tau_attention(lq, lk, v, temperature=attn.temperature(), kernel=name).sum().backward()
        return fn

    def sdpa():
        q, k, v = leaves(q0, k0, v0)
        F.scaled_dot_product_attention(q, k, v, is_causal=True).sum().backward()

    fns = {"lambda(q,k)": lam, "tau kernel auto": kernel("auto"), "tau kernel dense": kernel("dense"),
           "tau kernel fast": kernel("fast"), "dot sdpa": sdpa}
    if triton_available(device):
        fns["tau kernel triton"] = kernel("triton")
    sync = torch.cuda.synchronize if device.type == "cuda" else None
    with autocast(device):
        times = time_interleaved(fns, repeats=5, warmup=1, sync=sync)
    return [{"part": name, "ms": sec * 1e3} for name, sec in times.items()]


def _summary(rows: list[dict]) -> list[str]:
    lines = []
    for row in rows:
        if "tau/dot" in row:
            lines.append(f"T={row['T']} (batch {row['batch']}): tau/dot tokens/s = {row['tau/dot']:.2f} "
                         f"(per-round range {row['round_ratio_range']}), auto kernel: {row['auto_kernel']}")
    return lines


def _row_line(row: dict) -> str:
    parts = [f"T={row['T']:5d} batch={row['batch']:3d}"]
    parts += [f"{k[:-6]} {v:,.0f} tok/s" for k, v in row.items() if k.endswith("_tok/s")]
    if "tau/dot" in row:
        parts.append(f"tau/dot {row['tau/dot']:.3f}")
    return "  ".join(parts)
