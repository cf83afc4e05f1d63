"""The one checkpoint format: a directory that can be loaded without running any code.

    ckpt-<step>/
      model.safetensors      weights and buffers (incl. a tau model's Laplacian)
      config.json            format name + version, model and train config, step, domain memory,
                             tokenizer record (kind, vocab size, sha256 of tokenizer.json)
      tokenizer.json         the BPE tokenizer (absent for byte tokens); JSON, safe to load
      history.json           evaluation records up to this step (losses, lr, tokens/s, lambda stats)
      optimizer.safetensors  optional: optimizer state and RNG state, for --resume
      trainer.json           optional: the optimizer's param groups and loop state

A run directory holds several ckpt-<step>/ over training. Directories are written atomically
(see fsutil.atomic_directory): a run killed mid-save keeps its last good checkpoint.
Listing runs and reading their JSON needs no torch; it is imported only to read or write weights.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from . import __version__
from .config import ModelConfig, TrainConfig, estimated_parameters
from .errors import CheckpointError, ConfigError, TauformerError
from .fsutil import atomic_directory, atomic_write_bytes, atomic_write_json
from .safefile import read_json, read_safetensors_header

FORMAT_NAME = "tauformer-checkpoint"
FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
HISTORY_FILE = "history.json"
OPTIMIZER_FILE = "optimizer.safetensors"
TRAINER_FILE = "trainer.json"
TOKENIZER_FILE = "tokenizer.json"
_CKPT_RE = re.compile(r"^ckpt-(\d+)$")
_LEFTOVER_RE = re.compile(r"^\.ckpt-\d+\.(.+\.tmp|old-\d+)$")  # from a save that was killed
FLOAT_DTYPES = ("F32", "F16", "BF16", "F64")
TORCH_DTYPES = {"I64": "int64", "I32": "int32", "I16": "int16", "I8": "int8", "U8": "uint8", "BOOL": "bool"}


@dataclass
class CheckpointMeta:
    """What a checkpoint says about itself, besides the weights."""

    path: Path
    step: int
    model_config: ModelConfig
    train_config: TrainConfig | None = None
    history: list = field(default_factory=list)
    domain: dict | None = None
    created: str | None = None
    extra: dict = field(default_factory=dict)

    @property
    def run_dir(self) -> Path:
        return self.path.parent


def checkpoint_dir(run_dir: str | Path, step: int) -> Path:
    return Path(run_dir) / f"ckpt-{int(step)}"


def list_checkpoints(run_dir: str | Path) -> list[tuple[int, Path]]:
    """(step, path) of every ckpt-<step>/ directory in run_dir, by step."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return []
    found = []
    for child in run_dir.iterdir():
        match = _CKPT_RE.match(child.name)
        if match and child.is_dir() and (child / CONFIG_FILE).exists():  # a FIFO too: read_meta refuses it
            found.append((int(match.group(1)), child))
    return sorted(found)


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint directory, or the latest checkpoint of a run directory."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint or run directory")
    if not path.is_dir():
        raise CheckpointError(f"{path}: a checkpoint is a directory (ckpt-<step>/ with {WEIGHTS_FILE} and {CONFIG_FILE})")
    if (path / CONFIG_FILE).exists() or (path / WEIGHTS_FILE).exists():
        return path
    checkpoints = list_checkpoints(path)
    if not checkpoints:
        raise CheckpointError(f"{path}: not a checkpoint and holds no ckpt-<step>/ checkpoints")
    return checkpoints[-1][1]


def save_checkpoint(
    path: str | Path,
    model,
    *,
    step: int,
    train_config: TrainConfig | None = None,
    history: list | None = None,
    domain: dict | None = None,
    optimizer_state: dict | None = None,
    trainer_state: dict | None = None,
    extra: dict | None = None,
    save_dtype: str = "float32",
    tokenizer=None,
) -> Path:
    """Write model (and optionally optimizer / loop state) to the directory `path`, atomically.

    tokenizer: the run's tokenizer (tauformer.tokenizer); None means byte tokens.
    """
    import torch
    from safetensors.torch import save as save_safetensors_bytes

    path = Path(path)
    raw = getattr(model, "module", model)  # unwrap DistributedDataParallel
    parameter_names = {name for name, _ in raw.named_parameters()}
    dtype = getattr(torch, save_dtype)
    tensors = {}
    for name, tensor in raw.state_dict().items():
        t = tensor.detach().cpu()
        if name in parameter_names and t.is_floating_point():
            t = t.to(dtype)
        tensors[name] = t.contiguous()
    config = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "tauformer_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "step": int(step),
        "model": raw.config.to_dict(),
        "train": train_config.to_dict() if train_config is not None else None,
        "domain": domain,
        "tokenizer": tokenizer.record() if tokenizer is not None else "bytes",
        "weights_dtype": save_dtype,
        "extra": extra or {},
    }
    remove_leftovers(path.parent)
    with atomic_directory(path) as tmp:
        atomic_write_bytes(tmp / WEIGHTS_FILE, save_safetensors_bytes(tensors, metadata={"format": FORMAT_NAME}))
        atomic_write_json(tmp / CONFIG_FILE, config)
        atomic_write_json(tmp / HISTORY_FILE, history or [], compact=True)
        _write_tokenizer(tmp, tokenizer)
        if optimizer_state is not None:
            flat, groups = _flatten_optimizer(optimizer_state)
            atomic_write_bytes(tmp / OPTIMIZER_FILE, save_safetensors_bytes(flat, metadata={"format": FORMAT_NAME}))
            atomic_write_json(tmp / TRAINER_FILE, {"param_groups": groups, **(trainer_state or {})})
    return path


def remove_leftovers(run_dir: Path) -> list[Path]:
    """Delete the temporary ``.ckpt-<step>.*.tmp`` / ``.ckpt-<step>.old-<pid>`` directories a save
    killed midway left in ``run_dir``; returns what was removed."""
    removed = []
    if not run_dir.is_dir():
        return removed
    for child in run_dir.iterdir():
        if _LEFTOVER_RE.match(child.name) and child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
            removed.append(child)
    return removed


def _write_tokenizer(directory: Path, tokenizer) -> None:
    """tokenizer.json beside config.json (nothing for byte tokens)."""
    text = tokenizer.to_json() if tokenizer is not None else None
    if text is not None:
        atomic_write_bytes(directory / TOKENIZER_FILE, text.encode("utf-8"))


def load_checkpoint_tokenizer(path: str | Path):
    """The tokenizer a checkpoint (or a run directory's latest) was trained with; JSON only.

    Checkpoints without a tokenizer record use byte tokens. A tokenizer.json that is missing,
    unreadable or does not match the recorded hash raises CheckpointError naming the file.
    """
    from .tokenizer import load_tokenizer

    path = resolve_checkpoint(path)
    config = _read_json(path / CONFIG_FILE, what="config")
    record = config.get("tokenizer", "bytes") if isinstance(config, dict) else "bytes"
    try:
        return load_tokenizer(record, path)
    except ConfigError as err:
        raise CheckpointError(str(err)) from None


def read_meta(path: str | Path, *, history: bool = True) -> CheckpointMeta:
    """The checkpoint's config and (unless ``history`` is False) history, validated, without
    loading weights."""
    path = resolve_checkpoint(path)
    config = _read_json(path / CONFIG_FILE, what="config")
    if not isinstance(config, dict) or config.get("format") != FORMAT_NAME:
        found = config.get("format") if isinstance(config, dict) else type(config).__name__
        raise CheckpointError(f"{path / CONFIG_FILE}: not a tauformer checkpoint (format {found!r}, expected {FORMAT_NAME!r})")
    version = config.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path / CONFIG_FILE}: format version {version!r} is not supported (this version reads <= {FORMAT_VERSION})"
        )
    try:
        model_config = ModelConfig.from_dict(config.get("model"))
        train_config = TrainConfig.from_dict(config["train"]) if config.get("train") else None
    except (ConfigError, TypeError) as err:
        raise CheckpointError(f"{path / CONFIG_FILE}: invalid configuration: {err}") from None
    step = config.get("step", 0)
    if not isinstance(step, int) or isinstance(step, bool) or step < 0:
        raise CheckpointError(f"{path / CONFIG_FILE}: step must be an integer >= 0, got {step!r}")
    for key in ("domain", "extra"):
        if config.get(key) is not None and not isinstance(config[key], dict):
            raise CheckpointError(f"{path / CONFIG_FILE}: {key} must be a JSON object or null")
    records = read_history(path) if history else []
    return CheckpointMeta(
        path=path,
        step=step,
        model_config=model_config,
        train_config=train_config,
        history=records,
        domain=config.get("domain"),
        created=config.get("created"),
        extra=config.get("extra") or {},
    )


def read_history(path: Path) -> list:
    """The evaluation records of the checkpoint directory ``path`` ([] without a history file):
    a list of JSON objects whose "step", when present, is an integer."""
    history_path = path / HISTORY_FILE
    if not history_path.exists() and not history_path.is_symlink():
        return []
    history = _read_json(history_path, what="history")
    if not isinstance(history, list) or not all(isinstance(r, dict) for r in history):
        raise CheckpointError(f"{history_path}: expected a list of evaluation records (JSON objects)")
    for record in history:
        step = record.get("step", 0)
        if not isinstance(step, int) or isinstance(step, bool):
            raise CheckpointError(f"{history_path}: step {step!r} of an evaluation record is not an integer")
    return history


def load_checkpoint(path: str | Path, *, device="cpu", history: bool = True):
    """Rebuild the model from a checkpoint (or a run directory's latest) -> (GPT, CheckpointMeta).

    Nothing is unpickled: weights come from safetensors, everything else from JSON. The weights
    file's header is checked against the config (parameter count, then every tensor's dtype and
    shape) before tensors are read one at a time from the memory-mapped file. Anything that is not
    this format, or is truncated or inconsistent, raises CheckpointError naming the file.
    ``history=False`` skips history.json (meta.history is then empty), so that a broken history
    does not keep the weights from loading.
    """
    from .model import GPT

    meta = read_meta(path, history=history)
    weights_path = meta.path / WEIGHTS_FILE
    header, _ = read_safetensors_header(weights_path, root=meta.path.parent, error=CheckpointError)
    cfg = meta.model_config
    _check_parameter_count(cfg, header, weights_path)
    laplacian = None
    if cfg.attention == "tau" and "laplacian" in header:
        D = cfg.head_dim
        if header["laplacian"]["shape"] != [D, D] or header["laplacian"]["dtype"] not in FLOAT_DTYPES:
            raise CheckpointError(f"{weights_path}: laplacian is {header['laplacian']['dtype']} "
                                  f"{header['laplacian']['shape']}, the config needs a float [{D}, {D}]")
        laplacian = _read_tensors(weights_path, ["laplacian"])["laplacian"]
    try:
        model = GPT(cfg, laplacian=laplacian)
    except TauformerError as err:
        raise CheckpointError(f"{weights_path}: {err}") from None
    expected = model.state_dict()
    _check_header(expected, header, weights_path)
    weights = _read_tensors(weights_path, list(expected))
    _check_state(model, weights, weights_path)
    model.load_state_dict(weights, strict=True)
    model.to(device)
    model.eval()
    return model, meta


def _check_parameter_count(cfg: ModelConfig, header: dict, path: Path) -> None:
    """Refuse, before the model is built, a config that needs more numbers than the file holds."""
    held = 0
    for info in header.values():
        count = 1
        for s in info["shape"]:
            count *= s
        held += count
    needed = estimated_parameters(cfg)
    if held < needed:
        raise CheckpointError(f"{path}: the config needs at least {needed:,} parameters, the file holds {held:,} values "
                              f"(weights and config do not match)")


def _check_names(expected: dict, found: dict, path: Path) -> None:
    """The tensor names in ``found`` (a file's header or its tensors) are exactly the model's."""
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    if missing or unexpected:
        raise CheckpointError(
            f"{path}: weights do not match the configured model (missing {missing[:5]}, unexpected {unexpected[:5]})"
        )


def _check_header(expected: dict, header: dict, path: Path) -> None:
    """Every tensor the model needs is in the header with its shape and a fitting dtype (a float
    for floating-point tensors, the exact integer type otherwise); nothing else is."""
    _check_names(expected, header, path)
    for name, tensor in expected.items():
        info = header[name]
        if list(tensor.shape) != info["shape"]:
            raise CheckpointError(f"{path}: {name} has shape {tuple(info['shape'])}, the config needs {tuple(tensor.shape)}")
        if tensor.is_floating_point():
            ok = info["dtype"] in FLOAT_DTYPES
        else:
            ok = TORCH_DTYPES.get(info["dtype"]) == str(tensor.dtype).removeprefix("torch.")
        if not ok:
            raise CheckpointError(f"{path}: {name} is stored as {info['dtype']}, the model needs {tensor.dtype}")


def load_training_state(path: str | Path) -> tuple[dict, dict]:
    """(optimizer state_dict, trainer state) saved with a checkpoint, for resuming."""
    path = resolve_checkpoint(path)
    if not (path / OPTIMIZER_FILE).is_file() or not (path / TRAINER_FILE).is_file():
        raise CheckpointError(f"{path}: holds no optimizer state ({OPTIMIZER_FILE}); it cannot be resumed")
    flat = read_safetensors(path / OPTIMIZER_FILE)
    trainer = _read_json(path / TRAINER_FILE, what="trainer state")
    if not isinstance(trainer, dict) or not isinstance(trainer.get("param_groups", []), list):
        raise CheckpointError(f"{path / TRAINER_FILE}: expected a JSON object with a list of param_groups")
    for key in flat:
        parts = key.split(".", 2)
        if len(parts) != 3 or parts[0] != "state" or not parts[1].isdigit():
            raise CheckpointError(f"{path / OPTIMIZER_FILE}: unexpected tensor name {key!r}")
    return _unflatten_optimizer(flat, trainer.pop("param_groups", [])), trainer


def read_safetensors(path: Path) -> dict:
    """Tensors of a safetensors file written by this package, or CheckpointError (header checked
    first; tensors read one by one from the memory-mapped file)."""
    header, _ = read_safetensors_header(path, root=path.parent.parent, error=CheckpointError)
    return _read_tensors(path, list(header))


def _read_tensors(path: Path, names: list[str]) -> dict:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as fh:
            return {name: fh.get_tensor(name) for name in names}
    except Exception as err:  # the library's errors carry no file name
        raise CheckpointError(f"{path}: cannot be read (truncated or not a safetensors file: {err})") from None


def _check_state(model, weights: dict, path: Path) -> None:
    import torch

    expected = model.state_dict()
    _check_names(expected, weights, path)
    for name, tensor in weights.items():
        if tensor.shape != expected[name].shape:
            raise CheckpointError(
                f"{path}: {name} has shape {tuple(tensor.shape)}, the config needs {tuple(expected[name].shape)}"
            )
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise CheckpointError(f"{path}: {name} contains NaN or infinite values")


def _read_json(path: Path, *, what: str):
    """JSON of a checkpoint file: a regular file inside the run directory, parsed safely."""
    if not path.exists() and not path.is_symlink():
        raise CheckpointError(f"{path}: missing ({what}); not a tauformer checkpoint")
    return read_json(path, root=path.parent.parent, error=CheckpointError, what=what)


def _flatten_optimizer(state_dict: dict) -> tuple[dict, list]:
    """torch optimizer state_dict -> flat {'state.<i>.<name>': tensor} and JSON param groups."""
    import torch

    flat = {}
    for idx, per_param in state_dict["state"].items():
        for name, value in per_param.items():
            flat[f"state.{idx}.{name}"] = torch.as_tensor(value).detach().cpu().contiguous()
    return flat, state_dict["param_groups"]


def _unflatten_optimizer(flat: dict, groups: list) -> dict:
    state: dict = {}
    for key, value in flat.items():
        _, idx, name = key.split(".", 2)
        state.setdefault(int(idx), {})[name] = value
    return {"state": state, "param_groups": groups}
