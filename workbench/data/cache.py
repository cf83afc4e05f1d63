"""The workspace's one server-side cache: named parts with their own limits, one key scheme.

Every result is stored under ``content_key(kind, identity, params...)`` -- the identity being
a checkpoint's :class:`~workbench.data.identity.CheckpointRef`, a domain memory's fingerprint
or a file's stamps -- in one part of a :class:`WorkspaceCache`. A part is a thread-safe LRU:
a second look at the same thing is instant, and two identical requests at once compute it once.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import threading
from collections import OrderedDict
from typing import Callable

# part -> most entries kept (None: never evicted)
PART_LIMITS: dict[str, int | None] = {
    "models": 6,  # (model, meta) per checkpoint ref: the big ones
    "histories": 4,  # history arrays of every run, per set of latest checkpoints
    "probes": 12,  # probe views (attention maps [L,H,T,T])
    "results": 256,  # small results derived from checkpoints: statistics, what-ifs, spectra, tokenizers
    "measurements": 32,  # decode timings: measured once per session
    "summaries": 8,  # study summaries, per set of run histories
    "domains": None,  # loaded domain memories by name and path: never evicted (pages hold them)
    "domain-results": 64,  # what the domain pages compute: spectra, graphs, item values, figures
}


def _plain(value):
    """JSON stand-in for parts json cannot write: dataclasses of plain fields (identities) as
    dicts, else str. (vars, not dataclasses.asdict: no deep copy on every lookup.)"""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {"__ref__": type(value).__name__, **vars(value)}
    return str(value)


def content_key(*parts) -> str:
    """A short stable hash of JSON-able parts: (kind, identity, params...)."""
    blob = json.dumps(parts, sort_keys=True, default=_plain).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()[:24]


class ResultCache:
    """Thread-safe LRU of computed results (one part of a WorkspaceCache); max_items None: no limit."""

    def __init__(self, max_items: int | None = 64):
        self.max_items = max_items
        self._items: OrderedDict[str, object] = OrderedDict()
        self._lock = threading.Lock()
        self._key_locks: dict[str, threading.Lock] = {}

    def get_or_compute(self, key: str, compute: Callable[[], object]):
        """The cached value for key, computing it once (concurrent callers wait for that one)."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:
            with self._lock:
                if key in self._items:
                    return self._items[key]
            value = compute()
            with self._lock:
                self._items[key] = value
                while self.max_items is not None and len(self._items) > self.max_items:
                    self._items.popitem(last=False)
                self._key_locks.pop(key, None)
            return value

    def __contains__(self, key: str) -> bool:
        with self._lock:
            return key in self._items

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


class WorkspaceCache:
    """The named parts (PART_LIMITS, or ``limits``) every store of one Workspace caches in."""

    def __init__(self, limits: dict[str, int | None] | None = None):
        self.limits = dict(PART_LIMITS if limits is None else limits)
        self._parts = {name: ResultCache(limit) for name, limit in self.limits.items()}

    def part(self, name: str) -> ResultCache:
        if name not in self._parts:
            raise KeyError(f"no cache part {name!r}; parts: {', '.join(self._parts)}")
        return self._parts[name]

    def get_or_compute(self, part: str, key: str, compute: Callable[[], object]):
        """The value cached under key in part, computed once (see ResultCache.get_or_compute)."""
        return self.part(part).get_or_compute(key, compute)

    def contains(self, part: str, key: str) -> bool:
        return key in self.part(part)

    def __contains__(self, key: str) -> bool:
        """Whether any part holds key."""
        return any(key in p for p in self._parts.values())

    def sizes(self) -> dict[str, int]:
        """Entries held per part."""
        return {name: len(p) for name, p in self._parts.items()}

    def clear(self, part: str | None = None) -> None:
        """Forget one part, or every part but the loaded domain memories (they are inputs)."""
        for name in [part] if part else [n for n in self._parts if n != "domains"]:
            self.part(name).clear()
