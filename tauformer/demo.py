"""`python -m tauformer demo`: (re)build the bundled demo in assets/demo/.

Three runs trained alike -- same corpus, seed, shape and steps -- so the workbench can compare
them: `dot` (the baseline), `tau` (this project's defaults: calibrated tau, learnable per-head
temperature) and `tau-reference` (the published settings: tau fixed 1.0, temperature 1.0).
Weights are stored in float16 without optimizer state to keep the committed files small.
"""

from __future__ import annotations

import argparse
import shutil
import time
from dataclasses import replace
from pathlib import Path

from .checkpoint import list_checkpoints
from .config import ModelConfig, TrainConfig

DEMO_DIR = Path(__file__).resolve().parent.parent / "assets" / "demo"
DEMO_SHAPE = dict(vocab_size=256, block_size=256, n_layer=4, n_head=3, n_kv_head=3, n_embd=96)  # head_dim 32
DEMO_RUNS = {
    "dot": dict(attention="dot"),
    "tau": dict(attention="tau", tau_mode="calibrated", learn_temperature=True),
    "tau-reference": dict(attention="tau", tau_mode="fixed", tau=1.0, temperature=1.0, learn_temperature=False),
}


def demo_train_config(steps: int, checkpoints: int) -> TrainConfig:
    """The shared training settings: `checkpoints` evenly spaced checkpoints, float16 weights."""
    return TrainConfig(steps=steps, batch_size=16, lr=3e-3, warmup_steps=min(100, steps // 10),
                       eval_every=max(1, steps // 40), eval_batches=8, ckpt_every=max(1, steps // checkpoints),
                       seed=1337, device="cpu", save_dtype="float16", save_optimizer=False)


def register(subparsers) -> None:
    p = subparsers.add_parser("demo", help="retrain the bundled demo runs (dot, tau, tau-reference)",
                              formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--out", type=Path, default=DEMO_DIR, help="demo directory")
    p.add_argument("--steps", type=int, default=1500, help="training steps per run")
    p.add_argument("--checkpoints", type=int, default=3, help="checkpoints kept per run")
    p.add_argument("--runs", default=",".join(DEMO_RUNS), help="comma-separated subset of " + ", ".join(DEMO_RUNS))
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    from .train import train

    names = [n.strip() for n in args.runs.split(",") if n.strip()]
    unknown = sorted(set(names) - set(DEMO_RUNS))
    if unknown:
        from .errors import ConfigError

        raise ConfigError(f"unknown demo runs {unknown}; choose from {sorted(DEMO_RUNS)}")
    out = Path(args.out)
    train_cfg = demo_train_config(args.steps, args.checkpoints)
    rows = []
    for name in names:
        model_cfg = ModelConfig(**DEMO_SHAPE, **DEMO_RUNS[name])
        staging = out / f".{name}.training"
        shutil.rmtree(staging, ignore_errors=True)
        print(f"== {name}: {args.steps} steps -> {out / name}")
        start = time.perf_counter()
        result = train(model_cfg, replace(train_cfg), staging, progress=not args.no_progress)
        minutes = (time.perf_counter() - start) / 60
        final = out / name
        shutil.rmtree(final, ignore_errors=True)  # the new run is complete: replace the old one
        staging.rename(final)
        last = result.history[-1]
        size = sum(f.stat().st_size for f in final.rglob("*") if f.is_file())
        rows.append((name, last["val_loss"], last["val_bpb"], sum(r["tokens_per_s"] for r in result.history) / len(result.history),
                     minutes, len(list_checkpoints(final)), size / 2**20))
    print(f"\n{'run':<14}{'val loss':>9}{'bits/byte':>10}{'tok/s':>9}{'minutes':>9}{'ckpts':>6}{'MiB':>7}")
    for row in rows:
        print(f"{row[0]:<14}{row[1]:>9.4f}{row[2]:>10.3f}{row[3]:>9,.0f}{row[4]:>9.1f}{row[5]:>6}{row[6]:>7.2f}")
    return 0
