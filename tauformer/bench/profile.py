"""Where the time of one call goes: the top operators under torch.profiler, as plain rows."""

from __future__ import annotations

from collections.abc import Callable

import torch


def top_ops(fn: Callable[[], object], rows: int = 12, cuda: bool | None = None, per: int = 1) -> list[dict]:
    """Run ``fn`` once under the profiler; the ``rows`` operators with the most self time.

    The first row, "(all ops)", sums every operator (its `calls` counts operator calls, a
    measure of dispatch overhead; on CUDA its self_cuda_ms sums the operators' kernels).  Times and call
    counts are divided by ``per`` (e.g. the number of steps ``fn`` runs).
    """
    from torch.profiler import ProfilerActivity, profile

    cuda = torch.cuda.is_available() if cuda is None else cuda
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities) as prof:
        fn()
    events = prof.key_averages()

    def device_us(e):
        return getattr(e, "self_device_time_total", 0.0) or 0.0

    # operators only (GPU kernels appear as their own rows with no CPU time; their device time
    # is already in the operator that launched them), slowest CPU side first: a decode or small
    # training step on a GPU is bound by how fast the host issues them
    ops = sorted((e for e in events if e.self_cpu_time_total > 0), key=lambda e: e.self_cpu_time_total,
                 reverse=True)
    out = [{"op": "(all ops)", "self_cpu_ms": sum(e.self_cpu_time_total for e in ops) / 1e3 / per,
            "calls": sum(e.count for e in ops) / per}]
    if cuda:
        out[0]["self_cuda_ms"] = sum(device_us(e) for e in ops) / 1e3 / per
    for e in ops[:rows]:
        row = {"op": e.key[:60], "self_cpu_ms": e.self_cpu_time_total / 1e3 / per, "calls": e.count / per}
        if cuda:
            row["self_cuda_ms"] = device_us(e) / 1e3 / per
        out.append(row)
    return out


def attach_profiles(result: dict, profiles: dict, log) -> dict:
    """Add the profile tables (title -> rows) to a benchmark result and log them."""
    if profiles:
        result["profile"] = profiles
        for title, table in profiles.items():
            log(f"\n== {title}")
            for entry in table:
                log("   " + "  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in entry.items()))
    return result
