"""Lay a study out: which runs, with which configs, in which directories, against which Laplacian.

Every run of a study shares the model shape, the training settings and the budget; a run of
seed s uses s for the initial weights, the data order and the evaluation batches, whatever its
variant. The variants differ only in what they claim:

- ``dot``: dot-product attention (no Laplacian);
- ``tau-domain``: tau attention measured against the given domain memory;
- ``tau-chain``: the chain Laplacian (the model's default when no domain memory is given);
- ``tau-shuffled``: the domain graph rewired with its degrees and weights kept (rewiring seeded
  by the run's seed, so the seeds also sample the null model);
- ``tau-random``: a random graph with the domain graph's edge count and weights (seeded alike);
- ``tau-identity``: L = I, so lambda is the same for every vector (see domain/variants.py).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, replace
from pathlib import Path

from ..config import ModelConfig, TrainConfig
from ..errors import ConfigError
from ..fsutil import atomic_write_json

VARIANTS = ("dot", "tau-domain", "tau-chain", "tau-shuffled", "tau-random", "tau-identity")
REFERENCE = "tau-domain"  # the variant every other one is paired with
STUDY_FILE = "study.json"
FORMAT = "tauformer-study"


@dataclass(frozen=True)
class RunPlan:
    """One (variant, seed) run of a study, with the exact configs it trains with."""

    variant: str
    seed: int
    run_dir: Path
    model: ModelConfig
    train: TrainConfig

    @property
    def name(self) -> str:
        return run_name(self.variant, self.seed)


def run_name(variant: str, seed: int) -> str:
    return f"{variant}-s{seed}"


def parse_run_name(name: str) -> tuple[str, int] | None:
    """(variant, seed) from a run directory name "<variant>-s<seed>", or None for other names."""
    variant, sep, seed = name.rpartition("-s")
    return (variant, int(seed)) if sep and variant and seed.isdigit() else None


def check_variants(variants) -> list[str]:
    """The variants in study order, duplicates dropped; ConfigError naming any unknown one."""
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise ConfigError(f"unknown study variants {unknown}; choose from {', '.join(VARIANTS)}")
    return [v for v in VARIANTS if v in set(variants)]


def plan_study(study_dir, model_cfg: ModelConfig, train_cfg: TrainConfig, *, domain, variants=VARIANTS,
               seeds: int = 3) -> list[RunPlan]:
    """The runs of a study in DIR (variant-major order), writing DIR/study.json and the control
    Laplacians DIR/laplacians/*.safetensors. train_cfg.seed is the first seed; seeds count up.

    A study directory that already holds a study with other settings is refused (ConfigError),
    so a resumed study cannot silently mix budgets; more seeds or variants may be added.
    """
    from ..domain import load_domain_memory
    from ..laplacian import check_laplacian_size  # imports torch: not at CLI start-up

    study_dir = Path(study_dir)
    variants = check_variants(variants)
    if seeds < 1:
        raise ConfigError(f"--seeds must be >= 1, got {seeds}")
    model_cfg = replace(model_cfg, attention="tau")
    memory = load_domain_memory(domain)
    check_laplacian_size((memory.dim, memory.dim), model_cfg.head_dim, name=str(domain), subject="the domain memory",
                         remedy=f"pick a preset with head_dim {memory.dim} or rebuild the domain memory with "
                                f"`python -m tauformer domain build INPUT --dim {model_cfg.head_dim} --out FILE`")
    base_train = replace(train_cfg, domain=str(domain))
    record = {"format": FORMAT, "version": 1, "reference": REFERENCE, "model": model_cfg.to_dict(),
              "train": base_train.to_dict(), "variants": variants,
              "seeds": [train_cfg.seed + i for i in range(seeds)],
              "domain": {"path": str(domain), "name": memory.name, "fingerprint": memory.fingerprint, "dim": memory.dim}}
    _check_same_study(study_dir, record)
    if _is_main():
        study_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(study_dir / STUDY_FILE, record)
    plans = []
    for variant in variants:
        for seed in record["seeds"]:
            path = variant_domain(variant, seed, domain, memory, study_dir / "laplacians")
            model = replace(model_cfg, attention="dot") if variant == "dot" else model_cfg
            plans.append(RunPlan(variant, seed, study_dir / "runs" / run_name(variant, seed), model,
                                 replace(base_train, seed=seed, domain=path)))
    return plans


def read_study(study_dir) -> dict | None:
    """DIR/study.json as a dict, or None when there is none."""
    import json

    path = Path(study_dir) / STUDY_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ConfigError(f"{path}: not a readable study file ({err})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ConfigError(f"{path}: not a {FORMAT} file")
    return data


def _check_same_study(study_dir: Path, record: dict) -> None:
    old = read_study(study_dir)
    if old is None:
        return
    for key in ("model", "train"):
        changed = sorted(k for k in set(old[key]) | set(record[key])
                         if old[key].get(k) != record[key].get(k) and not (key == "train" and k in ("seed", "device", "domain")))
        if changed:
            raise ConfigError(f"{study_dir / STUDY_FILE}: this directory holds a study with other {key} settings "
                              f"({', '.join(changed)}); use another --out or the same settings")
    if old["domain"]["fingerprint"] != record["domain"]["fingerprint"]:
        raise ConfigError(f"{study_dir / STUDY_FILE}: this study was made with another domain memory "
                          f"({old['domain']['path']}); use another --out")


def variant_domain(variant: str, seed: int, domain, memory, laplacian_dir: Path) -> str | None:
    """The domain-memory file a variant's run trains with (None: dot, or the chain default)."""
    from ..domain import DomainMemory, variants as controls

    if variant in ("dot", "tau-chain"):
        return None
    if variant == REFERENCE:
        return str(domain)
    D = memory.dim
    if variant == "tau-identity":
        L, name = controls.identity(D), "tau-identity"
    elif variant == "tau-shuffled":
        L, name = controls.rewired(memory.laplacian, seed=seed), run_name(variant, seed)
    else:
        L, name = controls.random_like(memory.laplacian, seed=seed), run_name(variant, seed)
    path = laplacian_dir / f"{name}.safetensors"
    control = DomainMemory(laplacian=L, name=f"{memory.name}:{name}",
                           params={"variant": variant, "seed": seed, "of": memory.fingerprint},
                           source={"variant_of": str(domain), "fingerprint": memory.fingerprint})
    _write_once(path, control)
    return str(path)


def _is_main() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def _write_once(path: Path, memory, wait_s: float = 300.0) -> None:
    """Rank 0 writes the control Laplacian (deterministic, so an existing file is kept); under
    torchrun the other ranks wait for it to appear."""
    from ..domain import save_domain_memory

    if _is_main():
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            save_domain_memory(memory, path)
        return
    deadline = time.monotonic() + wait_s
    while not path.is_file():
        if time.monotonic() > deadline:
            raise ConfigError(f"{path}: rank 0 did not write this control Laplacian within {wait_s:.0f} s")
        time.sleep(0.2)
