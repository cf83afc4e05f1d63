"""Training runs on disk: discovery, checkpoints, cached models, histories, tau / dot pairing."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tauformer.checkpoint import HISTORY_FILE, list_checkpoints, load_checkpoint, read_history, read_meta
from tauformer.config import ModelConfig, TrainConfig
from tauformer.errors import CheckpointError, TauformerError

from .cache import WorkspaceCache, content_key
from .identity import CheckpointRef, file_stamp

PAIR_KEYS = ("n_layer", "n_head", "n_kv_head", "n_embd", "block_size", "vocab_size")


@dataclass
class RunInfo:
    """One run directory: its name in the app, attention kind, shape and checkpoints."""

    name: str
    path: Path
    attention: str
    model: ModelConfig
    train: TrainConfig | None
    checkpoints: dict[int, Path] = field(default_factory=dict)  # step -> checkpoint directory

    @property
    def steps(self) -> list[int]:
        """Checkpoint steps, ascending."""
        return sorted(self.checkpoints)

    @property
    def label(self) -> str:
        m = self.model
        if self.attention == "dot":
            detail = "dot-product"
        else:
            temp = "learnable T" if m.learn_temperature else f"T={m.temperature}"
            tau = "calibrated tau" if m.tau_mode == "calibrated" else f"tau {m.tau_mode} {m.tau}"
            detail = f"tau: {tau}, {temp}"
        return f"{self.name} ({detail}; {m.n_layer}x{m.n_head} heads, D={m.head_dim})"


def discover_runs(paths) -> tuple[list[RunInfo], list[str]]:
    """Runs found under each path (a run directory, a checkpoint, or a folder of runs) and problems.

    A path or run that cannot be used becomes one problem line naming it; the others still load.
    """
    runs: list[RunInfo] = []
    problems: list[str] = []
    for raw in paths:
        path = Path(raw)
        try:
            candidates = _candidates(path)
        except (TauformerError, OSError) as err:
            problems.append(str(err) if isinstance(err, TauformerError) else f"{path}: cannot be listed ({err.strerror or err})")
            continue
        for run_dir in candidates:
            try:
                runs.append(_run_info(run_dir, {r.name for r in runs}))
            except TauformerError as err:
                problems.append(str(err))
            except (OSError, RecursionError, MemoryError) as err:
                problems.append(f"{run_dir}: cannot be read ({type(err).__name__}: {err})")
    return runs, problems


def _candidates(path: Path) -> list[Path]:
    """The run (or checkpoint) directories under one --runs path; CheckpointError if there are none."""
    if not path.exists():
        raise CheckpointError(f"{path}: no such run directory")
    if not path.is_dir():
        raise CheckpointError(f"{path}: not a directory (give a run directory or a folder of runs)")
    if (path / "study.json").is_file() and (path / "runs").is_dir():  # a study: its runs
        path = path / "runs"
    if list_checkpoints(path) or (path / "config.json").exists():
        return [path]
    found = sorted(p for p in path.iterdir() if p.is_dir() and list_checkpoints(p))
    if not found:
        raise CheckpointError(f"{path}: holds no runs (directories with ckpt-<step>/ checkpoints)")
    return found


def _run_info(run_dir: Path, taken: set[str]) -> RunInfo:
    checkpoints = dict(list_checkpoints(run_dir))
    if checkpoints:
        meta = read_meta(checkpoints[max(checkpoints)], history=False)
        name, path = run_dir.name, run_dir
    else:  # a single checkpoint directory given directly
        meta = read_meta(run_dir, history=False)
        checkpoints = {meta.step: run_dir}
        name = run_dir.parent.name if run_dir.name.startswith("ckpt-") else run_dir.name
        path = run_dir.parent
    base, i = name, 2
    while name in taken:
        name, i = f"{base}-{i}", i + 1
    return RunInfo(name=name, path=path, attention=meta.model_config.attention, model=meta.model_config,
                   train=meta.train_config, checkpoints=checkpoints)


class RunStore:
    """Runs by name; models are loaded on demand and the last few kept in the cache's "models" part.

    ``cache`` is the workspace's cache (a private one when None): models are kept under their
    checkpoint's :class:`CheckpointRef`, histories under the refs of the latest checkpoints.
    """

    def __init__(self, paths, *, cache: WorkspaceCache | None = None):
        runs, self.problems = discover_runs(paths)
        self._runs = {r.name: r for r in runs}
        self.cache = WorkspaceCache() if cache is None else cache

    def names(self, attention: str | None = None) -> list[str]:
        return [n for n, r in self._runs.items() if attention is None or r.attention == attention]

    def info(self, name: str) -> RunInfo:
        if name not in self._runs:
            raise KeyError(f"unknown run {name!r}; loaded runs: {', '.join(self._runs) or 'none'}")
        return self._runs[name]

    def checkpoint_path(self, name: str, step: int | None = None) -> Path:
        """The checkpoint directory of `name` at `step` (the nearest one at or before it; latest if None)."""
        return self.info(name).checkpoints[self.nearest_step(name, step)]

    def ref(self, name: str, step: int | None = None) -> CheckpointRef:
        """The identity of the checkpoint of `name` nearest `step` as it is on disk now: a
        checkpoint rewritten in place gets a new ref, so nothing cached under the old one is served."""
        return CheckpointRef.of(self.checkpoint_path(name, step))

    def nearest_step(self, name: str, step: int | None) -> int:
        steps = self.info(name).steps
        if step is None:
            return steps[-1]
        earlier = [s for s in steps if s <= int(step)]
        return earlier[-1] if earlier else steps[0]

    def load(self, name: str, step: int | None = None):
        """(model, meta) of a checkpoint as it is now, cached under its ref."""
        return self.load_ref(self.ref(name, step))

    def load_ref(self, ref: CheckpointRef):
        """(model, meta) of the checkpoint `ref` names, cached under it."""
        return self.cache.get_or_compute("models", content_key("model", ref),
                                         lambda: load_checkpoint(ref.directory, history=False))

    def pair_for(self, name: str) -> str | None:
        """The run of the other attention kind with the same shape (and training data / seed if known)."""
        info = self.info(name)
        other = "dot" if info.attention == "tau" else "tau"
        shape = {k: getattr(info.model, k) for k in PAIR_KEYS}
        candidates = [r for r in self._runs.values()
                      if r.attention == other and {k: getattr(r.model, k) for k in PAIR_KEYS} == shape]
        same_training = [r for r in candidates if _training_key(r) == _training_key(info)]
        chosen = (same_training or candidates)
        if not chosen:
            return None
        if other == "tau":  # prefer this project's default tau run over the reference settings
            chosen.sort(key=lambda r: r.model.tau_mode != "calibrated")
        return chosen[0].name

    def default_pair(self) -> tuple[str | None, str | None]:
        """(tau run, dot run) to open on: the first tau run with calibrated tau, and its partner."""
        taus = sorted(self.names("tau"), key=lambda n: self._runs[n].model.tau_mode != "calibrated")
        if taus:
            return taus[0], self.pair_for(taus[0])
        dots = self.names("dot")
        return None, (dots[0] if dots else None)

    def history(self, name: str) -> list[dict]:
        """The evaluation records of a run (its latest checkpoint's history.json; no weights read).
        A broken history raises CheckpointError naming the file; the run itself stays loaded."""
        return read_history(self.checkpoint_path(name))

    def histories(self) -> dict:
        """Every run's history arrays (history_arrays), cached per set of latest checkpoints (their
        refs and history.json stamps); runs whose files cannot be read are left out. Reads JSON only."""
        names = self.names()
        key = content_key("histories", [(n, self.ref(n), file_stamp(self.checkpoint_path(n) / HISTORY_FILE))
                                        for n in names])

        def compute():
            out = {}
            for name in names:
                try:
                    out[name] = self.history_arrays(name)
                except (TauformerError, KeyError, OSError):
                    continue
            return out

        return self.cache.get_or_compute("histories", key, compute)

    def history_arrays(self, name: str) -> dict:
        """History as arrays: step, losses, lr, tokens/s, elapsed_s [S]; lambda stats, entropy and
        energies [S, L, H] (NaN at evaluations that did not log them)."""
        records = self.history(name)
        try:
            return self._arrays(name, records)
        except (ValueError, TypeError, KeyError, IndexError) as err:
            path = self.checkpoint_path(name) / HISTORY_FILE
            raise CheckpointError(f"{path}: evaluation records do not fit together ({type(err).__name__}: {err})") from None

    def _arrays(self, name: str, records: list[dict]) -> dict:
        out: dict = {"kind": self.info(name).attention, "checkpoints": list(self.info(name).steps)}
        for key in ("step", "train_loss", "val_loss", "val_bpb", "lr", "tokens_per_s", "elapsed_s"):
            out[key] = np.array([r.get(key, np.nan) for r in records], dtype=float)
        if records and "entropy" in records[0]:
            out["entropy"] = np.array([r["entropy"] for r in records], dtype=float)
        for name_ in ("lambda_q", "lambda_k"):
            if records and name_ in records[0]:
                for stat in ("mean", "std", "p05", "p95"):
                    out[f"{name_}_{stat}"] = np.array([r[name_][stat] for r in records], dtype=float)
        logged = [r for r in records if "energy_q" in r]  # runs trained before energies were logged have none
        if logged:
            blank = np.full(np.shape(logged[0]["energy_q"]), np.nan)
            for name_ in ("energy_q", "energy_k"):
                out[name_] = np.array([r.get(name_, blank) for r in records], dtype=float)  # [S, L, H]
        if records and "temperature" in records[0]:
            out["temperature"] = np.array([r["temperature"] for r in records], dtype=float)
            out["tau"] = np.array([r["tau"] for r in records], dtype=float)
        return out


def _training_key(info: RunInfo):
    t = info.train
    return (t.data, t.seed, t.steps, t.batch_size) if t is not None else (None,) * 4
