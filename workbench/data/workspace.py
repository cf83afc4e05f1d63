"""The Workspace: the runs, studies and domain memories one app serves, and their one cache."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from .cache import WorkspaceCache
from .cache_size import enforce_cap
from .cachedir import ensure_private_dir
from .domains import DomainStore
from .runs import RunStore
from .studies import StudyStore

REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO_DIR = REPO_ROOT / "assets" / "demo"
DEFAULT_CACHE_MAX_MB = 2048.0


class Workspace:
    """Runs + domain memories + one cache (:class:`WorkspaceCache`), shared by every view of one app."""

    def __init__(self, runs=(), domains=(), *, cache_dir: str | Path | None = None,
                 max_upload_mb: float = 50.0, cache_max_mb: float | None = None):
        self.cache_dir = ensure_private_dir(cache_dir)  # CacheDirError when others could write there
        self.cache = WorkspaceCache()  # every store below keeps its results in one of its parts
        self.runs = RunStore(runs, cache=self.cache)
        self.studies = StudyStore(runs, cache=self.cache)  # study directories among (or inside) the run paths
        self.domains = DomainStore(domains, cache=self.cache)
        self.max_upload_mb = float(max_upload_mb)  # cap on files uploaded in the app
        # cap on the cache directory's size on disk (oldest entries evicted); None: the default
        self.cache_max_mb = float(DEFAULT_CACHE_MAX_MB if cache_max_mb is None else cache_max_mb)

    @cached_property
    def probes(self):
        """Probe results of the runs (created on first use: it imports torch)."""
        from .probes import ProbeStore

        return ProbeStore(self.runs, self.domains, self.cache)

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

    def trim_cache_dir(self, extra_protect=()) -> list[Path]:
        """Keep the cache directory under its cap (see :func:`~.cache_size.enforce_cap`): the
        loaded domain memories, the files of running layout workers and ``extra_protect`` stay."""
        from .item_layout import jobs_for  # on first use: layouts import numpy-heavy helpers

        protect = list(extra_protect)
        for name in self.domains.names():
            protect.append(self.domains.path(name))
        protect += jobs_for(self).busy_paths()
        return enforce_cap(self.cache_dir, int(self.cache_max_mb * 2**20), protect)


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
