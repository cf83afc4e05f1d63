"""What a cached result is derived from: one identity per checkpoint and per domain memory's items.

A checkpoint is identified by its directory and the modification time and size of its weights
(``model.safetensors``) and config (``config.json``): a checkpoint rewritten in place -- a run
still training -- gets a new identity, so its model and everything computed from it are loaded
and computed again. A domain memory's identity is its ``fingerprint`` (Laplacian + builder
parameters); its item matrix has its own content hash, :func:`items_key`, which also names
item layouts on disk.
"""

from __future__ import annotations

import hashlib
import os
import threading
import weakref
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tauformer.checkpoint import CONFIG_FILE, WEIGHTS_FILE


def file_stamp(path) -> tuple[int, int]:
    """(mtime in ns, size in bytes) of a file, (0, -1) when it is missing or unreadable."""
    try:
        st = os.stat(path)
    except OSError:
        return 0, -1
    return st.st_mtime_ns, st.st_size


@dataclass(frozen=True)
class CheckpointRef:
    """One checkpoint as it is on disk now: its directory and its files' stamps.

    Equal refs mean the same weights and config; every result derived from a checkpoint
    (the loaded model, probes, spectra, losses, timings) is cached under its ref.
    """

    path: str
    weights_mtime_ns: int
    weights_size: int
    config_mtime_ns: int
    config_size: int

    @classmethod
    def of(cls, path) -> "CheckpointRef":
        """The ref of the checkpoint directory ``path`` as it is now."""
        path = os.fspath(path)
        return cls(path, *file_stamp(os.path.join(path, WEIGHTS_FILE)), *file_stamp(os.path.join(path, CONFIG_FILE)))

    @property
    def directory(self) -> Path:
        return Path(self.path)


_ITEMS_KEYS: dict[int, str] = {}  # id(memory) -> items key, dropped when the memory is collected
_ITEMS_LOCK = threading.Lock()


def items_hash(items) -> str:
    """Content hash of an item matrix [N, D] (as float32, shape included)."""
    X = np.ascontiguousarray(items, dtype=np.float32)
    return hashlib.sha256(np.asarray(X.shape, dtype="<i8").tobytes() + X.tobytes()).hexdigest()[:32]


def items_key(memory) -> str:
    """Content hash of a domain memory's item matrix (what item layouts are cached under).

    Hashed once per loaded memory object (large item matrices take a while) and remembered
    beside it here, never on the object itself, until the object is collected.
    """
    ident = id(memory)
    with _ITEMS_LOCK:
        found = _ITEMS_KEYS.get(ident)
    if found is not None:
        return found
    key = items_hash(memory.items)
    with _ITEMS_LOCK:
        if ident not in _ITEMS_KEYS:
            _ITEMS_KEYS[ident] = key
            weakref.finalize(memory, _ITEMS_KEYS.pop, ident, None)
    return key
