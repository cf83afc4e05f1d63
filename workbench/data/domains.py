"""Domain memories the app was given (files or directories), loaded on demand and cached."""

from __future__ import annotations

from pathlib import Path

from tauformer.errors import TauformerError
from tauformer.safefile import check_regular

from .cache import WorkspaceCache, content_key

DOMAIN_FILE = "domain.safetensors"  # = tauformer.domain.io.DOMAIN_FILE; not imported: start-up stays quick
DOMAIN_SUFFIXES = (".safetensors", ".parquet")  # what load_domain_memory reads besides a directory
BUILD_INPUTS = (".npy", ".npz", ".csv", ".txt", ".md")  # what `domain build` takes but the app does not


def domain_path_problem(path: Path) -> str | None:
    """Why `path` cannot be a domain memory, in one line, or None -- from its name and kind only.

    Cheap on purpose (nothing is read or parsed): the full validation runs when it is opened.
    """
    if not path.exists():
        return f"{path}: no such domain-memory file"
    if path.is_dir():
        inner = path / DOMAIN_FILE
        if inner.is_file():
            return None
        if inner.exists():  # a FIFO, socket or directory under the domain file's name
            try:
                check_regular(inner, root=path)
            except TauformerError as err:
                return str(err)
        return (f"{path}: not a domain memory (a directory from `domain build` holds {DOMAIN_FILE}; "
                "this one does not)")
    if path.suffix.lower() in DOMAIN_SUFFIXES:
        return None
    problem = f"{path}: not a domain memory (a .safetensors file or a directory from `domain build`)"
    if path.suffix.lower() in BUILD_INPUTS:
        problem += f"; build one with python -m tauformer domain build {path} --dim D --out FILE"
    return problem


class DomainStore:
    """Domain memories by display name; a file that cannot be loaded becomes a problem message.

    Loaded memories are kept in the "domains" part of ``cache`` (the workspace's; a private one
    when None), never evicted, keyed by name and path.
    """

    def __init__(self, paths, *, cache: WorkspaceCache | None = None):
        self.problems: list[str] = []
        self._paths: dict[str, Path] = {}
        self.cache = WorkspaceCache() if cache is None else cache
        for raw in paths:
            self.add(Path(raw))

    def add(self, path: Path, name: str | None = None) -> str | None:
        """Register a domain file; returns its name, or None (with a problem recorded) if it is
        missing or plainly not a domain memory (see :func:`domain_path_problem`)."""
        problem = domain_path_problem(path)
        if problem:
            self.problems.append(problem)
            return None
        base = name or (path.parent.name if path.name in ("domain", "domain.safetensors") else path.stem)
        name, i = base, 2
        while name in self._paths and self._paths[name] != path:
            name, i = f"{base}-{i}", i + 1
        self._paths[name] = path
        return name

    def names(self) -> list[str]:
        return list(self._paths)

    def path(self, name: str) -> Path:
        if name not in self._paths:
            raise KeyError(f"unknown domain memory {name!r}; loaded: {', '.join(self._paths) or 'none'}")
        return self._paths[name]

    def load(self, name: str):
        """The DomainMemory of `name` (loaded once)."""
        path = self.path(name)

        def load():
            from tauformer.domain import load_domain_memory  # on first use: keeps start-up quick

            return load_domain_memory(path)

        return self.cache.get_or_compute("domains", content_key("domain", name, str(path)), load)

    def try_load(self, name: str):
        """(memory, None) or (None, message) -- for views that must keep running."""
        try:
            return self.load(name), None
        except (TauformerError, KeyError, OSError) as err:
            return None, str(err)
