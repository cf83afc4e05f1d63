"""Training loop: one process or torchrun DDP, AdamW with warm-up + cosine, evals, checkpoints.

Each evaluation appends a record to the run's history (losses, lr, tokens/s, and per layer and
head the lambda statistics and attention entropy the workbench plots). Checkpoints are written
atomically; an interrupted run saves where it stopped, and `resume=True` continues from the
latest checkpoint with the same data order.
"""

from __future__ import annotations

import base64
import math
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from tqdm.auto import tqdm

from .checkpoint import (
    checkpoint_dir,
    list_checkpoints,
    load_checkpoint,
    load_training_state,
    read_meta,
    save_checkpoint,
)
from .config import ModelConfig, TrainConfig
from .data import TokenBatches, bits_per_byte, load_corpus
from .errors import ConfigError, ShapeError
from .fsutil import atomic_write_json
from .model import GPT
from .probe import head_statistics
from .runtime import Distributed, autocast, eval_mode, init_distributed

STATS_SEQUENCES = 4  # validation sequences used for the lambda / entropy statistics


@dataclass
class TrainResult:
    """Summary of a finished (or interrupted) run."""

    run_dir: Path
    step: int
    history: list = field(default_factory=list)

    @property
    def final_val_loss(self) -> float | None:
        return self.history[-1]["val_loss"] if self.history else None


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up to cfg.lr, then cosine decay to cfg.lr * cfg.min_lr_ratio at cfg.steps."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = min(1.0, (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps))
    floor = cfg.lr * cfg.min_lr_ratio
    return floor + 0.5 * (cfg.lr - floor) * (1.0 + math.cos(math.pi * progress))


def resolve_domain(train_cfg: TrainConfig, model_cfg: ModelConfig, log: Callable = print):
    """(laplacian or None, domain record for the checkpoint) from train_cfg.domain.

    The domain memory's Laplacian must be head_dim x head_dim; otherwise a ShapeError names
    both sizes and the command that rebuilds it.
    """
    if not train_cfg.domain:
        return None, {"laplacian": "chain"} if model_cfg.attention == "tau" else None
    if model_cfg.attention != "tau":
        log(f"note: --domain {train_cfg.domain} is ignored for a dot-product model")
        return None, None
    from .domain import load_domain_memory

    memory = load_domain_memory(train_cfg.domain)
    size = memory.laplacian.shape[0]
    if size != model_cfg.head_dim:
        raise ShapeError(
            f"{train_cfg.domain}: the domain memory's Laplacian is {size} x {size} but the model's head_dim is "
            f"{model_cfg.head_dim} (n_embd {model_cfg.n_embd} / n_head {model_cfg.n_head}); rebuild it with "
            f"`python -m tauformer domain build INPUT --dim {model_cfg.head_dim} --out FILE`"
        )
    record = {
        "laplacian": "domain",
        "path": str(train_cfg.domain),
        "name": memory.name,
        "fingerprint": memory.fingerprint,
        "params": memory.params,
        "source": memory.source,
    }
    return memory.laplacian, record


def build_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """AdamW; weight decay on matrices and embeddings only (not on temperatures)."""
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))


def optimisation_step(net: torch.nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
                      device: torch.device, grad_clip: float) -> float:
    """One training step: autocast forward with the loss, backward, gradient-norm clipping (when
    grad_clip > 0), optimizer step, zero grad; returns the loss as a float.

    net may be the model or its DistributedDataParallel wrapper (same parameters, same order).
    """
    with autocast(device):
        _, loss = net(x, y)
    loss.backward()
    if grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(net.parameters(), grad_clip)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return float(loss.detach())


@torch.no_grad()
def evaluate(model: GPT, eval_batches: list, device: torch.device) -> dict:
    """Validation loss on fixed batches, and lambda / entropy statistics on a few sequences."""
    with eval_mode(model):
        losses = []
        for x, y in eval_batches:
            with autocast(device):
                _, loss = model(x, y)
            losses.append(float(loss))
        stats = head_statistics(model, eval_batches[0][0][:STATS_SEQUENCES])
    record = {"val_loss": sum(losses) / len(losses)}
    record["val_bpb"] = bits_per_byte(record["val_loss"])
    record.update(stats)
    if model.config.attention == "tau":
        attns = [block.attn for block in model.transformer.h]
        record["temperature"] = [a.temperature().tolist() for a in attns]
        record["tau"] = [float(a.taumode.tau_running) for a in attns]
    return record


def train(
    model_cfg: ModelConfig,
    train_cfg: TrainConfig,
    run_dir: str | Path,
    *,
    resume: bool = False,
    log: Callable = print,
    progress: bool = True,
) -> TrainResult:
    """Train a GPT into run_dir (ckpt-<step>/ directories and a live history.json)."""
    dist, device = init_distributed(train_cfg.device)
    try:
        return _train(model_cfg, train_cfg, Path(run_dir), resume, log if dist.is_main else _quiet, progress, dist, device)
    finally:
        dist.close()


def _quiet(*args, **kwargs) -> None:
    pass


def _train(model_cfg, train_cfg, run_dir, resume, log, progress, dist: Distributed, device) -> TrainResult:
    existing = list_checkpoints(run_dir)
    if existing and not resume:
        raise ConfigError(f"{run_dir}: already holds checkpoints (latest step {existing[-1][0]}); "
                          "pass --resume to continue it or choose another output directory")
    text = load_corpus(train_cfg.data)
    source = train_cfg.data or "the bundled Python documentation topics"

    history: list = []
    start_step = 0
    gen = torch.Generator().manual_seed(train_cfg.seed + dist.rank)
    optimizer_state = None
    if resume and existing:
        meta = read_meta(existing[-1][1])
        if meta.model_config != model_cfg:
            log(f"note: resuming with the model config stored in {meta.path}")
        model_cfg, domain_record, history, start_step = meta.model_config, meta.domain, meta.history, meta.step
        model, _ = load_checkpoint(meta.path)
        optimizer_state, trainer_state = load_training_state(meta.path)
        rng = trainer_state.get("rng_state")
        if rng and dist.rank == 0:
            gen.set_state(torch.frombuffer(bytearray(base64.b64decode(rng)), dtype=torch.uint8))
        log(f"resuming {run_dir} from step {start_step}")
    else:
        laplacian, domain_record = resolve_domain(train_cfg, model_cfg, log)
        torch.manual_seed(train_cfg.seed)
        model = GPT(model_cfg, laplacian=laplacian)
    batches = TokenBatches(text, block_size=model_cfg.block_size, val_fraction=train_cfg.val_fraction, source=source)
    model.to(device)
    model.train()
    optimizer = build_optimizer(model, train_cfg)
    if optimizer_state is not None:
        optimizer.load_state_dict(optimizer_state)
    net = model
    if dist.enabled:
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    eval_batches = batches.eval_batches(train_cfg.eval_batches, train_cfg.batch_size, seed=train_cfg.seed, device=device)
    log(f"{model_cfg.attention} model, {model.num_parameters():,} parameters, head_dim {model_cfg.head_dim}, "
        f"{len(batches.train_ids):,} training bytes from {source}, device {device}"
        + (f", {dist.world_size} processes" if dist.enabled else ""))

    def save(step: int) -> None:
        if dist.is_main:
            state = {"rng_state": base64.b64encode(gen.get_state().numpy().tobytes()).decode("ascii"), "step": step}
            save_checkpoint(checkpoint_dir(run_dir, step), model, step=step, train_config=train_cfg, history=history,
                            domain=domain_record, optimizer_state=optimizer.state_dict() if train_cfg.save_optimizer else None,
                            trainer_state=state, save_dtype=train_cfg.save_dtype)
            _prune(run_dir, train_cfg.keep_checkpoints)
        dist.barrier()

    tokens_per_step = train_cfg.batch_size * model_cfg.block_size * dist.world_size
    bar = tqdm(total=train_cfg.steps, initial=start_step, disable=not (progress and dist.is_main),
               desc=f"train {model_cfg.attention}", unit="step", file=sys.stderr, dynamic_ncols=True)
    interval_losses, interval_time, started = [], 0.0, time.perf_counter()
    step = start_step
    try:
        for step in range(start_step, train_cfg.steps):
            t0 = time.perf_counter()
            lr = lr_at(step, train_cfg)
            for group in optimizer.param_groups:
                group["lr"] = lr
            x, y = batches.batch("train", train_cfg.batch_size, gen, device)
            loss_value = optimisation_step(net, optimizer, x, y, device, train_cfg.grad_clip)
            if not math.isfinite(loss_value):
                raise FloatingPointError(f"training loss became {loss_value} at step {step + 1}; try a lower --lr")
            interval_losses.append(loss_value)
            interval_time += time.perf_counter() - t0
            done = step + 1
            tokens_per_s = tokens_per_step * len(interval_losses) / max(interval_time, 1e-9)
            bar.update(1)
            bar.set_postfix(loss=f"{loss_value:.3f}", tok_s=f"{tokens_per_s:,.0f}", refresh=False)  # update() redraws
            if done % train_cfg.eval_every == 0 or done == train_cfg.steps:
                if dist.is_main:
                    record = {"step": done, "train_loss": sum(interval_losses) / len(interval_losses), "lr": lr,
                              "tokens_per_s": tokens_per_s, "tokens_seen": done * tokens_per_step,
                              "elapsed_s": time.perf_counter() - started}
                    record.update(evaluate(model, eval_batches, device))
                    history.append(record)
                    atomic_write_json(run_dir / "history.json", history, compact=True)
                    bar.write(f"step {done}: train {record['train_loss']:.4f}  val {record['val_loss']:.4f} "
                              f"({record['val_bpb']:.3f} bits/byte)  {tokens_per_s:,.0f} tok/s")
                interval_losses, interval_time = [], 0.0
                dist.barrier()
            if done % train_cfg.ckpt_every == 0 or done == train_cfg.steps:
                save(done)
        step = train_cfg.steps
    except KeyboardInterrupt:
        if step > start_step and dist.is_main:
            bar.write(f"interrupted: saving step {step} to {checkpoint_dir(run_dir, step)}")
            save(step)
        raise
    finally:
        bar.close()
    return TrainResult(run_dir=run_dir, step=step, history=history)


def _prune(run_dir: Path, keep: int) -> None:
    """Delete the oldest checkpoints beyond `keep` (0 keeps all; the latest always stays)."""
    if keep <= 0:
        return
    for _, path in list_checkpoints(run_dir)[:-keep]:
        shutil.rmtree(path, ignore_errors=True)
