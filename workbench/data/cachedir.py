"""The cache directory: private to its user, or refused.

Layouts, uploads and domain memories built from uploads live here, and the app reads them
back. A directory other users can write to (the old shared ``<tmp>/tauformer-workbench``)
would let one of them plant files for the next person's app to read, so the default is
per user (``$XDG_CACHE_HOME/tauformer-workbench``, else ``~/.cache/tauformer-workbench``),
created with mode 0700, and any directory not owned by the current user or writable by
group or others is refused with one line naming it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from tauformer.errors import TauformerError

APP_NAME = "tauformer-workbench"


class CacheDirError(TauformerError):
    """The cache directory cannot be used safely (foreign owner, group/other-writable, not a dir)."""


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/tauformer-workbench``, else ``~/.cache/tauformer-workbench``."""
    base = os.environ.get("XDG_CACHE_HOME") or ""
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".cache"
    return root / APP_NAME


def check_private(path: Path) -> None:
    """Raise CacheDirError unless ``path`` is a real directory owned by this user and not
    writable by group or others (a symlink is judged by what it points to)."""
    try:
        info = os.stat(path)
    except OSError as err:
        raise CacheDirError(f"cache directory {path}: cannot be read ({err.strerror})") from None
    if not stat.S_ISDIR(info.st_mode):
        raise CacheDirError(f"cache directory {path}: not a directory")
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        raise CacheDirError(f"cache directory {path}: owned by another user (uid {info.st_uid}); "
                            f"give --cache-dir a directory of your own")
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise CacheDirError(f"cache directory {path}: writable by other users (mode "
                            f"{stat.S_IMODE(info.st_mode):o}); run chmod 700 on it or give another --cache-dir")


def ensure_private_dir(path=None) -> Path:
    """The cache directory ``path`` (default :func:`default_cache_dir`), created mode 0700
    when missing, checked with :func:`check_private`; returns it as an absolute Path."""
    path = Path(path).expanduser() if path else default_cache_dir()
    path = path.absolute()
    if not path.exists():
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            path.mkdir(mode=0o700)
        except FileExistsError:
            pass  # created meanwhile by another process: checked below like any other
        except OSError as err:
            raise CacheDirError(f"cache directory {path}: cannot be created ({err.strerror})") from None
    check_private(path)
    return path
