"""The data layer: the only part of the workbench that imports tauformer.

A `Workspace` holds the runs and domain memories the app was started with, loads models and
domain files on demand, runs probes, and caches results server-side by content hash. It
returns numpy arrays, pandas frames and plain dicts -- never torch tensors -- so figures and
views stay free of torch.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from .cache import ResultCache, content_key
from .cachedir import CacheDirError, default_cache_dir, ensure_private_dir
from .domains import DomainStore
from .runs import RunInfo, RunStore
from .studies import StudyStore

REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO_DIR = REPO_ROOT / "assets" / "demo"
DEFAULT_CACHE_MAX_MB = 2048.0


class Workspace:
    """Runs + domain memories + caches, shared by every view of one app."""

    def __init__(self, runs=(), domains=(), *, cache_dir: str | Path | None = None,
                 max_upload_mb: float = 50.0, cache_max_mb: float | None = None):
        self.cache_dir = ensure_private_dir(cache_dir)  # CacheDirError when others could write there
        self.runs = RunStore(runs)
        self.studies = StudyStore(runs)  # study directories among (or directly inside) the run paths
        self.domains = DomainStore(domains)
        self.cache = ResultCache()
        self.max_upload_mb = float(max_upload_mb)  # cap on files uploaded in the app
        # cap on the cache directory's size on disk (oldest entries evicted); None: the default
        self.cache_max_mb = float(DEFAULT_CACHE_MAX_MB if cache_max_mb is None else cache_max_mb)

    @cached_property
    def probes(self):
        """Probe results of the runs (created on first use: it imports torch)."""
        from .probes import ProbeStore

        return ProbeStore(self.runs, self.domains)

    @property
    def problems(self) -> list[str]:
        """Messages about inputs that could not be used (shown in the app, never raised)."""
        return self.runs.problems + self.domains.problems

    def describe(self) -> dict:
        """Plain summary of what is loaded (for the status bar and the overview page)."""
        return {
            "runs": [{"name": r, "label": self.runs.info(r).label, "steps": self.runs.info(r).steps,
                      "attention": self.runs.info(r).attention} for r in self.runs.names()],
            "domains": self.domains.names(),
            "problems": self.problems,
        }


def demo_workspace(**kwargs) -> Workspace:
    """The bundled demo: the runs in assets/demo/ and its domain memory."""
    domain = DEMO_DIR / "domain"
    return Workspace(runs=[DEMO_DIR], domains=[domain] if domain.exists() else [], **kwargs)


def open_workspace(runs=None, domains=None, **kwargs) -> Workspace:
    """The given runs and domain memories, each defaulting to the bundled demo's when not given.

    ``runs=None`` (no ``--runs``) means the demo's runs, so ``--domain FILE`` alone looks at
    the demo models against another domain memory. ``domains=None`` means the demo's domain
    memory only when the runs are the demo's too: runs of one's own are not paired with a
    domain memory they were not trained on. An empty list means none.
    """
    if runs is None and domains is None:
        return demo_workspace(**kwargs)
    if runs is None:
        runs = [DEMO_DIR]
    return Workspace(runs=runs, domains=domains or [], **kwargs)


__all__ = ["Workspace", "CacheDirError", "default_cache_dir", "ensure_private_dir", "DEFAULT_CACHE_MAX_MB", "RunInfo", "RunStore", "DomainStore", "ResultCache", "content_key", "demo_workspace", "open_workspace", "DEMO_DIR"]
