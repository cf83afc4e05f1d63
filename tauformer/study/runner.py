"""Train the runs of a study that are not done: in this process, or N at a time on N devices.

A run is *done* when its latest checkpoint is at the planned step count; a run with earlier
checkpoints is continued through train's own resume (same data order); a run without any starts
afresh. So a killed study, started again with the same command, continues where it stopped.
Under torchrun every rank walks the same list and each run is trained by all of them.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Callable

from ..checkpoint import list_checkpoints
from ..config import ModelConfig, TrainConfig
from ..errors import ConfigError, TauformerError
from .plan import RunPlan

PLAN_FILE = "study-run.json"  # the run's plan, for the worker process


def run_state(plan: RunPlan) -> str:
    """"done", "resume" (checkpoints before the last step) or "new"."""
    existing = list_checkpoints(plan.run_dir)
    if not existing:
        return "new"
    return "done" if existing[-1][0] >= plan.train.steps else "resume"


def train_run(plan: RunPlan, *, log: Callable = print, progress: bool = False):
    """Train (or continue) one run in this process; returns train's TrainResult."""
    from ..train import train

    return train(plan.model, plan.train, plan.run_dir, resume=run_state(plan) == "resume", log=log, progress=progress)


def run_study(plans: list[RunPlan], *, parallel: int = 1, devices: list[str] | None = None, log: Callable = print,
              progress: bool = True, threads: int | None = None) -> dict[str, str]:
    """Train every run that is not done; returns run name -> "done" / "failed: ..." / "skipped".

    parallel 1 trains in this process (also under torchrun); parallel N > 1 starts up to N worker
    processes at once, each on its own device from ``devices`` (cycled), e.g. cuda:0 ... cuda:N-1.
    threads: CPU threads per run (default: torch's own choice in this process, cores / N in workers);
    on a busy CPU one thread per run can be many times faster than several competing ones.
    """
    if parallel < 1:
        raise ConfigError(f"--parallel must be >= 1, got {parallel}")
    todo = [p for p in plans if run_state(p) != "done"]
    results = {p.name: "skipped (already done)" for p in plans if p not in todo}
    log(f"study: {len(plans)} runs, {len(results)} done, {len(todo)} to train")
    if parallel == 1:
        if threads:
            import torch

            torch.set_num_threads(threads)
        for i, plan in enumerate(todo, 1):
            state = run_state(plan)
            log(f"[{i}/{len(todo)}] {plan.name}: {'resuming' if state == 'resume' else 'training'} -> {plan.run_dir}")
            train_run(plan, log=log, progress=progress)
            results[plan.name] = "done"
        return results
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise ConfigError("--parallel runs several single-process runs at once; under torchrun use --parallel 1")
    devices = devices or ["cpu"]
    slots: queue.Queue = queue.Queue()
    for i in range(parallel):
        slots.put(devices[i % len(devices)])
    threads_each = threads or max(1, (os.cpu_count() or 1) // parallel)
    lock = threading.Lock()

    def work(plan: RunPlan) -> None:
        device = slots.get()
        try:
            with lock:
                log(f"{plan.name}: {run_state(plan)} on {device} -> {plan.run_dir}")
            rc = run_in_subprocess(plan, device, threads_each)
            outcome = "done" if rc == 0 and run_state(plan) == "done" else f"failed (exit {rc}; see {plan.run_dir / 'train.log'})"
            with lock:
                results[plan.name] = outcome
                log(f"{plan.name}: {outcome}")
        finally:
            slots.put(device)

    with ThreadPoolExecutor(max_workers=parallel) as pool:
        list(pool.map(work, todo))
    return results


def run_in_subprocess(plan: RunPlan, device: str, threads: int) -> int:
    """Train one run in a fresh `python -m tauformer.study.runner` process; its log goes to train.log."""
    plan.run_dir.mkdir(parents=True, exist_ok=True)
    spec = {"variant": plan.variant, "seed": plan.seed, "run_dir": str(plan.run_dir), "model": plan.model.to_dict(),
            "train": replace(plan.train, device=device).to_dict()}
    (plan.run_dir / PLAN_FILE).write_text(json.dumps(spec), encoding="utf-8")
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), TAUFORMER_THREADS=str(threads))
    with open(plan.run_dir / "train.log", "a", encoding="utf-8") as out:
        proc = subprocess.Popen([sys.executable, "-m", "tauformer.study.runner", str(plan.run_dir / PLAN_FILE)],
                                stdout=out, stderr=subprocess.STDOUT, env=env)
        try:
            return proc.wait()
        except BaseException:
            proc.send_signal(signal.SIGINT)  # an interrupted study interrupts its runs: they save where they stopped
            proc.wait()
            raise


def _worker(path: str) -> int:
    import torch

    torch.set_num_threads(int(os.environ.get("TAUFORMER_THREADS", "1")))
    spec = json.loads(Path(path).read_text(encoding="utf-8"))
    plan = RunPlan(spec["variant"], int(spec["seed"]), Path(spec["run_dir"]), ModelConfig.from_dict(spec["model"]),
                   TrainConfig.from_dict(spec["train"]))
    try:
        train_run(plan, log=lambda *a, **k: print(*a, **k, flush=True), progress=False)
    except TauformerError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(_worker(sys.argv[1]))
