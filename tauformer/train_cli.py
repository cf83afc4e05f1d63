"""`python -m tauformer train`: train a tau or dot model into a run directory (torchrun-ready)."""

from __future__ import annotations

import argparse
from dataclasses import fields

from .config import ATTENTION_KINDS, TAU_KERNELS, TAU_MODES, ModelConfig, TrainConfig
from .presets import PRESETS, preset_shape

def register(subparsers) -> None:
    p = subparsers.add_parser("train", help="train a tau or dot-product GPT into a run directory",
                              formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_model_arguments(p)
    add_train_arguments(p)
    p.add_argument("--out", required=True, help="run directory (ckpt-<step>/ checkpoints are written here)")
    p.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in --out")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (log lines only)")
    p.set_defaults(func=run_train)


def add_model_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model")
    g.add_argument("--preset", choices=list(PRESETS), default="demo",
                   help="model shape preset (see tauformer/presets.py; paper-30m has head dim 384)")
    g.add_argument("--attention", choices=ATTENTION_KINDS, default="tau")
    for name in ("n_layer", "n_head", "n_kv_head", "n_embd", "block_size"):
        g.add_argument(f"--{name.replace('_', '-')}", type=int, default=None, help="overrides the preset")
    g.add_argument("--vocab-size", type=int, default=None,
                   help="embedding rows (default: the data's tokenizer, 256 for text files)")
    g.add_argument("--tau-mode", choices=TAU_MODES, default=ModelConfig.tau_mode)
    g.add_argument("--tau", type=float, default=ModelConfig.tau, help="fixed tau (start value when calibrated)")
    g.add_argument("--tau-percentile", type=float, default=None, help="quantile p for --tau-mode percentile")
    g.add_argument("--temperature", type=float, default=ModelConfig.temperature,
                   help="attention temperature (initial value if learnable; the reference uses 1.0)")
    g.add_argument("--fixed-temperature", action="store_true", help="do not learn a per-head temperature")
    g.add_argument("--tau-kernel", choices=TAU_KERNELS, default=ModelConfig.tau_kernel)
    g.add_argument("--no-softcap", action="store_true", help="disable the 15 tanh(z/15) logit soft-cap")


TRAIN_HELP = {
    "batch_size": "sequences per micro-batch and process",
    "grad_accum": "micro-batches per optimizer step (global batch = batch size x grad accum x processes)",
    "compile": "torch.compile the model for the training steps",
    "fsdp": "under torchrun: shard the model with FSDP2 (fully_shard) instead of replicating it (DDP)",
    "peak_tflops": "per-device peak TFLOP/s for MFU (0: the GPU's bf16 peak when known; none on CPU)",
}


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("training")
    defaults = TrainConfig()
    for f in fields(TrainConfig):
        if f.name in ("domain", "data", "device"):
            continue
        default = getattr(defaults, f.name)
        flag = f"--{f.name.replace('_', '-')}"
        if isinstance(default, bool):
            g.add_argument(flag, action=argparse.BooleanOptionalAction, default=default, help=TRAIN_HELP.get(f.name))
        else:
            g.add_argument(flag, type=type(default), default=default, help=TRAIN_HELP.get(f.name))
    g.add_argument("--data", default=None, help="a directory made by `prepare` (its tokenizer and memory-mapped "
                   "shards), or a UTF-8 text file (byte tokens); default: the bundled Python documentation topics")
    g.add_argument("--domain", default=None, help="domain-memory file whose Laplacian the tau model uses")
    g.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")


def model_config_from_args(args: argparse.Namespace) -> ModelConfig:
    shape = preset_shape(args.preset)
    for name in shape:
        value = getattr(args, name, None)
        if value is not None:
            shape[name] = value
    if args.n_head is not None and args.n_kv_head is None:
        shape["n_kv_head"] = args.n_head
    return ModelConfig(
        vocab_size=args.vocab_size or data_vocab_size(args.data),
        attention=args.attention,
        tau_mode=args.tau_mode,
        tau=args.tau,
        tau_percentile=args.tau_percentile,
        temperature=args.temperature,
        learn_temperature=not args.fixed_temperature,
        tau_kernel=args.tau_kernel,
        softcap=None if args.no_softcap else ModelConfig.softcap,
        **shape,
    )


def data_vocab_size(data: str | None) -> int:
    """The vocabulary of the data's tokenizer: from a shards directory's meta.json, else 256 (bytes)."""
    from .shards import is_shards_dir, read_shards_meta

    if is_shards_dir(data):
        return int(read_shards_meta(data)["tokenizer"]["vocab_size"])
    return 256


def train_config_from_args(args: argparse.Namespace) -> TrainConfig:
    return TrainConfig(**{f.name: getattr(args, f.name) for f in fields(TrainConfig)})


def check_run_dir(out: str) -> None:
    """Refuse at start-up an --out that is a file or lies under one (else the first save fails after training)."""
    from pathlib import Path

    from .errors import ConfigError

    path = Path(out)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"--out {out} is a file, not a run directory")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(f"--out {out}: {parent} is a file, not a directory")
            break


def run_train(args: argparse.Namespace) -> int:
    from .train import train

    check_run_dir(args.out)
    result = train(model_config_from_args(args), train_config_from_args(args), args.out,
                   resume=args.resume, progress=not args.no_progress)
    if result.history:
        last = result.history[-1]
        print(f"done: step {result.step}, val loss {last['val_loss']:.4f} nats/token ({last['val_bpb']:.3f} bits/byte)"
              f" -> {args.out}")
    return 0
