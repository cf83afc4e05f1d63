"""Studies on disk (`python -m tauformer study --out DIR`): discovery and their summaries.

A study directory holds study.json, runs/<variant>-s<seed>/ and, once written, summary.json.
The summary is recomputed from the runs' histories (JSON only, no weights) so a study that is
still training shows its progress; a study shipped without run histories falls back to its
summary.json. Results are cached by the histories' modification times and sizes.
"""

from __future__ import annotations

import json
from pathlib import Path

from tauformer.errors import TauformerError
from tauformer.study.summary import summarise_study

from .cache import WorkspaceCache, content_key
from .identity import file_stamp


def is_study_dir(path: Path) -> bool:
    return path.is_dir() and ((path / "study.json").is_file() or (path / "summary.json").is_file())


def discover_studies(paths) -> list[Path]:
    """Study directories among the given paths and their direct children, in order, no repeats."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if not path.is_dir():
            continue
        candidates = [path] if is_study_dir(path) else sorted(p for p in path.iterdir() if is_study_dir(p))
        found += [p for p in candidates if p.resolve() not in {f.resolve() for f in found}]
    return found


class StudyStore:
    """Studies by name (the directory name, made unique); summaries computed on demand and cached."""

    def __init__(self, paths, *, cache: WorkspaceCache | None = None):
        self._studies: dict[str, Path] = {}
        for path in discover_studies(paths):
            name, i = path.name, 2
            while name in self._studies:
                name, i = f"{path.name}-{i}", i + 1
            self._studies[name] = path
        self.cache = WorkspaceCache() if cache is None else cache  # summaries in its "summaries" part
        self.problems: list[str] = []

    def names(self) -> list[str]:
        return list(self._studies)

    def path(self, name: str) -> Path:
        if name not in self._studies:
            raise KeyError(f"unknown study {name!r}; loaded studies: {', '.join(self._studies) or 'none'}")
        return self._studies[name]

    def summary(self, name: str) -> dict:
        """The study's summary dict (see tauformer.study.summary); raises TauformerError on bad files."""
        path = self.path(name)
        stamps = sorted((str(p), *file_stamp(p)) for p in path.glob("runs/*/history.json"))
        return self.cache.get_or_compute("summaries", content_key("study", str(path), stamps), lambda: self._load(path))

    @staticmethod
    def _load(path: Path) -> dict:
        summary = summarise_study(path)
        if summary["variants"] or not (path / "summary.json").is_file():
            return summary
        try:  # shipped without histories: the summary as written
            return json.loads((path / "summary.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise TauformerError(f"{path / 'summary.json'}: unreadable study summary ({err})") from None
