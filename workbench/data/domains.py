"""Domain memories the app was given (files or directories), loaded on demand and cached."""

from __future__ import annotations

from pathlib import Path

from tauformer.errors import TauformerError

from .cache import ResultCache


class DomainStore:
    """Domain memories by display name; a file that cannot be loaded becomes a problem message."""

    def __init__(self, paths):
        self.problems: list[str] = []
        self._paths: dict[str, Path] = {}
        self._loaded = ResultCache(max_items=2**31)  # name -> DomainMemory, never evicted
        for raw in paths:
            self.add(Path(raw))

    def add(self, path: Path, name: str | None = None) -> str | None:
        """Register a domain file; returns its name, or None (with a problem recorded) if missing."""
        if not path.exists():
            self.problems.append(f"{path}: no such domain-memory file")
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

        return self._loaded.get_or_compute(name, load)

    def try_load(self, name: str):
        """(memory, None) or (None, message) -- for views that must keep running."""
        try:
            return self.load(name), None
        except (TauformerError, KeyError, OSError) as err:
            return None, str(err)
