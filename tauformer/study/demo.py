"""`python -m tauformer demo --study`: the bundled demo study in assets/demo/study.

Every variant with three seeds on the bundled corpus, against the demo's domain memory (head dim
32), at a size a 2-core CPU trains in minutes: the demo's width (3 heads of 32) with 2 layers,
windows of 64 bytes, batches of 8. Only what the Study page reads is kept -- study.json, the
summaries, each run's history.json and config.json -- no weights, no optimizer state.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from ..config import ModelConfig, TrainConfig
from .plan import VARIANTS

REPO = Path(__file__).resolve().parents[2]
DEMO_STUDY_SHAPE = dict(vocab_size=256, n_layer=2, n_head=3, n_kv_head=3, n_embd=96, block_size=64)
KEPT = ("study.json", "summary.json", "summary.csv")


def demo_study_configs(steps: int) -> tuple[ModelConfig, TrainConfig]:
    train = TrainConfig(steps=steps, batch_size=8, lr=3e-3, warmup_steps=max(1, steps // 10),
                        eval_every=max(1, steps // 8), eval_batches=4, ckpt_every=max(1, steps // 4),
                        keep_checkpoints=1, seed=1337, device="cpu")
    return ModelConfig(attention="tau", **DEMO_STUDY_SHAPE), train


def run_demo_study(out: Path, *, steps: int = 600, seeds: int = 3, work_dir: Path | None = None,
                   threads: int = 1, progress: bool = False) -> dict:
    """Train the demo study in work_dir (default: a temporary folder; reuse one to resume), then copy
    its light files to out / "study" with repository-relative paths. Returns the summary."""
    from .plan import plan_study
    from .runner import run_study
    from .summary import format_table, write_summary

    work = Path(work_dir) if work_dir else Path(tempfile.mkdtemp(prefix="tauformer-demo-study-"))
    model, train = demo_study_configs(steps)
    domain = Path(out) / "domain"
    started = time.perf_counter()
    plans = plan_study(work, model, train, domain=domain, variants=VARIANTS, seeds=seeds)
    run_study(plans, progress=progress, threads=threads)
    summary = write_summary(work)
    print(format_table(summary))
    print(f"trained in {(time.perf_counter() - started) / 60:.1f} minutes")
    ship(work, Path(out) / "study")
    return summary


def ship(work: Path, target: Path) -> None:
    """Copy the study's light files (no weights) to target, paths made relative to the repository."""
    from ..checkpoint import list_checkpoints

    staging = target.with_name(f".{target.name}.staging")
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "runs").mkdir(parents=True)

    def copy_text(src: Path, dst: Path) -> None:
        dst.write_text(src.read_text(encoding="utf-8").replace(str(REPO) + "/", ""), encoding="utf-8")

    for name in KEPT:
        copy_text(work / name, staging / name)
    for run in sorted((work / "runs").iterdir()):
        if not (run / "history.json").is_file():
            continue
        (staging / "runs" / run.name).mkdir()
        copy_text(run / "history.json", staging / "runs" / run.name / "history.json")
        checkpoints = list_checkpoints(run)
        if checkpoints:
            copy_text(checkpoints[-1][1] / "config.json", staging / "runs" / run.name / "config.json")
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    size = sum(f.stat().st_size for f in target.rglob("*") if f.is_file())
    print(f"demo study -> {target} ({size / 1024:.0f} KiB, no weights)")
