"""Where the time of one call goes: the top operators under torch.profiler, as plain rows."""

from __future__ import annotations

from typing import Callable

import torch


def top_ops(fn: Callable[[], object], rows: int = 12, cuda: bool | None = None, per: int = 1) -> list[dict]:
    """Run ``fn`` once under the profiler; the ``rows`` operators with the most self time.

    The first row, "(all ops)", sums every operator (its `calls` counts operator calls, a
    measure of dispatch overhead).  On CUDA the rows are ordered by self device time.  Times
    and call counts are divided by ``per`` (e.g. the number of steps ``fn`` runs).
    """
    from torch.profiler import ProfilerActivity, profile

    cuda = torch.cuda.is_available() if cuda is None else cuda
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities) as prof:
        fn()
    events = prof.key_averages()

    def device_us(e):
        return getattr(e, "self_device_time_total", 0.0) or 0.0

    key = device_us if cuda else (lambda e: e.self_cpu_time_total)
    ordered = sorted(events, key=key, reverse=True)
    out = [{"op": "(all ops)", "self_cpu_ms": sum(e.self_cpu_time_total for e in events) / 1e3 / per,
            "calls": sum(e.count for e in events) / per}]
    for e in ordered[:rows]:
        row = {"op": e.key, "self_cpu_ms": e.self_cpu_time_total / 1e3 / per, "calls": e.count / per}
        if cuda:
            row["self_cuda_ms"] = device_us(e) / 1e3 / per
        out.append(row)
    if cuda:
        out[0]["self_cuda_ms"] = sum(device_us(e) for e in events) / 1e3 / per
    return out
