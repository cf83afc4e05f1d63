"""Keep the cache directory under its size cap: the least recently written entries go first.

An entry is what one key owns: a layout (``layouts/<key>.*``), a stored upload
(``uploads/<sha><suffix>``), a domain memory built from an upload (``domains/<key>/``) or
a synthetic benchmark domain (``synthetic/<name>/``). Entries in use -- domain memories the
workspace has loaded, layouts whose worker is running -- are never evicted; everything
evicted is recomputed (or asked for again) when needed.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

GROUPED_DIRS = ("domains", "synthetic")  # one entry per sub-directory
FILE_DIRS = ("uploads",)  # one entry per file
LAYOUT_DIR = "layouts"  # one entry per key: <key>.npz, <key>.items.npz, <key>.log


@dataclass
class Entry:
    paths: list[Path]
    size: int
    mtime: float


def _tree_size(path: Path) -> tuple[int, float]:
    if path.is_file():
        st = path.stat()
        return st.st_size, st.st_mtime
    size, mtime = 0, path.stat().st_mtime
    for p in path.rglob("*"):
        if p.is_file() and not p.is_symlink():
            st = p.stat()
            size, mtime = size + st.st_size, max(mtime, st.st_mtime)
    return size, mtime


def cache_entries(cache_dir) -> list[Entry]:
    """Every evictable entry under ``cache_dir``, oldest first."""
    root = Path(cache_dir)
    entries = []
    for name in GROUPED_DIRS + FILE_DIRS:
        folder = root / name
        if folder.is_dir():
            for p in folder.iterdir():
                if not p.is_symlink():
                    entries.append(Entry([p], *_tree_size(p)))
    folder = root / LAYOUT_DIR
    if folder.is_dir():
        by_key: dict[str, list[Path]] = {}
        for p in folder.iterdir():
            if p.is_file() and not p.is_symlink():
                by_key.setdefault(p.name.split(".", 1)[0], []).append(p)
        for paths in by_key.values():
            stats = [p.stat() for p in paths]
            entries.append(Entry(paths, sum(s.st_size for s in stats), max(s.st_mtime for s in stats)))
    return sorted(entries, key=lambda e: e.mtime)


def cache_size(cache_dir) -> int:
    """Bytes the evictable entries under ``cache_dir`` take."""
    return sum(e.size for e in cache_entries(cache_dir))


def enforce_cap(cache_dir, max_bytes: int, protect=()) -> list[Path]:
    """Delete the oldest entries until the cache takes at most ``max_bytes``; entries with a
    path in (or under) ``protect`` stay. Returns the paths removed."""
    protected = {Path(p).absolute() for p in protect}

    def kept(entry: Entry) -> bool:
        return any(p.absolute() == q or q in p.absolute().parents or p.absolute() in q.parents
                   for p in entry.paths for q in protected)

    entries = cache_entries(cache_dir)
    total = sum(e.size for e in entries)
    removed = []
    for entry in entries:
        if total <= max_bytes:
            break
        if kept(entry):
            continue
        for p in entry.paths:
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
            removed.append(p)
        total -= entry.size
    return removed


def trim_workspace_cache(workspace, extra_protect=()) -> list[Path]:
    """:func:`enforce_cap` for a workspace (its cap; its loaded domain memories and running
    layout workers protected): see ``Workspace.trim_cache_dir``."""
    return workspace.trim_cache_dir(extra_protect)
