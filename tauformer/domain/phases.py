"""Per-phase wall time and progress reporting for the domain-memory pipeline.

A progress reporter is any callable ``progress(phase, done, total)``; :func:`tqdm_progress`
returns one that draws one tqdm bar per phase on stderr. :class:`PhaseTimer` times named phases
and forwards progress, so the builder, the CLI and the benchmark share one way of reporting.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Callable

ProgressFn = Callable[[str, int, int], None]


def tqdm_progress(**tqdm_kwargs) -> ProgressFn:
    """A progress callable that shows one tqdm bar per phase (on stderr by default)."""
    from tqdm.auto import tqdm

    state: dict = {"phase": None, "bar": None}

    def report(phase: str, done: int, total: int) -> None:
        if state["phase"] != phase:
            if state["bar"] is not None:
                state["bar"].close()
            state["phase"] = phase
            state["bar"] = tqdm(total=total, desc=phase, leave=True, **tqdm_kwargs)
        bar = state["bar"]
        if bar is None:  # this phase already finished: later reports for it are ignored
            return
        bar.total = total
        bar.n = done
        bar.refresh()
        if done >= total:
            bar.close()
            state["bar"] = None

    return report


class PhaseTimer:
    """Records seconds per named phase; ``tick`` reports progress inside the current phase."""

    def __init__(self, progress: ProgressFn | None = None):
        self.progress = progress
        self.timings: dict[str, float] = {}
        self._phase: str | None = None

    @contextmanager
    def phase(self, name: str):
        """Time the body as phase ``name`` (added to any earlier time under that name)."""
        self._phase = name
        self.tick(0, 1)
        start = time.perf_counter()
        try:
            yield self
        finally:
            self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - start
            self.tick(1, 1)
            self._phase = None

    def tick(self, done: int, total: int) -> None:
        """Report that ``done`` of ``total`` units of the current phase are finished."""
        if self.progress is not None and self._phase is not None:
            self.progress(self._phase, done, total)
