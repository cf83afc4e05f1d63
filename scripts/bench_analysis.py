"""Time the analysis computations on the bundled demo pair (not a test; run it on a quiet machine).

    python scripts/bench_analysis.py [--threads 1] [--repeats 3]

Head-ablation sweeps of every head and layer of the tau and dot demo models on SWEEP_BATCHES
validation batches, the logit lens and the per-token predictions of a 256-token prompt. Prints
the best of --repeats wall-clock times (one intra-op thread by default, as the workbench runs).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tauformer.ablation import SWEEP_BATCHES, ablation_sweep  # noqa: E402
from tauformer.checkpoint import load_checkpoint  # noqa: E402
from tauformer.data import load_batches  # noqa: E402
from tauformer.demo import DEMO_DIR  # noqa: E402
from tauformer.lens import logit_lens, token_predictions  # noqa: E402


def best_of(repeats: int, fn) -> tuple[float, object]:
    """The smallest wall-clock time of `repeats` calls of fn, and its last result."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    models = {run: load_checkpoint(DEMO_DIR / run, history=False)[0] for run in ("tau", "dot")}
    T = models["tau"].config.block_size
    batches = load_batches(None, block_size=T).eval_batches(*SWEEP_BATCHES)
    prompt = batches[0][0][0, :256]  # [256] tokens of validation text

    print(f"torch {torch.__version__}, {args.threads} thread(s), best of {args.repeats}")
    for mode in ("zero", "mean"):
        def sweep_both():
            return [ablation_sweep(model, batches, mode=mode) for model in models.values()]

        seconds, sweeps = best_of(args.repeats, sweep_both)
        print(f"ablation sweep ({mode}), both models, {SWEEP_BATCHES[0]} x {SWEEP_BATCHES[1]} x {T} tokens: "
              f"{seconds:.2f} s")
        for sweep in sweeps:
            worst = int(sweep.head_delta.argmax())
            H = sweep.head_delta.shape[1]
            print(f"  {sweep.kind}: base {sweep.base_loss:.3f} nats, largest head change "
                  f"+{float(sweep.head_delta.max()):.3f} (layer {worst // H} head {worst % H}), "
                  f"layers {[round(float(d), 3) for d in sweep.layer_delta]}")
    for run, model in models.items():
        seconds, lens = best_of(args.repeats, lambda: logit_lens(model, prompt))
        hit = lens.first_top1 >= 0
        print(f"logit lens, {run}, {prompt.numel()} tokens: {1000 * seconds:.0f} ms "
              f"(next token top-1 at some depth for {float(hit.float().mean()):.0%} of positions)")
        seconds, pred = best_of(args.repeats, lambda: token_predictions(model, prompt))
        print(f"per-token predictions, {run}: {1000 * seconds:.0f} ms (mean loss {pred.mean_loss():.3f} nats)")


if __name__ == "__main__":
    main()
