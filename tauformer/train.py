"""Training loop: one process, torchrun DDP or FSDP2; AdamW with warm-up + cosine, evals, checkpoints.

Data is a text (byte tokens) or a prepared shards directory (its own tokenizer, memory-mapped).
Every step draws one *global* batch -- batch_size x grad_accum x processes windows -- from a
generator seeded alike on every rank, and each rank trains on its own slice, micro-batch by
micro-batch: one process with grad_accum 2, or two processes, see the same examples as one
process with twice the batch.

Each evaluation appends a record to the run's history: losses (validation in nats per token and
bits per byte), lr, tokens/s, model FLOP/s and MFU, and per layer and head the lambda statistics
and attention entropy the workbench plots. Checkpoints are written atomically and carry the
tokenizer; an interrupted run saves where it stopped, and `resume=True` continues from the
latest checkpoint with the same data order.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
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
    load_checkpoint_tokenizer,
    load_training_state,
    read_meta,
    save_checkpoint,
)
from .config import ModelConfig, TrainConfig
from .data import bits_per_byte, load_batches
from .errors import ConfigError
from .laplacian import check_laplacian_size
from .flops import flops_per_token, peak_flops
from .fsutil import atomic_write_json
from .model import GPT
from .parallel import (all_reduce_mean, full_optimizer_state, full_state_dict, load_optimizer_state, sync_buffers,
                       wrap_model)
from .probe import EnergyMeans, capture, head_statistics
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
        if model_cfg.attention != "tau":
            return None, None
        log(f"note: no --domain: tau attention measures against the chain Laplacian of size {model_cfg.head_dim}; "
            "pass --domain FILE for a domain memory")
        return None, {"laplacian": "chain"}
    if model_cfg.attention != "tau":
        log(f"note: --domain {train_cfg.domain} is ignored for a dot-product model")
        return None, None
    from .domain import load_domain_memory

    memory = load_domain_memory(train_cfg.domain)
    check_laplacian_size(memory.laplacian.shape, model_cfg.head_dim, name=str(train_cfg.domain),
                         subject="the domain memory's Laplacian",
                         detail=f" (n_embd {model_cfg.n_embd} / n_head {model_cfg.n_head})",
                         remedy=f"rebuild it with `python -m tauformer domain build INPUT --dim {model_cfg.head_dim} "
                                "--out FILE`")
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
    """One training step on one batch (see accumulation_step); returns the loss as a float."""
    return accumulation_step(net, optimizer, [(x, y)], device, grad_clip)


def accumulation_step(net: torch.nn.Module, optimizer: torch.optim.Optimizer, micro_batches: list,
                      device: torch.device, grad_clip: float, sync=None) -> float:
    """One optimizer step over micro-batches [(x, y)]: autocast forward, backward of loss / n for
    each (gradients add up to those of their mean), gradient-norm clipping (when grad_clip > 0),
    optimizer step, zero grad. Returns the mean loss as a float.

    net may be the model or its DDP / FSDP / compiled wrapper; sync(last) gives the context in which
    a micro-step's backward runs (gradient all-reduce only on the last one).
    """
    n = len(micro_batches)
    total = torch.zeros((), device=device)
    for i, (x, y) in enumerate(micro_batches):
        with sync(i == n - 1) if sync is not None else contextlib.nullcontext():
            with autocast(device):
                _, loss = net(x, y)
            (loss / n).backward()
        total += loss.detach().float()
    if grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(net.parameters(), grad_clip)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return float(total) / n


@torch.no_grad()
def evaluate(model: GPT, eval_batches: list, device: torch.device, target_bytes: list[int] | None = None) -> dict:
    """Validation loss on fixed batches, lambda / entropy statistics on a few sequences, and for a
    tau model the mean Rayleigh energy of q and k per layer and head over all the batches.

    val_loss is in nats per token; val_bpb = (sum of token losses) / (ln 2 * UTF-8 bytes the target
    tokens cover), from target_bytes per batch (None: one byte per token).
    """
    is_tau = model.config.attention == "tau"
    energy = EnergyMeans() if is_tau else None
    with eval_mode(model):
        losses, n_tokens = [], []
        for x, y in eval_batches:
            with autocast(device), (capture(model) if is_tau else contextlib.nullcontext()) as cap:
                _, loss = model(x, y)
            if energy is not None:
                energy.add(model, cap)
            losses.append(float(loss))
            n_tokens.append(y.numel())
        stats = head_statistics(model, eval_batches[0][0][:STATS_SEQUENCES])
    record = {"val_loss": sum(losses) / len(losses)}
    if target_bytes is None:
        record["val_bpb"] = bits_per_byte(record["val_loss"])
    else:
        nats = sum(l * n for l, n in zip(losses, n_tokens))
        record["val_bpb"] = nats / (math.log(2) * max(1, sum(target_bytes)))
        record["val_bytes_per_token"] = sum(target_bytes) / sum(n_tokens)
    record.update(stats)
    if is_tau:
        attns = [block.attn for block in model.transformer.h]
        record["temperature"] = [a.temperature().tolist() for a in attns]
        record["tau"] = [float(a.taumode.tau_running) for a in attns]
        record.update(energy.result())  # energy_q / energy_k [layer][head] over every eval batch
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


def _check_run(train_cfg: TrainConfig, dist: Distributed, resume: bool, existing: list, log: Callable) -> None:
    if train_cfg.grad_accum < 1:
        raise ConfigError(f"--grad-accum must be >= 1, got {train_cfg.grad_accum}")
    if train_cfg.fsdp and not dist.enabled:
        log("note: --fsdp shards across torchrun processes; with one process the model is trained unsharded")


def _check_resume_domain(train_cfg: TrainConfig, model_cfg: ModelConfig, recorded: dict | None, ckpt_path: Path,
                         log: Callable) -> TrainConfig:
    """train_cfg to resume with: a --domain is accepted only when it is the memory the checkpoint's
    Laplacian came from (same fingerprint); the checkpoint's Laplacian is what the model keeps."""
    if not train_cfg.domain:
        return train_cfg
    if model_cfg.attention != "tau":
        log(f"note: --domain {train_cfg.domain} is ignored for a dot-product model")
        return dataclasses.replace(train_cfg, domain=None)
    from .domain import load_domain_memory

    memory = load_domain_memory(train_cfg.domain)
    kept = (recorded or {}).get("fingerprint")
    if memory.fingerprint != kept:
        held = f"domain memory fingerprint {kept[:12]}" if kept else "the chain Laplacian (no domain memory)"
        raise ConfigError(
            f"--domain {train_cfg.domain}: its fingerprint {memory.fingerprint[:12]} is not the domain memory of "
            f"checkpoint {ckpt_path}, which holds {held}; resume without --domain (the checkpoint keeps its "
            f"Laplacian) or train into a new --out")
    return train_cfg


def _check_resume_tokenizer(ckpt_path: Path, source: str, tokenizer) -> None:
    """Refuse to resume on data whose tokenizer is not the one the checkpoint's weights were trained with."""
    recorded = load_checkpoint_tokenizer(ckpt_path)
    if recorded.fingerprint != tokenizer.fingerprint:
        raise ConfigError(
            f"{source}: its {tokenizer.name} tokenizer (sha256 {tokenizer.fingerprint[:12]}) is not the {recorded.name} "
            f"tokenizer of checkpoint {ckpt_path} (sha256 {recorded.fingerprint[:12]}); resume with the data the run "
            f"was trained on, or train into a new --out")


def _train(model_cfg, train_cfg, run_dir, resume, log, progress, dist: Distributed, device) -> TrainResult:
    existing = list_checkpoints(run_dir)
    if existing and not resume:
        raise ConfigError(f"{run_dir}: already holds checkpoints (latest step {existing[-1][0]}); "
                          "pass --resume to continue it or choose another output directory")
    _check_run(train_cfg, dist, resume, existing, log)
    source = train_cfg.data or "the bundled Python documentation topics"

    history: list = []
    start_step = 0
    gen = torch.Generator().manual_seed(train_cfg.seed)  # alike on every rank: each takes its slice
    optimizer_state = None
    elapsed_before = 0.0  # wall-clock seconds of earlier sessions of a resumed run
    if resume and existing:
        meta = read_meta(existing[-1][1])
        if meta.model_config != model_cfg:
            log(f"note: resuming with the model config stored in {meta.path}")
        model_cfg, domain_record, history, start_step = meta.model_config, meta.domain, meta.history, meta.step
        train_cfg = _check_resume_domain(train_cfg, model_cfg, domain_record, meta.path, log)
        model, _ = load_checkpoint(meta.path)
        optimizer_state, trainer_state = load_training_state(meta.path)
        rng = trainer_state.get("rng_state")
        elapsed_before = _elapsed_at_save(trainer_state, history)
        if rng:
            gen.set_state(torch.frombuffer(bytearray(base64.b64decode(rng)), dtype=torch.uint8))
        log(f"resuming {run_dir} from step {start_step}")
    else:
        laplacian, domain_record = resolve_domain(train_cfg, model_cfg, log)
        torch.manual_seed(train_cfg.seed)
        model = GPT(model_cfg, laplacian=laplacian)
    batches = load_batches(train_cfg.data, block_size=model_cfg.block_size, val_fraction=train_cfg.val_fraction)
    tokenizer = batches.tokenizer
    if resume and existing:
        _check_resume_tokenizer(meta.path, source, tokenizer)
    if model_cfg.vocab_size < tokenizer.vocab_size:
        fix = (f"the data's vocabulary differs from the checkpoint's ({meta.path})" if resume and existing
               else "leave --vocab-size unset to take it from the data")
        raise ConfigError(f"{source}: its {tokenizer.name} tokenizer has {tokenizer.vocab_size:,} tokens but the model's "
                          f"vocab_size is {model_cfg.vocab_size:,}; {fix}")
    n_params, token_flops = model.num_parameters(), flops_per_token(model)
    model.to(device)
    model.train()
    wrapped = wrap_model(model, dist, device, fsdp=train_cfg.fsdp, compile=train_cfg.compile)
    optimizer = build_optimizer(model, train_cfg)  # after sharding: FSDP replaces parameters by shards
    if optimizer_state is not None:
        load_optimizer_state(wrapped, optimizer, optimizer_state)
    eval_batches = batches.eval_batches(train_cfg.eval_batches, train_cfg.batch_size, seed=train_cfg.seed, device=device)
    eval_bytes = None if tokenizer.kind == "bytes" else [batches.target_bytes(y) for _, y in eval_batches]
    micro, accum, world = train_cfg.batch_size, train_cfg.grad_accum, dist.world_size
    tokens_per_step = micro * accum * world * model_cfg.block_size
    peak = peak_flops(device, train_cfg.peak_tflops)
    log(f"{model_cfg.attention} model, {n_params:,} parameters, head_dim {model_cfg.head_dim}, "
        f"{batches.n_train_tokens:,} training tokens ({tokenizer.name}) from {source}, device {device}"
        + (f", {world} processes ({wrapped.kind})" if dist.enabled else "")
        + f"; {tokens_per_step:,} tokens per step ({micro} x {accum} x {world} sequences of {model_cfg.block_size})")

    def save(step: int) -> None:
        state = full_state_dict(wrapped)  # collectives under FSDP: every rank takes part
        optimizer_state = full_optimizer_state(wrapped, optimizer) if train_cfg.save_optimizer else None
        if dist.is_main:
            target = model if not wrapped.sharded else _plain_model(model_cfg, state)
            trainer = {"rng_state": base64.b64encode(gen.get_state().numpy().tobytes()).decode("ascii"), "step": step,
                       "elapsed_s": elapsed()}
            save_checkpoint(checkpoint_dir(run_dir, step), target, step=step, train_config=train_cfg, history=history,
                            domain=domain_record, optimizer_state=optimizer_state,
                            trainer_state=trainer, save_dtype=train_cfg.save_dtype, tokenizer=tokenizer)
            _prune(run_dir, train_cfg.keep_checkpoints)
        dist.barrier()

    def micro_batches() -> list:
        starts = batches.starts("train", micro * accum * world, gen)  # the global batch, same on every rank
        parts = [starts[(m * world + dist.rank) * micro:(m * world + dist.rank + 1) * micro] for m in range(accum)]
        return [batches.windows("train", p, device) for p in parts]

    bar = tqdm(total=train_cfg.steps, initial=start_step, disable=not (progress and dist.is_main),
               desc=f"train {model_cfg.attention}", unit="step", file=sys.stderr, dynamic_ncols=True)
    interval_losses, interval_time, started = [], 0.0, time.perf_counter()

    def elapsed() -> float:  # wall-clock seconds since the run first started, across resumes
        return elapsed_before + time.perf_counter() - started

    step = start_step
    try:
        for step in range(start_step, train_cfg.steps):
            t0 = time.perf_counter()
            lr = lr_at(step, train_cfg)
            for group in optimizer.param_groups:
                group["lr"] = lr
            loss_value = accumulation_step(wrapped.net, optimizer, micro_batches(), device, train_cfg.grad_clip,
                                           sync=wrapped.sync)
            sync_buffers(wrapped, dist)
            if not math.isfinite(loss_value):
                raise FloatingPointError(f"training loss became {loss_value} at step {step + 1}; try a lower --lr")
            interval_losses.append(loss_value)
            interval_time += time.perf_counter() - t0
            done = step + 1
            tokens_per_s = tokens_per_step * len(interval_losses) / max(interval_time, 1e-9)
            bar.update(1)
            bar.set_postfix(loss=f"{loss_value:.3f}", tok_s=f"{tokens_per_s:,.0f}", refresh=False)  # update() redraws
            if done % train_cfg.eval_every == 0 or done == train_cfg.steps:
                train_loss = all_reduce_mean(sum(interval_losses) / len(interval_losses), dist, device)
                eval_model = model
                if wrapped.sharded:  # gather (every rank) an unsharded copy: the probe reads parameters outside forward
                    state = full_state_dict(wrapped)
                    eval_model = _plain_model(model_cfg, state).to(device) if dist.is_main else None
                if dist.is_main:
                    record = {"step": done, "train_loss": train_loss, "lr": lr, "tokens_per_s": tokens_per_s,
                              "tokens_seen": done * tokens_per_step, "elapsed_s": elapsed(),
                              "flops_per_s": token_flops * tokens_per_s,
                              "mfu": token_flops * tokens_per_s / (peak * world) if peak else None}
                    record.update(evaluate(eval_model, eval_batches, device, eval_bytes))
                    history.append(record)
                    atomic_write_json(run_dir / "history.json", history, compact=True)
                    bar.write(progress_line(record))
                del eval_model
                interval_losses, interval_time = [], 0.0
                dist.barrier()
            if done % train_cfg.ckpt_every == 0 or done == train_cfg.steps:
                save(done)
        step = train_cfg.steps
    except KeyboardInterrupt:
        if step > start_step and dist.is_main and not wrapped.sharded:
            bar.write(f"interrupted: saving step {step} to {checkpoint_dir(run_dir, step)}")
            save(step)
        raise
    finally:
        bar.close()
    return TrainResult(run_dir=run_dir, step=step, history=history)


def progress_line(record: dict) -> str:
    """The log line of one evaluation: losses in nats per token and bits per byte, speed, MFU."""
    mfu = f", MFU {100 * record['mfu']:.1f}%" if record.get("mfu") is not None else ""
    return (f"step {record['step']}: train {record['train_loss']:.4f}  val {record['val_loss']:.4f} nats/token "
            f"({record['val_bpb']:.3f} bits/byte)  {record['tokens_per_s']:,.0f} tok/s, "
            f"{record['flops_per_s'] / 1e12:.3g} TFLOP/s{mfu}")


def _elapsed_at_save(trainer_state: dict, history: list) -> float:
    """Wall-clock seconds a resumed run had trained when its checkpoint was saved (older checkpoints
    without the figure: the last evaluation's elapsed_s, else 0)."""
    value = trainer_state.get("elapsed_s")
    if value is None and history:
        value = history[-1].get("elapsed_s")
    try:
        return max(0.0, float(value)) if value is not None else 0.0
    except (TypeError, ValueError):
        return 0.0


def _plain_model(model_cfg: ModelConfig, state: dict) -> GPT:
    """An unsharded GPT holding a gathered state dict (what a checkpoint stores)."""
    plain = GPT(model_cfg, laplacian=state.get("laplacian") if model_cfg.attention == "tau" else None)
    plain.load_state_dict(state, strict=True)
    return plain


def _prune(run_dir: Path, keep: int) -> None:
    """Delete the oldest checkpoints beyond `keep` (0 keeps all; the latest always stays)."""
    if keep <= 0:
        return
    for _, path in list_checkpoints(run_dir)[:-keep]:
        shutil.rmtree(path, ignore_errors=True)
