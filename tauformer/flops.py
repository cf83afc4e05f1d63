"""Model FLOPs per token and the accelerator's peak, for model FLOPs utilisation (MFU).

FLOPs per token follow the PaLM / nanoGPT estimate for a forward + backward pass:
6 * N (N = parameters outside the embedding lookup) + 12 * n_layer * n_embd * block_size (the
attention scores and their weighting). The same estimate is used for tau and dot models, so
their MFU sits on one axis; tau's extra lambda work (x^T L x, O(D^2) per head vector) is not
counted. MFU = achieved model FLOP/s / (peak FLOP/s of every device in the run).
"""

from __future__ import annotations

import torch

# Dense bf16 tensor-core peaks (FLOP/s, without sparsity) from the vendors' data sheets.
BF16_PEAKS = (
    ("B200", 2.25e15), ("H200", 989e12), ("H100", 989e12), ("GH200", 989e12), ("A100", 312e12),
    ("L40S", 362e12), ("L4", 121e12), ("A10", 125e12), ("RTX 4090", 165e12), ("RTX 3090", 71e12),
)


def flops_per_token(model: torch.nn.Module) -> float:
    """Training FLOPs per token (forward + backward) of a GPT."""
    cfg = model.config
    n = sum(p.numel() for name, p in model.named_parameters() if not name.endswith("wte.weight"))
    return 6.0 * n + 12.0 * cfg.n_layer * cfg.n_embd * cfg.block_size


def peak_flops(device: torch.device, override_tflops: float = 0.0) -> float | None:
    """Peak FLOP/s of one device: the override (TFLOP/s) when given, the table's bf16 peak for a
    known CUDA GPU, else None (a CPU has no meaningful peak here: MFU is then not reported)."""
    if override_tflops and override_tflops > 0:
        return override_tflops * 1e12
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key, peak in BF16_PEAKS:
        if key in name:
            return peak
    return None
