"""Device choice, mixed precision and torchrun (DDP) set-up: the one place for them."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import torch

from .errors import ConfigError


@contextlib.contextmanager
def eval_mode(model: torch.nn.Module):
    """Run the block with ``model`` in eval mode, then restore its train / eval mode (also on errors)."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def resolve_device(spec: str = "auto") -> torch.device:
    """"auto" -> cuda if available, else cpu; "cpu" / "cuda" / "cuda:N" as given (checked)."""
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(spec)
    except RuntimeError:
        raise ConfigError(f"unknown device {spec!r}; use auto, cpu or cuda[:N]") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda was asked for but CUDA is not available on this machine")
    return device


def autocast(device: torch.device):
    """bf16 autocast on CUDA; nothing (float32) on CPU."""
    if device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@dataclass
class Distributed:
    """Rank information; world_size 1 when not started by torchrun."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.enabled:
            torch.distributed.barrier()

    def close(self) -> None:
        if self.enabled and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def init_distributed(device_spec: str = "auto") -> tuple[Distributed, torch.device]:
    """Start the process group when run under torchrun (WORLD_SIZE > 1); pick this rank's device."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Distributed(), resolve_device(device_spec)
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_spec)
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    torch.distributed.init_process_group(backend=backend)
    return Distributed(rank=rank, local_rank=local_rank, world_size=world_size), device
