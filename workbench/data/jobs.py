"""Long work started by a callback and polled by a dcc.Interval: in-process threads, one at a time.

This replaces Dash's background callbacks, whose disk store (diskcache) unpickles what it
finds: a file planted there would run as the user of the app. Here jobs, their progress
and their results stay in this process's memory and nothing is read back from disk.
Jobs run one after another (a build takes most of the machine); a job waiting for its turn
reports state "queued" with its place in the queue.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Callable

log = logging.getLogger("workbench")


@dataclass
class JobState:
    """Where one job stands: state "queued", "running", "done" or "failed"."""

    state: str
    step: int = 0
    total: int = 1
    text: str = ""
    result: object = None
    position: int = 0  # place in the queue while queued (1 = next)
    started: float = field(default_factory=time.time)


class JobRegistry:
    """Runs submitted jobs in one worker thread, in order; keeps the last ``keep`` outcomes.

    ``fn(progress)`` is the job; ``progress(step, total, text)`` may be called from it. An
    exception from ``fn`` makes the job "failed" with the exception as its result.
    """

    def __init__(self, keep: int = 32):
        self.keep = keep
        self._lock = threading.Lock()
        self._states: OrderedDict[str, JobState] = OrderedDict()
        self._queue: deque[tuple[str, Callable]] = deque()
        self._wake = threading.Condition(self._lock)
        self._thread: threading.Thread | None = None

    def submit(self, key: str, fn: Callable) -> JobState:
        """Queue ``fn`` under ``key`` unless that key is queued, running or finished already."""
        with self._lock:
            if key not in self._states:
                self._states[key] = JobState("queued")
                self._queue.append((key, fn))
                self._forget_old()
                if self._thread is None or not self._thread.is_alive():
                    self._thread = threading.Thread(target=self._work, name="workbench-jobs", daemon=True)
                    self._thread.start()
                self._wake.notify()
            return self._view(key)

    def poll(self, key: str) -> JobState | None:
        """A copy of the job's state, or None for a key never submitted (or long forgotten)."""
        with self._lock:
            return self._view(key) if key in self._states else None

    def forget(self, key: str) -> None:
        """Drop a finished job's outcome (so a later submit runs it again)."""
        with self._lock:
            state = self._states.get(key)
            if state is not None and state.state in ("done", "failed"):
                del self._states[key]

    def _view(self, key: str) -> JobState:
        s = self._states[key]
        waiting = [k for k, _ in self._queue]
        position = waiting.index(key) + 1 if key in waiting else 0
        return JobState(s.state, s.step, s.total, s.text, s.result, position, s.started)

    def _forget_old(self) -> None:
        finished = [k for k, s in self._states.items() if s.state in ("done", "failed")]
        for key in finished[: max(0, len(finished) - self.keep)]:
            del self._states[key]

    def _work(self) -> None:
        while True:
            with self._lock:
                while not self._queue:
                    if not self._wake.wait(timeout=30.0):
                        self._thread = None
                        return  # idle: the next submit starts a new thread
                key, fn = self._queue.popleft()
                state = self._states[key]
                state.state, state.started = "running", time.time()

            def progress(step, total, text="", _state=state):
                with self._lock:
                    _state.step, _state.total, _state.text = int(step), max(1, int(total)), str(text)

            try:
                result, outcome = fn(progress), "done"
            except Exception as err:  # reported through poll(), never raised in the worker thread
                log.warning("job %s failed", key, exc_info=True)
                result, outcome = err, "failed"
            with self._lock:
                state.state, state.result = outcome, result
