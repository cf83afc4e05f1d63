"""Model and training configuration: dataclasses saved into every checkpoint as JSON.

`from_dict` accepts configs written by earlier versions: renamed keys are patched, unknown keys
are refused with a message naming them (a silent drop could change the model).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

from .errors import ConfigError

ATTENTION_KINDS = ("tau", "dot")
TAU_MODES = ("fixed", "median", "mean", "percentile", "calibrated")
TAU_KERNELS = ("auto", "dense", "fast", "triton")

# Keys written by earlier versions -> their current names.
_RENAMED_MODEL_KEYS = {"n_kv_heads": "n_kv_head", "attn": "attention", "learnable_temperature": "learn_temperature"}
_RENAMED_TRAIN_KEYS = {"max_steps": "steps", "warmup": "warmup_steps"}


# --- Validation of values that may come from a file: types, limits, parameter count ---------------
# A config.json is input like any other: "4", 4.5 and true are not an int, NaN is not a tau, and a
# model of 10^7 layers is refused before a single tensor is allocated.

MODEL_LIMITS = {  # inclusive upper bounds of the shape settings (lower bound 1 for each)
    "vocab_size": 1 << 21,
    "block_size": 1 << 20,
    "n_layer": 1024,
    "n_head": 1024,
    "n_kv_head": 1024,
    "n_embd": 1 << 16,
}
MAX_PARAMETERS = 20_000_000_000  # 80 GB of float32 weights; far beyond anything trained here


def check_field_types(obj, what: str) -> None:
    """ConfigError unless every field of the dataclass ``obj`` holds its annotated type.

    int fields take only int (not bool, "4" or 4.5); float fields take int or float, finite;
    bool fields take only bool; ``X | None`` fields also take None.
    """
    for f in fields(obj):
        value = getattr(obj, f.name)
        kinds = [k.strip() for k in str(f.type).split("|")]
        if value is None and "None" in kinds:
            continue
        if not any(_has_kind(value, kind) for kind in kinds if kind != "None"):
            raise ConfigError(f"{what}: {f.name} must be {' or '.join(kinds)}, got {value!r} ({type(value).__name__})")
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{what}: {f.name} must be finite, got {value!r}")


def _has_kind(value, kind: str) -> bool:
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "str":
        return isinstance(value, str)
    return True  # a type this check does not know: left to the other checks


def check_model_limits(cfg) -> None:
    """ConfigError for shape settings outside MODEL_LIMITS or a model above MAX_PARAMETERS."""
    for name, top in MODEL_LIMITS.items():
        value = getattr(cfg, name)
        if not 1 <= value <= top:
            raise ConfigError(f"model config: {name} must be between 1 and {top:,}, got {value:,}")
    if cfg.rope_base <= 0:
        raise ConfigError(f"model config: rope_base must be > 0, got {cfg.rope_base}")
    if cfg.softcap is not None and cfg.softcap <= 0:
        raise ConfigError(f"model config: softcap must be > 0 or null, got {cfg.softcap}")
    count = estimated_parameters(cfg)
    if count > MAX_PARAMETERS:
        raise ConfigError(f"model config: about {count:,} parameters, above the limit of {MAX_PARAMETERS:,}")


def estimated_parameters(cfg) -> int:
    """A lower bound on the model's parameter count, from the config alone (no allocation):
    token embedding and head, and per layer the q / k / v / output projections and the MLP."""
    C, hd = cfg.n_embd, cfg.n_embd // cfg.n_head
    per_layer = 2 * C * C + 2 * C * cfg.n_kv_head * hd + 8 * C * C
    return 2 * cfg.vocab_size * C + cfg.n_layer * per_layer
# --- end of file-input validation ---------------------------------------------------------------


@dataclass
class ModelConfig:
    """Shape and attention settings of a GPT; everything needed to rebuild it from weights.

    ``attention`` is "tau" or "dot"; the tau_* and temperature settings only matter for "tau".
    """

    vocab_size: int = 256
    block_size: int = 256
    n_layer: int = 4
    n_head: int = 4
    n_kv_head: int = 4
    n_embd: int = 128
    attention: str = "tau"
    tau_mode: str = "calibrated"
    tau: float = 1.0  # fixed tau; also the starting value of the calibrated one
    tau_percentile: float | None = None  # p in [0, 1] for tau_mode="percentile"
    calibration_momentum: float = 0.99
    # Initial per-head temperature. The reference's 1.0 leaves attention almost uniform (logits
    # span < 1 nat for lambda in [0, 1)); 0.02 lets the calibrated lambdas (spread ~0.15 between
    # their 5th and 95th percentiles) select keys from the first step.
    temperature: float = 0.02
    learn_temperature: bool = True
    laplacian_layout: str = "dense"  # "dense" or "sparse" (torch.sparse CSR matmul)
    tau_kernel: str = "auto"
    softcap: float | None = 15.0
    rope_base: float = 10000.0

    def __post_init__(self) -> None:
        self.validate()

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head

    def validate(self) -> None:
        """Raise ConfigError on any inconsistent setting."""
        check_field_types(self, "model config")
        if self.attention not in ATTENTION_KINDS:
            raise ConfigError(f"attention must be one of {ATTENTION_KINDS}, got {self.attention!r}")
        if self.tau_mode not in TAU_MODES:
            raise ConfigError(f"tau_mode must be one of {TAU_MODES}, got {self.tau_mode!r}")
        if self.tau_kernel not in TAU_KERNELS:
            raise ConfigError(f"tau_kernel must be one of {TAU_KERNELS}, got {self.tau_kernel!r}")
        if self.laplacian_layout not in ("dense", "sparse"):
            raise ConfigError(f"laplacian_layout must be 'dense' or 'sparse', got {self.laplacian_layout!r}")
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_kv_head", "n_embd"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.n_embd % self.n_head:
            raise ConfigError(f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head})")
        if self.n_head % self.n_kv_head:
            raise ConfigError(f"n_head ({self.n_head}) must be divisible by n_kv_head ({self.n_kv_head})")
        if self.head_dim % 2:
            raise ConfigError(f"head_dim = n_embd / n_head = {self.head_dim} must be even for RoPE")
        if self.tau_mode == "percentile" and not (self.tau_percentile is not None and 0 <= self.tau_percentile <= 1):
            raise ConfigError("tau_mode='percentile' needs tau_percentile in [0, 1]")
        if self.tau <= 0 or self.temperature <= 0:
            raise ConfigError(f"tau and temperature must be > 0, got tau={self.tau}, temperature={self.temperature}")
        if not 0 <= self.calibration_momentum < 1:
            raise ConfigError(f"calibration_momentum must be in [0, 1), got {self.calibration_momentum}")
        check_model_limits(self)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ModelConfig":
        return cls(**_patched(cls, data, _RENAMED_MODEL_KEYS, "model config"))


@dataclass
class TrainConfig:
    """Optimisation, evaluation and checkpointing settings of one training run."""

    steps: int = 2000
    batch_size: int = 16
    lr: float = 3e-3
    min_lr_ratio: float = 0.1
    warmup_steps: int = 100
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0
    eval_every: int = 100
    eval_batches: int = 8
    ckpt_every: int = 500
    keep_checkpoints: int = 0  # 0 keeps every checkpoint
    seed: int = 1337
    data: str | None = None  # None = the bundled corpus
    val_fraction: float = 0.1
    domain: str | None = None  # domain-memory file whose Laplacian the tau model uses
    device: str = "auto"
    save_dtype: str = "float32"  # weights dtype on disk: float32, float16 or bfloat16
    save_optimizer: bool = True  # keep optimizer state in checkpoints (needed for --resume)
    grad_accum: int = 1  # micro-batches per optimizer step (global batch = batch_size * grad_accum * processes)
    compile: bool = False  # torch.compile the model for training
    fsdp: bool = False  # under torchrun: shard parameters with FSDP2 (fully_shard) instead of DDP
    peak_tflops: float = 0.0  # per-device peak for MFU; 0 = the GPU's bf16 peak when known

    def __post_init__(self) -> None:
        check_field_types(self, "train config")
        if self.steps < 1 or self.batch_size < 1:
            raise ConfigError(f"steps and batch_size must be >= 1, got {self.steps}, {self.batch_size}")
        if not 0 < self.val_fraction < 1:
            raise ConfigError(f"val_fraction must be in (0, 1), got {self.val_fraction}")
        if self.save_dtype not in ("float32", "float16", "bfloat16"):
            raise ConfigError(f"save_dtype must be float32, float16 or bfloat16, got {self.save_dtype!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        return cls(**_patched(cls, data, _RENAMED_TRAIN_KEYS, "train config"))


def _patched(cls, data: dict, renamed: dict, what: str) -> dict:
    """Rename old keys and refuse unknown ones."""
    if not isinstance(data, dict):
        raise ConfigError(f"{what} must be a JSON object, got {type(data).__name__}")
    data = {renamed.get(k, k): v for k, v in data.items()}
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{what} has unknown keys {unknown}; known keys are {sorted(known)}")
    return data
