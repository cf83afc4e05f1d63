"""Server-side result cache keyed by content, so a second look at the same thing is instant."""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from typing import Callable


def content_key(*parts) -> str:
    """A short stable hash of JSON-able parts (paths, fingerprints, parameters, prompts)."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()[:24]


class ResultCache:
    """Thread-safe LRU of computed results."""

    def __init__(self, max_items: int = 64):
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
                while len(self._items) > self.max_items:
                    self._items.popitem(last=False)
                self._key_locks.pop(key, None)
            return value

    def __contains__(self, key: str) -> bool:
        with self._lock:
            return key in self._items

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
