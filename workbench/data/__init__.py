"""The data layer: the only part of the workbench that imports tauformer.

A `Workspace` holds the runs and domain memories the app was started with, loads models and
domain files on demand, runs probes, and caches results server-side in one `WorkspaceCache`
keyed by content (a checkpoint's `CheckpointRef`, a domain memory's fingerprint). It returns
numpy arrays, pandas frames and plain dicts -- never torch tensors -- so figures and views
stay free of torch. The package only re-exports; the modules below it never import it.
"""

from __future__ import annotations

from .cache import PART_LIMITS, ResultCache, WorkspaceCache, content_key
from .cachedir import CacheDirError, default_cache_dir, ensure_private_dir
from .domains import DomainStore
from .identity import CheckpointRef
from .runs import RunInfo, RunStore
from .workspace import DEFAULT_CACHE_MAX_MB, DEMO_DIR, REPO_ROOT, Workspace, demo_workspace, open_workspace

__all__ = ["Workspace", "CacheDirError", "default_cache_dir", "ensure_private_dir", "DEFAULT_CACHE_MAX_MB",
           "RunInfo", "RunStore", "DomainStore", "ResultCache", "WorkspaceCache", "PART_LIMITS", "CheckpointRef",
           "content_key", "demo_workspace", "open_workspace", "DEMO_DIR", "REPO_ROOT"]
