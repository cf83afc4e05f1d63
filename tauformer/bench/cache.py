"""KV-cache bytes per token and layer of the tau and dot models, measured from real caches.

The dot model caches (K, V), the tau model (V, lambda_k) with lambda_k kept in float32, so for
element size s the tau/dot ratio is (D s + 4) / (2 D s): (D + 1) / (2D) in float32 (SPEC
section 5).  Each row builds both models of one shape, allocates their caches with
`make_cache(...)` and divides its bytes per token by the layers.
"""

from __future__ import annotations

import argparse

import torch

from ..cache import make_cache
from ..config import ModelConfig
from ..errors import ConfigError
from ..model import GPT
from .common import parse_ints

HEAD_DIMS = (32, 64, 128, 384)
HEADS = 2  # query and key/value heads of the head-dim rows
DEMO = dict(n_layer=4, n_head=3, n_kv_head=3, n_embd=96)  # the demo models' shape (head dim 32)
LAYERS = 2
POSITIONS = 64
BATCH = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `python -m tauformer bench cache`."""
    parser.add_argument("--head-dims", default=",".join(map(str, HEAD_DIMS)), help="head dims D to measure")
    parser.add_argument("--dtypes", default="float32,bfloat16", help="cache dtypes (float32, bfloat16, float16)")


def shapes(head_dims) -> list[tuple[str, dict]]:
    """(label, ModelConfig keywords) of every measured shape: one per head dim, then the demo."""
    out = [(f"D={D}", dict(n_layer=LAYERS, n_head=HEADS, n_kv_head=HEADS, n_embd=HEADS * D)) for D in head_dims]
    out.append(("demo", dict(DEMO)))
    return out


def measure(label: str, shape: dict, dtype: torch.dtype) -> dict:
    """One row: bytes per token per layer of both caches and the ratio against the formula."""
    nbytes = {}
    for attention in ("tau", "dot"):
        model = GPT(ModelConfig(vocab_size=256, block_size=POSITIONS, attention=attention, **shape))
        cache = make_cache(model, BATCH, POSITIONS, dtype=dtype)
        nbytes[attention] = cache.bytes_per_token() / shape["n_layer"]
    D = shape["n_embd"] // shape["n_head"]
    s = torch.empty((), dtype=dtype).element_size()
    expected = (D * s + 4) / (2 * D * s)
    measured = nbytes["tau"] / nbytes["dot"]
    return {"shape": label, "dtype": str(dtype).replace("torch.", ""), "D": D, "H_kv": shape["n_kv_head"],
            "tau_B/token/layer": nbytes["tau"], "dot_B/token/layer": nbytes["dot"], "tau/dot": measured,
            "expected": expected, "(D+1)/(2D)": (D + 1) / (2 * D), "matches": abs(measured - expected) < 1e-12}


def run(args: argparse.Namespace, log) -> dict:
    """Rows per (shape, dtype); the summary states the float32 ratios against (D + 1) / (2D)."""
    head_dims = parse_ints(args.head_dims, "--head-dims", "cache")
    if any(D % 2 for D in head_dims):
        raise ConfigError(f"bench cache: head dims must be even (RoPE), got {args.head_dims!r}")
    names = [d.strip() for d in args.dtypes.split(",") if d.strip()]
    if not names or any(d not in ("float32", "bfloat16", "float16") for d in names):
        raise ConfigError(f"bench cache: --dtypes takes float32, bfloat16 and/or float16, got {args.dtypes!r}")
    rows = [measure(label, shape, getattr(torch, d)) for d in names for label, shape in shapes(head_dims)]
    summary = [f"all {len(rows)} measured ratios equal (D s + 4) / (2 D s) for element size s: "
               f"{all(r['matches'] for r in rows)}"]
    f32 = [r for r in rows if r["dtype"] == "float32"]
    if f32:
        summary.append("float32 tau/dot = (D + 1) / (2D): " + ", ".join(f"{r['shape']} {r['tau/dot']:.4f}" for r in f32))
    if len(f32) < len(rows):
        summary.append("16-bit caches keep lambda_k in float32, so their ratio is (D + 2) / (2D)")
    columns = ["shape", "dtype", "D", "H_kv", "tau_B/token/layer", "dot_B/token/layer", "tau/dot", "expected",
               "(D+1)/(2D)"]
    return {"rows": rows, "columns": columns, "summary": summary}
