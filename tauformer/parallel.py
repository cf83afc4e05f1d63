"""Wrapping a model for training: DDP or FSDP2 under torchrun, torch.compile, gradient sync.

- DDP replicates the model and all-reduces gradients (the default under torchrun).
- FSDP2 (`torch.distributed.fsdp.fully_shard`, ``--fsdp``) shards every block's parameters, and
  the embedding / head, across the processes, gathering them layer by layer for forward and
  backward: for models whose parameters, gradients and optimizer state do not fit one device.
  Evaluation gathers an unsharded copy onto rank 0 (parameters only: a fraction of the training
  state, which also holds gradients and optimizer moments); checkpoints gather the parameters and
  the optimizer state into the one-process format, so a run resumes with or without --fsdp.
- ``--compile`` wraps the (distributed) model in torch.compile for the training steps; the
  evaluation and statistics passes run the plain module (the probe needs eager hooks).

Everything here is set-up; the model code stays unaware of it.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from .runtime import Distributed


@dataclass
class Wrapped:
    """The module the training step calls (`net`) and the module evaluation uses (`model`)."""

    net: torch.nn.Module
    model: torch.nn.Module
    kind: str  # "single", "ddp" or "fsdp"
    ddp: torch.nn.Module | None = None

    def sync(self, last_micro_step: bool):
        """Context for one micro-step's backward: gradients are synchronised on the last one only."""
        if self.kind == "ddp" and not last_micro_step:
            return self.ddp.no_sync()
        if self.kind == "fsdp":
            self.model.set_requires_gradient_sync(last_micro_step)
        return contextlib.nullcontext()

    @property
    def sharded(self) -> bool:
        return self.kind == "fsdp"


def wrap_model(model: torch.nn.Module, dist: Distributed, device: torch.device, *, fsdp: bool = False,
               compile: bool = False) -> Wrapped:
    """DDP / FSDP2 / nothing (one process), then torch.compile when asked; returns the Wrapped pair."""
    kind, ddp = "single", None
    net = model
    if dist.enabled and fsdp:
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import fully_shard

        mesh = init_device_mesh(device.type, (dist.world_size,))
        for block in model.transformer.h:
            fully_shard(block, mesh=mesh)
        fully_shard(model, mesh=mesh)  # the rest: wte, lm_head and any parameter outside the blocks
        kind = "fsdp"
    elif dist.enabled:
        ddp = net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
        kind = "ddp"
    if compile:
        net = torch.compile(net)
    return Wrapped(net=net, model=model, kind=kind, ddp=ddp)


def full_state_dict(wrapped: Wrapped) -> dict | None:
    """The unsharded state dict on CPU: a collective under FSDP (every rank must call it; rank 0
    receives it, the others None); the plain module's state otherwise."""
    if not wrapped.sharded:
        return wrapped.model.state_dict()
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    state = get_model_state_dict(wrapped.model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    return state or None


def full_optimizer_state(wrapped: Wrapped, optimizer: torch.optim.Optimizer) -> dict | None:
    """The optimizer's state_dict as one process would have it (parameters by index), gathered.

    A collective under FSDP (every rank calls it; rank 0 receives it, the others None).
    """
    if not wrapped.sharded:
        return optimizer.state_dict()
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

    osd = get_optimizer_state_dict(wrapped.model, optimizer,
                                   options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    if not osd or not osd.get("param_groups"):
        return None
    index = {name: i for i, name in enumerate(n for g in osd["param_groups"] for n in g["params"])}
    return {"state": {index[name]: value for name, value in osd["state"].items()},
            "param_groups": [{**g, "params": [index[n] for n in g["params"]]} for g in osd["param_groups"]]}


def load_optimizer_state(wrapped: Wrapped, optimizer: torch.optim.Optimizer, state_dict: dict) -> None:
    """Load a state_dict written by full_optimizer_state (every rank passes the whole of it)."""
    if not wrapped.sharded:
        optimizer.load_state_dict(state_dict)
        return
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

    names = {id(p): n for n, p in wrapped.model.named_parameters()}
    fqns = [names[id(p)] for g in optimizer.param_groups for p in g["params"]]  # index -> parameter name
    # torch's key order (step first, then exp_avg, exp_avg_sq): the FSDP loader pairs values by position
    ordered = {i: dict(sorted(v.items(), key=lambda kv: (kv[0] != "step", kv[0]))) for i, v in state_dict["state"].items()}
    osd = {"state": {fqns[int(i)]: value for i, value in ordered.items()},
           "param_groups": [{**g, "params": [fqns[int(i)] for i in g["params"]]} for g in state_dict["param_groups"]]}
    set_optimizer_state_dict(wrapped.model, optimizer, osd, options=StateDictOptions(full_state_dict=True))


def sync_buffers(wrapped: Wrapped, dist: Distributed) -> None:
    """Under FSDP, give every rank rank 0's running buffers (the calibrated taus), as DDP does before
    each forward; constant buffers (the Laplacian) are left alone. A collective; nothing otherwise."""
    if not wrapped.sharded:
        return
    for name, buffer in wrapped.model.named_buffers():
        if not name.endswith("laplacian"):
            torch.distributed.broadcast(buffer, src=0)


def all_reduce_mean(value: float, dist: Distributed, device: torch.device) -> float:
    """The mean of a float over the processes (itself in one process)."""
    if not dist.enabled:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=device)
    torch.distributed.all_reduce(t)
    return float(t) / dist.world_size
