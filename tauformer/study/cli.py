"""`python -m tauformer study`: train matched runs that differ only in their Laplacian (or attention)."""

from __future__ import annotations

import argparse
from pathlib import Path

from .plan import VARIANTS

DEFAULT_DOMAIN = Path(__file__).resolve().parents[2] / "assets" / "demo" / "domain"


def register(subparsers) -> None:
    from ..train_cli import add_train_arguments
    from ..presets import PRESETS

    p = subparsers.add_parser(
        "study", help="does the domain memory matter? matched runs per variant and seed, with statistics",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Trains one run per variant and seed under DIR/runs/<variant>-s<seed> (same shape, budget, "
                    "initial weights and data order per seed), then writes DIR/summary.json and DIR/summary.csv. "
                    "Run it again to continue a stopped study; finished runs are skipped.")
    p.add_argument("--out", required=True, type=Path, help="study directory")
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS, metavar="VARIANT",
                   help="variants to train: " + ", ".join(VARIANTS))
    p.add_argument("--seeds", type=int, default=3, help="seeds per variant (--seed, --seed + 1, ...)")
    p.add_argument("--parallel", type=int, default=1, help="runs trained at once, each in its own process")
    p.add_argument("--devices", nargs="+", default=None, metavar="DEVICE",
                   help="devices the parallel runs take turns on (default: every CUDA device, else cpu)")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads per run (default: torch's choice; cores / N with --parallel N)")
    g = p.add_argument_group("model")
    g.add_argument("--preset", choices=list(PRESETS), default="demo", help="model shape (head_dim must match the domain memory)")
    g.add_argument("--n-layer", type=int, default=None, help="overrides the preset")
    g.add_argument("--block-size", type=int, default=None, help="overrides the preset")
    add_train_arguments(p)
    p.set_defaults(keep_checkpoints=1, func=run_study_command)
    p.add_argument("--no-progress", action="store_true", help="no progress bars (log lines only)")


def study_model_config(args):
    """The shared tau model config: the preset's shape with overrides, vocabulary from the data."""
    from ..config import ModelConfig
    from ..presets import preset_shape
    from ..train_cli import data_vocab_size

    shape = preset_shape(args.preset)
    for name in ("n_layer", "block_size"):
        if getattr(args, name) is not None:
            shape[name] = getattr(args, name)
    return ModelConfig(vocab_size=data_vocab_size(args.data), attention="tau", **shape)


def default_devices(parallel: int, device: str) -> list[str]:
    import torch

    if device not in ("auto", "cuda") or not torch.cuda.is_available():
        return [device if device != "auto" else "cpu"]
    return [f"cuda:{i}" for i in range(torch.cuda.device_count())]


def run_study_command(args: argparse.Namespace) -> int:
    import os

    from ..train_cli import train_config_from_args
    from .plan import plan_study
    from .runner import run_study
    from .summary import format_table, write_summary

    domain = args.domain or DEFAULT_DOMAIN
    plans = plan_study(args.out, study_model_config(args), train_config_from_args(args), domain=domain,
                       variants=args.variants, seeds=args.seeds)
    devices = args.devices or default_devices(args.parallel, args.device)
    main_rank = int(os.environ.get("RANK", "0")) == 0
    run_study(plans, parallel=args.parallel, devices=devices, progress=not args.no_progress, threads=args.threads,
              log=print if main_rank else _quiet)  # under torchrun rank 0 speaks for all
    if main_rank:
        summary = write_summary(args.out)
        print(format_table(summary))
        print(f"-> {args.out / 'summary.json'}, {args.out / 'summary.csv'}")
    return 0


def _quiet(*args, **kwargs) -> None:
    pass
