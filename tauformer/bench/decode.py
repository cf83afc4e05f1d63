"""Per-token decode latency of the tau and dot models, with the KV cache and without it.

For each model shape both models (same seed, so the same weights wherever they share them) are
prefilled once to the largest context; a context c is then timed by setting the cache back to
c positions (a causal model's cache entries for positions < c do not depend on later tokens, so
this is the state a prefill of c tokens leaves) and decoding `steps` real next tokens one at a
time.  Rounds alternate tau / dot and their order, so load drift hits both alike; the figure is
the median over all single-token steps.  Bytes read from the caches per step are counted from
the tensors each cache hands to attention.  Without a cache, producing one token costs a full
forward over the context; that is timed for a few contexts.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from ..cache import make_cache
from ..config import ModelConfig
from ..errors import ConfigError
from ..graph_decode import StaticDecoder
from ..model import GPT
from .common import cpu_conditions, parse_ints, resolve_bench_device, torch_threads
from .profile import attach_profiles, top_ops

# The published CPU decode benchmark's shape (6 layers, head dim 384, one head), and the demo's.
SHAPES = {
    "reference": dict(n_layer=6, n_head=1, n_kv_head=1, n_embd=384),
    "demo": dict(n_layer=4, n_head=3, n_kv_head=3, n_embd=96),
}
CONTEXTS = {"cpu": (128, 256, 512, 1024, 2048, 4096), "cuda": (128, 512, 1024, 4096, 8192, 16384)}
NO_CACHE_CONTEXTS = {"cpu": (128, 1024), "cuda": (128, 1024, 4096)}
# Published nano/tau per-token latency ratios (SPEC section 8), as tau/dot.
PAPER = "paper (6 layers, D 384, CPU): tau/dot 0.92 (128 tokens) .. 0.82 (1024) with cache; 1.25 .. 1.33 without"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `python -m tauformer bench decode`."""
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--contexts", default=None,
                        help="comma-separated cached contexts (default: %s on CPU, %s on CUDA)"
                        % (",".join(map(str, CONTEXTS["cpu"])), ",".join(map(str, CONTEXTS["cuda"]))))
    parser.add_argument("--no-cache-contexts", default=None,
                        help="contexts timed without a cache (default: %s on CPU; 'none' skips)"
                        % ",".join(map(str, NO_CACHE_CONTEXTS["cpu"])))
    parser.add_argument("--shapes", default=",".join(SHAPES), help="model shapes: %s" % ", ".join(SHAPES))
    parser.add_argument("--steps", type=int, default=16, help="single-token steps per round")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved rounds per context and model")
    parser.add_argument("--vocab", type=int, default=256, help="vocabulary size (the project's byte tokenizer: 256)")
    parser.add_argument("--batch", type=int, default=1, help="sequences decoded together (default 1)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--graph", action="store_true",
                        help="time cached steps of both models as CUDA-graph replays of a static-shape step "
                             "(tauformer.graph_decode; on CPU the same step runs uncaptured)")
    parser.add_argument("--profile", action="store_true",
                        help="also report the top ops of a cached decode step at the largest context")


def build_pair(shape: dict, vocab: int, block: int, device) -> dict[str, GPT]:
    """Untrained tau and dot models of one shape, same seed, project defaults otherwise, eval mode."""
    models = {}
    for attention in ("tau", "dot"):
        torch.manual_seed(0)
        config = ModelConfig(vocab_size=vocab, block_size=block, attention=attention, **shape)
        models[attention] = GPT(config).to(device).eval()
    return models


def prefilled_cache(model: GPT, tokens: torch.Tensor, n: int, max_len: int):
    """A cache for tokens' B rows holding the prefill of their first n tokens.

    The rows are equal, so one row is prefilled and copied into the others.
    """
    one = make_cache(model, 1, max_len)
    model(tokens[:1, :n], cache=one)
    if tokens.shape[0] == 1:
        return one
    cache = make_cache(model, tokens.shape[0], max_len)
    for full, row in zip(cache.tensors(), one.tensors()):
        full.copy_(row.expand_as(full))  # [n_layer, 1, ...] -> [n_layer, B, ...]
    cache.pos = one.pos
    return cache


def count_cache_reads(cache, step) -> int:
    """Bytes of the cached tensors handed to attention during ``step()`` (all layers)."""
    seen = []
    update = cache.update

    def counting(layer, a, b):
        out = update(layer, a, b)
        seen.extend(out)
        return out

    cache.update = counting
    try:
        step()
    finally:
        del cache.update  # back to the class's method
    return sum(t.numel() * t.element_size() for t in seen)


def run(args: argparse.Namespace, log) -> dict:
    """Time cached decode per context and uncached per-token cost; rows per (shape, mode, context)."""
    device = resolve_bench_device(args.device, "decode")
    contexts = parse_ints(args.contexts, "--contexts", "decode") if args.contexts else CONTEXTS[device.type]
    if args.no_cache_contexts == "none":
        no_cache = ()
    elif args.no_cache_contexts:
        no_cache = parse_ints(args.no_cache_contexts, "--no-cache-contexts", "decode")
    else:
        no_cache = NO_CACHE_CONTEXTS[device.type]
    shapes = [s.strip() for s in args.shapes.split(",") if s.strip()]
    unknown = [s for s in shapes if s not in SHAPES]
    if unknown or not shapes:
        raise ConfigError(f"bench decode: --shapes takes {', '.join(SHAPES)}; got {args.shapes!r}")
    if args.steps < 1 or args.repeats < 1 or args.batch < 1:
        raise ConfigError("bench decode: --steps, --repeats and --batch must be at least 1")
    rows, profiles = [], {}
    with torch_threads(args.threads):
        before = cpu_conditions()
        for name in shapes:
            rows += _measure_shape(name, SHAPES[name], contexts, no_cache, args, device, log, profiles)
        after = cpu_conditions()
    conditions = {"device": str(device), "steps": args.steps, "repeats": args.repeats, "vocab": args.vocab,
                  "batch": args.batch, "before": before, "after": after}
    columns = ["shape", "cache", "context", "tau_ms", "dot_ms", "tau/dot", "dot/tau", "round_ratio_range",
               "cpu_tau/dot", "tau_cache_read_MB", "dot_cache_read_MB", "read_ratio"]
    result = {"rows": rows, "columns": columns, "summary": _summary(rows), "conditions": conditions}
    return attach_profiles(result, profiles, log)


def _measure_shape(name, shape, contexts, no_cache, args, device, log, profiles) -> list[dict]:
    max_ctx = max(contexts) if contexts else 0
    models = build_pair(shape, args.vocab, max(max_ctx, max(no_cache, default=1)), device)
    gen = torch.Generator().manual_seed(1)
    length = max(max_ctx + args.steps, max(no_cache, default=1))
    # every row decodes the same tokens: a batch costs B rows of cache reads, one read of the weights
    tokens = torch.randint(0, args.vocab, (1, length), generator=gen).to(device).expand(args.batch, length)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    rows = []
    with torch.no_grad():
        if contexts:
            caches = {kind: prefilled_cache(model, tokens, max_ctx, max_ctx + args.steps)
                      for kind, model in models.items()}
            if getattr(args, "graph", False):
                decoders = {kind: StaticDecoder(model, tokens.shape[0], max_ctx + args.steps, cache=caches[kind])
                            for kind, model in models.items()}
                stepping = {kind: _GraphStepper(dec) for kind, dec in decoders.items()}
            else:
                stepping = models
            sync()
            for ctx in sorted(contexts):
                row = _time_cached(name, ctx, stepping, caches, tokens, args, sync)
                rows.append(row)
                log(_row_line(row))
            if args.profile:
                for kind, model in stepping.items():
                    def run_steps(model=model, cache=caches[kind]):
                        _steps(model, cache, tokens, max_ctx, args.steps, sync)

                    title = f"{name} {kind}: top ops per decode step at context {max_ctx} (ms)"
                    profiles[title] = top_ops(run_steps, per=args.steps)
        for ctx in sorted(no_cache):
            row = _time_uncached(name, ctx, models, tokens, args, sync)
            rows.append(row)
            log(_row_line(row))
    return rows


class _GraphStepper:
    """Called like the model for one cached step (``stepper(token, cache=c)``), it runs the
    StaticDecoder's step (a CUDA-graph replay on CUDA) at ``c.pos``."""

    def __init__(self, decoder: StaticDecoder):
        self.decoder = decoder
        self.model = decoder.model
        self.device_pos = None  # the position the decoder's device tensor holds

    def __call__(self, idx, cache=None):
        if cache.pos != self.device_pos:  # the benchmark rewound the cache
            self.decoder.set_position(cache.pos)
        logits = self.decoder.step(idx)
        self.device_pos = cache.pos
        return logits, None


def _steps(model, cache, tokens, ctx, n, sync) -> None:
    """n single-token steps from ctx cached positions."""
    cache.pos = ctx
    for i in range(n):
        model(tokens[:, ctx + i:ctx + i + 1], cache=cache)
    sync()


def _time_cached(name, ctx, models, caches, tokens, args, sync) -> dict:
    """Median ms per single-token step from ``ctx`` cached positions, rounds interleaved."""
    samples = {kind: [] for kind in models}
    cpu = {kind: [] for kind in models}

    def steps(kind, record):
        model, cache = models[kind], caches[kind]
        cache.pos = ctx
        for i in range(args.steps):
            start, start_cpu = time.perf_counter(), time.process_time()
            model(tokens[:, ctx + i:ctx + i + 1], cache=cache)
            sync()
            if record:
                samples[kind].append(time.perf_counter() - start)
                cpu[kind].append(time.process_time() - start_cpu)

    order = list(models)
    for kind in order:
        steps(kind, record=False)  # warm-up
    for r in range(args.repeats):
        for kind in (order if r % 2 == 0 else order[::-1]):
            steps(kind, record=True)
    reads = {}
    for kind, model in models.items():
        cache = caches[kind]
        cache.pos = ctx
        model = getattr(model, "model", model)  # a graph stepper's model: the step that calls cache.update
        reads[kind] = count_cache_reads(cache, lambda m=model, c=cache: m(tokens[:, ctx:ctx + 1], cache=c))
    ms = {kind: statistics.median(s) * 1e3 for kind, s in samples.items()}
    mode = "graph" if getattr(args, "graph", False) else "yes"
    return {"shape": name, "cache": mode, "context": ctx, "tau_ms": ms["tau"], "dot_ms": ms["dot"],
            "tau/dot": ms["tau"] / ms["dot"], "dot/tau": ms["dot"] / ms["tau"],
            "round_ratio_range": _round_range(samples, args.steps), "cpu_tau/dot": _cpu_ratio(cpu),
            "tau_cache_read_MB": reads["tau"] / 1e6, "dot_cache_read_MB": reads["dot"] / 1e6,
            "read_ratio": reads["tau"] / reads["dot"]}


def _cpu_ratio(cpu: dict) -> float:
    """tau/dot of median process CPU seconds per step.

    Time this process spent waiting for a core is not in it, so on a shared machine it moves
    less with the load than wall time (it still counts OpenMP threads' spinning, and memory
    traffic of other processes still slows it).  On CUDA it is host time.
    """
    return statistics.median(cpu["tau"]) / max(statistics.median(cpu["dot"]), 1e-12)


def _round_range(samples: dict, per_round: int) -> str:
    """min..max over rounds of the tau/dot ratio of round medians: how much the load moved it."""
    def rounds(s):
        return [statistics.median(s[i:i + per_round]) for i in range(0, len(s), per_round)]

    ratios = [t / d for t, d in zip(rounds(samples["tau"]), rounds(samples["dot"]))]
    return f"{min(ratios):.2f}..{max(ratios):.2f}"


def _time_uncached(name, ctx, models, tokens, args, sync) -> dict:
    """Median ms of one full forward over ``ctx`` tokens (the cost of one token without a cache)."""
    samples = {kind: [] for kind in models}
    cpu = {kind: [] for kind in models}
    order = list(models)
    rounds = max(3, args.repeats // 2)
    for r in range(rounds + 1):
        for kind in (order if r % 2 == 0 else order[::-1]):
            start, start_cpu = time.perf_counter(), time.process_time()
            models[kind](tokens[:, :ctx])
            sync()
            if r > 0:  # the first round warms up
                samples[kind].append(time.perf_counter() - start)
                cpu[kind].append(time.process_time() - start_cpu)
    ms = {kind: statistics.median(s) * 1e3 for kind, s in samples.items()}
    return {"shape": name, "cache": "no", "context": ctx, "tau_ms": ms["tau"], "dot_ms": ms["dot"],
            "tau/dot": ms["tau"] / ms["dot"], "dot/tau": ms["dot"] / ms["tau"],
            "round_ratio_range": _round_range(samples, 1), "cpu_tau/dot": _cpu_ratio(cpu),
            "tau_cache_read_MB": "", "dot_cache_read_MB": "", "read_ratio": ""}


def _summary(rows: list[dict]) -> list[str]:
    lines = []
    for shape in dict.fromkeys(r["shape"] for r in rows):
        mine = [r for r in rows if r["shape"] == shape]
        cached = ", ".join(f"{r['context']}: {r['tau/dot']:.2f}" for r in mine if r["cache"] != "no")
        uncached = ", ".join(f"{r['context']}: {r['tau/dot']:.2f}" for r in mine if r["cache"] == "no")
        how = "with cache, graph-captured steps" if any(r["cache"] == "graph" for r in mine) else "with cache"
        lines.append(f"{shape}: tau/dot per token {how} {{{cached}}}; without cache {{{uncached}}}")
    lines.append(PAPER)
    return lines


def _row_line(row: dict) -> str:
    return (f"{row['shape']:9s} cache={row['cache']:3s} ctx={row['context']:6d}  tau {row['tau_ms']:8.2f} ms  "
            f"dot {row['dot_ms']:8.2f} ms  tau/dot {row['tau/dot']:.3f}")
