"""Atomic writes: a reader (or a crash) never sees a half-written file or checkpoint."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write data to a temporary file beside `path`, fsync it, then rename it over `path`.

    The file ends with the mode a plain open() would give it (0o666 less the umask), not the
    temporary file's private 0o600, so it matches the other files written beside it. Where
    privacy matters the directory provides it (the workbench cache is a 0o700 directory).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, 0o666 & ~process_umask())
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def process_umask() -> int:
    """The process umask, read without changing it where the system allows (Linux's /proc):
    setting it to read it would briefly loosen files other threads create."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o077)  # elsewhere: set (to something private, never looser) and restore
    os.umask(mask)
    return mask


def atomic_write_json(path: str | Path, obj, *, compact: bool = False) -> Path:
    """JSON (UTF-8; indented, or without spaces when compact) written atomically."""
    text = json.dumps(obj, default=_json_default, **({"separators": (",", ":")} if compact else {"indent": 2}))
    return atomic_write_bytes(path, (text + "\n").encode("utf-8"))


def _json_default(obj):
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot write {type(obj).__name__} as JSON")


@contextmanager
def atomic_directory(path: str | Path):
    """Yield a temporary directory; on success it replaces `path` in one rename, else it is removed.

    An existing `path` is moved aside first and deleted only after the new one is in place, so
    a crash at any moment leaves either the old or the new directory under `path`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        _fsync_dir(tmp)
        old = None
        if path.exists():
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            os.replace(path, old)
        os.replace(tmp, path)
        _fsync_dir(path.parent)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
