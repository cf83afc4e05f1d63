"""`python -m tauformer generate RUN_OR_CKPT --prompt "..."`: sample text from a checkpoint."""

from __future__ import annotations

import argparse
import time


def _whole_number_at_least(least: int):
    """An argparse type: a whole number >= least, so bad values stop before the checkpoint loads."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < least:
            raise argparse.ArgumentTypeError(f"{value} is less than {least}")
        return value
    return parse


def _temperature(text: str) -> float:
    """An argparse type: a finite temperature >= 0 (0 = greedy)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text} is not a finite number >= 0 (0 = greedy)")
    return value


def register(subparsers) -> None:
    p = subparsers.add_parser("generate", help="generate text from a run directory or checkpoint",
                              formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("checkpoint", help="a run directory (its latest checkpoint) or a ckpt-<step>/ directory")
    p.add_argument("--prompt", default="The ", help="text to continue")
    p.add_argument("--max-new-tokens", type=_whole_number_at_least(1), default=200, help="at least 1")
    p.add_argument("--temperature", type=_temperature, default=0.8, help="0 = greedy")
    p.add_argument("--top-k", type=_whole_number_at_least(1), default=50,
                   help="sample among the k likeliest tokens (at least 1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-cache", action="store_true", help="re-run the whole sequence per token")
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=run_generate)


def run_generate(args: argparse.Namespace) -> int:
    import torch  # here, not at module level: every other command would pay for importing it

    from .cache import generate
    from .checkpoint import load_checkpoint, load_checkpoint_tokenizer
    from .runtime import resolve_device

    device = resolve_device(args.device)
    model, meta = load_checkpoint(args.checkpoint, device=device)
    tokenizer = load_checkpoint_tokenizer(meta.path)  # the run's own: bytes, or its BPE tokenizer.json
    prompt_ids = tokenizer.encode(args.prompt) or tokenizer.encode("\n")
    idx = torch.tensor([prompt_ids], dtype=torch.long, device=device)
    gen = torch.Generator(device=device).manual_seed(args.seed)
    start = time.perf_counter()
    out = generate(model, idx, args.max_new_tokens, temperature=args.temperature, top_k=args.top_k,
                   use_cache=not args.no_cache, generator=gen)
    seconds = time.perf_counter() - start
    print(tokenizer.decode(out[0].tolist()))
    print(f"\n[{meta.model_config.attention} model ({tokenizer.name} tokens), {meta.path}, step {meta.step}: "
          f"{args.max_new_tokens} tokens in {seconds:.2f} s, {1000 * seconds / max(1, args.max_new_tokens):.1f} ms/token]")
    return 0
