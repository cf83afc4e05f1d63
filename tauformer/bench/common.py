"""Shared measurement helpers: interleaved timing, medians, peak memory, tables."""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import time
from typing import Callable

import psutil

from ..errors import ConfigError


def time_interleaved(
    fns: dict[str, Callable[[], object]],
    *,
    repeats: int = 5,
    warmup: int = 1,
    sync: Callable[[], None] | None = None,
) -> dict[str, float]:
    """Median wall seconds of each callable, run round-robin so drift hits all of them alike.

    ``sync`` (e.g. torch.cuda.synchronize) is called after each call before the clock stops.
    """
    sync = sync or (lambda: None)
    for _ in range(warmup):
        for fn in fns.values():
            fn()
            sync()
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            sync()
            samples[name].append(time.perf_counter() - start)
    return {name: statistics.median(s) for name, s in samples.items()}


def peak_rss_bytes() -> int:
    """Peak resident memory of this process so far (Linux: ru_maxrss is in KiB)."""
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def current_rss_bytes() -> int:
    """Resident memory of this process now."""
    return psutil.Process().memory_info().rss


def machine_summary() -> dict:
    """What the figures were measured on: CPU count, torch threads, device names."""
    import platform

    import torch

    info = {
        "cpu": platform.processor() or platform.machine(),
        "logical_cpus": psutil.cpu_count(logical=True),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
    }
    if torch.cuda.is_available():
        info["cuda_device"] = torch.cuda.get_device_name(0)
    return info


def format_table(rows: list[dict], columns: list[str] | None = None) -> str:
    """Plain-text table of row dicts; floats get 4 significant digits."""
    if not rows:
        return "(no rows)"
    columns = columns or list(rows[0].keys())

    def fmt(v):
        if isinstance(v, float):
            return f"{v:.4g}"
        return str(v)

    cells = [[fmt(r.get(c, "")) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.rjust(w) for c, w in zip(columns, widths))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.rjust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)


def to_json(result: dict) -> str:
    """JSON text of a benchmark result."""
    return json.dumps(result, indent=2, default=float)


def parse_ints(text: str, option: str, bench: str) -> list[int]:
    """Comma-separated positive integers of a benchmark option, or a ConfigError naming it."""
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ConfigError(f"bench {bench}: {option} takes comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise ConfigError(f"bench {bench}: {option} takes positive integers, got {text!r}")
    return values


def resolve_bench_device(name: str, bench: str):
    """torch.device for --device cpu|cuda; a ConfigError when CUDA is asked for but absent."""
    import torch

    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"bench {bench}: --device cuda but torch sees no CUDA device")
    return device


def load_average() -> list[float] | None:
    """1, 5 and 15 minute load averages (None where the OS has none)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def cpu_conditions() -> dict:
    """What shapes CPU timings besides the code: load, torch threads, the OpenMP wait policy."""
    import torch

    return {"load_avg": load_average(), "threads": torch.get_num_threads(),
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "unset")}


@contextlib.contextmanager
def torch_threads(n: int | None):
    """Run the body with n torch CPU threads (None: unchanged); the previous count is restored."""
    import torch

    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
