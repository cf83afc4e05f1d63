"""Item layouts (kNN + UMAP) computed in a worker process and cached on disk by content.

A layout is keyed by the content hash of the item matrix and the layout parameters and
stored as ``<cache_dir>/layouts/<key>.npz``, so a restarted app finds it instantly. The
first request for a layout starts ``layout_compute.py`` as a separate process (numba
compilation there never blocks the server) and answers "running"; pages show a PCA
projection meanwhile and poll :func:`request` until the layout is "ready".

One worker runs at a time (each takes a core and hundreds of MB): a second request is
"queued" and starts when the first is done. A layout whose estimated memory exceeds what
is available (psutil) is refused ("failed", with the figures) instead of started.
"""

from __future__ import annotations

import atexit
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tauformer.fsutil import atomic_write_bytes

from .cache import content_key
from .identity import items_key
from .layout_compute import EXACT_MAX, LAYOUT_PARAMS, compute_layout, load_layout, save_layout

WORKER = Path(__file__).with_name("layout_compute.py")
REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Layout:
    """Where an item layout stands: status "ready", "running", "queued" or "failed".

    Ready layouts carry xy [N, 2], edges [M, 2] and distances [M]; running ones carry the
    seconds since the worker started; failed ones a message.
    """

    status: str
    key: str
    xy: np.ndarray | None = None
    edges: np.ndarray | None = None
    distances: np.ndarray | None = None
    elapsed: float = 0.0
    message: str = ""
    seconds: dict = field(default_factory=dict)


class LayoutJobs:
    """Layout workers and results of one cache directory."""

    def __init__(self, directory: Path, available_bytes=None):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._running: dict[str, tuple[subprocess.Popen, float, Path]] = {}  # at most one worker
        self._queue: dict[str, tuple[np.ndarray, object]] = {}  # key -> (X, clusters), in order
        self._failed: dict[str, str] = {}
        self._loaded: dict[str, dict] = {}
        self.available_bytes = available_bytes or _available_bytes  # () -> bytes (psutil); tests replace it
        self.on_finished = None  # called (outside the lock) when a worker's layout is written

    def path(self, key: str) -> Path:
        return self.directory / f"{key}.npz"

    def _ready(self, key: str) -> Layout | None:
        if key not in self._loaded:
            path = self.path(key)
            if not path.is_file():
                return None
            try:
                self._loaded[key] = load_layout(path)
            except (OSError, ValueError, KeyError) as err:
                path.unlink(missing_ok=True)  # a damaged cache file is recomputed
                self._failed.pop(key, None)
                return Layout("failed", key, message=f"cached layout unreadable ({err}); recomputing")
        r = self._loaded[key]
        return Layout("ready", key, r["xy"], r["edges"], r["distances"], seconds=r.get("seconds", {}))

    def request(self, key: str, X: np.ndarray, clusters=None) -> Layout:
        """The layout for ``key``: ready from disk, running, or queued behind the one running
        worker; a worker is started when none runs (and the memory it needs is available)."""
        with self._lock:
            finished = self._reap()
            self._start_next()
            ready = self._ready(key)
            if ready is None:
                if key in self._running:
                    _, started, _ = self._running[key]
                    found = Layout("running", key, elapsed=time.time() - started)
                elif key in self._failed:
                    found = Layout("failed", key, message=self._failed[key])
                else:
                    if key not in self._queue:
                        self._queue[key] = (X, clusters)
                    self._start_next()
                    found = self._where(key)
            else:
                found = ready
        if finished and self.on_finished is not None:
            self.on_finished()
        return found

    def _where(self, key: str) -> Layout:
        if key in self._running:
            return Layout("running", key)
        if key in self._failed:
            return Layout("failed", key, message=self._failed[key])
        ahead = list(self._queue).index(key) + len(self._running)
        return Layout("queued", key, message=f"queued behind {ahead} other layout(s)")

    def _reap(self) -> bool:
        """Collect a finished worker (its result, or why it failed); True when one finished."""
        finished = False
        for key, (proc, _, log) in list(self._running.items()):
            code = proc.poll()
            if code is None:
                continue
            finished = True
            del self._running[key]
            (self.directory / f"{key}.items.npz").unlink(missing_ok=True)
            if not self.path(key).is_file():
                tail = log.read_text(errors="replace").strip().splitlines()[-3:] if log.exists() else []
                self._failed[key] = f"the layout worker exited with status {code}: " + " / ".join(tail)
        return finished

    def _start_next(self) -> None:
        """Start the first queued layout if no worker runs; refuse it when memory is short."""
        while not self._running and self._queue:
            key = next(iter(self._queue))
            X, clusters = self._queue.pop(key)
            needed, available = layout_bytes(*np.shape(X)), int(self.available_bytes())
            if needed > available:
                self._failed[key] = (f"needs about {needed / 2**30:.1f} GiB of memory and "
                                     f"{available / 2**30:.1f} GiB is available")
                continue
            self._start(key, X, clusters)

    def busy_paths(self) -> list[Path]:
        """Files of running workers (never evicted from the cache while they run)."""
        with self._lock:
            return [p for key in self._running for p in (self.path(key), self.directory / f"{key}.items.npz",
                                                         self.directory / f"{key}.log")]

    def _start(self, key: str, X: np.ndarray, clusters) -> None:
        items = self.directory / f"{key}.items.npz"
        arrays = {"X": np.ascontiguousarray(X, dtype=np.float32)}
        if clusters is not None:
            arrays["clusters"] = np.asarray(clusters, dtype=np.int64)
        np.savez(items, **arrays)
        log = self.directory / f"{key}.log"
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        args = [sys.executable, str(WORKER), str(items), str(self.path(key))]
        with open(log, "w") as handle:
            proc = subprocess.Popen(args, stdout=handle, stderr=subprocess.STDOUT, env=env,
                                    stdin=subprocess.DEVNULL, cwd=str(REPO_ROOT))
        self._running[key] = (proc, time.time(), log)

    def compute_now(self, key: str, X: np.ndarray, clusters=None) -> Layout:
        """Compute in this process (no worker) and cache; for the batch export and tests."""
        with self._lock:
            ready = self._ready(key)
        if ready is not None:
            return ready
        save_layout(compute_layout(X, clusters=clusters), str(self.path(key)))
        with self._lock:
            return self._ready(key)

    def wait(self, key: str, X: np.ndarray, timeout: float = 600.0, poll: float = 0.5, clusters=None) -> Layout:
        """Block until the layout is ready or failed (starting a worker if needed)."""
        deadline = time.time() + timeout
        while True:
            layout = self.request(key, X, clusters=clusters)
            if layout.status not in ("running", "queued") or time.time() > deadline:
                return layout
            time.sleep(poll)

    def stop(self) -> None:
        """End running workers (at interpreter exit) and forget the queue."""
        with self._lock:
            for proc, _, _ in self._running.values():
                if proc.poll() is None:
                    proc.terminate()
            self._running.clear()
            self._queue.clear()


def _available_bytes() -> int:
    import psutil

    return int(psutil.virtual_memory().available)


def layout_bytes(n_items: int, n_dims: int = 32) -> int:
    """Rough peak memory of one layout worker for N items of D dims: the interpreter with
    numba, UMAP and scikit-learn (~500 MB), the items, the exact distance matrix up to
    EXACT_MAX items, kNN tables and UMAP's fuzzy graph and embedding."""
    n, d = int(n_items), int(n_dims)
    exact = n * n * 8 if n <= EXACT_MAX else 2048 * n * 4
    return 500 * 2**20 + n * d * 4 * 3 + exact + n * 15 * 80


_JOBS: dict[Path, LayoutJobs] = {}
_JOBS_LOCK = threading.Lock()


def jobs_for(workspace) -> LayoutJobs:
    """The LayoutJobs of a workspace's cache directory (one per directory per process); a
    finished layout trims the cache directory to its cap (``Workspace.trim_cache_dir``)."""
    directory = Path(workspace.cache_dir) / "layouts"
    with _JOBS_LOCK:
        if directory not in _JOBS:
            jobs = _JOBS[directory] = LayoutJobs(directory)
            jobs.on_finished = workspace.trim_cache_dir
        return _JOBS[directory]


def layout_key(memory) -> str:
    """Cache key of a memory's item layout: content hash of the items + layout parameters."""
    return content_key("item-layout", items_key(memory), LAYOUT_PARAMS)


BUNDLED_DIR = "layouts"  # a domain-memory directory may carry its item layouts here


def bundled_path(domain_dir: Path, key: str) -> Path:
    """Where a layout shipped with a domain-memory directory lives."""
    return Path(domain_dir) / BUNDLED_DIR / f"{key}.npz"


def adopt_bundled(workspace, key: str) -> None:
    """Copy a layout shipped beside one of the workspace's domain memories into the cache."""
    jobs = jobs_for(workspace)
    if jobs.path(key).is_file():
        return
    for name in workspace.domains.names():
        candidate = bundled_path(workspace.domains.path(name), key)
        if candidate.is_file():
            atomic_write_bytes(jobs.path(key), candidate.read_bytes())  # readers never see half a file
            return


def request(workspace, memory) -> Layout:
    """The item layout of ``memory`` (see :meth:`LayoutJobs.request`); a bundled one is used first."""
    key = layout_key(memory)
    adopt_bundled(workspace, key)
    return jobs_for(workspace).request(key, memory.items, clusters=memory.clusters)


def bundle(domain_dir: Path, memory) -> Path:
    """Compute the item layout of ``memory`` and store it inside its directory ``domain_dir``."""
    path = bundled_path(domain_dir, layout_key(memory))
    path.parent.mkdir(parents=True, exist_ok=True)
    save_layout(compute_layout(memory.items, None, clusters=memory.clusters), str(path))
    return path


def wait(workspace, memory, timeout: float = 600.0) -> Layout:
    """Block until the item layout of ``memory`` is ready (or failed)."""
    return jobs_for(workspace).wait(layout_key(memory), memory.items, timeout=timeout, clusters=memory.clusters)


def compute_now(workspace, memory) -> Layout:
    """The item layout of ``memory``, computed in this process when not cached (batch export)."""
    return jobs_for(workspace).compute_now(layout_key(memory), memory.items, clusters=memory.clusters)


def pca_layout(X: np.ndarray) -> np.ndarray:
    """The first two principal components of X [N, D] -> [N, 2]: an instant stand-in layout."""
    X = np.asarray(X, dtype=np.float64)
    centred = X - X.mean(axis=0)
    if len(X) < 2:
        return np.zeros((len(X), 2))
    _, _, vt = np.linalg.svd(centred[: min(len(X), 20000)], full_matrices=False)
    xy = centred @ vt[:2].T
    if xy.shape[1] < 2:
        xy = np.hstack([xy, np.zeros((len(X), 2 - xy.shape[1]))])
    return xy


def _stop_all() -> None:
    for jobs in list(_JOBS.values()):
        jobs.stop()


atexit.register(_stop_all)
