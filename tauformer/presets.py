"""Model shape presets for `train --preset` (the vocabulary comes from the data's tokenizer).

=========== ======= ===== ==== ===== ===== ===================================================
preset      layers  heads  D   C     block  parameters
=========== ======= ===== ==== ===== ===== ===================================================
tiny        2       2      16  32    64     smoke tests
demo        4       3      32  96    256    the bundled demo (assets/demo/*/ckpt-*/config.json)
paper-30m   6       1      384 384   1024   10.6M in the blocks + 2 * V * 384 in wte / lm_head:
                                            29.5M with a 24,576-token BPE, 10.8M with bytes
small       12      6      128 768   1024   SPEC section 4
medium      24      16     64  1024  1024   SPEC section 4's C and depth (see below)
large       36      20     64  1280  1024   SPEC section 4
=========== ======= ===== ==== ===== ===== ===================================================

paper-30m has head dim 384, the size of the published 384-dimensional domain manifolds (such as
the CVE one), so `train --preset paper-30m --domain cve.safetensors` uses them as they are. The
SPEC's medium shape (1024 / 12 heads) does not divide into whole even heads; the preset keeps C
and the layer count and uses 16 heads of 64.
"""

from __future__ import annotations

from .errors import ConfigError

PRESETS = {
    "tiny": dict(n_layer=2, n_head=2, n_kv_head=2, n_embd=32, block_size=64),
    "demo": dict(n_layer=4, n_head=3, n_kv_head=3, n_embd=96, block_size=256),
    "paper-30m": dict(n_layer=6, n_head=1, n_kv_head=1, n_embd=384, block_size=1024),
    "small": dict(n_layer=12, n_head=6, n_kv_head=6, n_embd=768, block_size=1024),
    "medium": dict(n_layer=24, n_head=16, n_kv_head=16, n_embd=1024, block_size=1024),
    "large": dict(n_layer=36, n_head=20, n_kv_head=20, n_embd=1280, block_size=1024),
}
PAPER_30M_VOCAB = 24576  # the BPE size at which paper-30m has ~30M parameters


def preset_shape(name: str) -> dict:
    """A copy of the named preset's shape; ConfigError for an unknown name."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}")
    return dict(PRESETS[name])


def parameter_count(n_layer: int, n_head: int, n_kv_head: int, n_embd: int, vocab_size: int, **_) -> int:
    """Parameters of a GPT of this shape (both attention kinds; a tau model's n_head temperatures
    per layer included): per layer 2 C^2 (c_q, c_proj) + 2 C H_kv D (c_k, c_v) + 8 C^2 (MLP)."""
    D = n_embd // n_head
    per_layer = 2 * n_embd * n_embd + 2 * n_embd * n_kv_head * D + 8 * n_embd * n_embd + n_head
    return n_layer * per_layer + 2 * vocab_size * n_embd
