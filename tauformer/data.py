"""Tokenizer, corpora and batches.

The default corpus needs no download: the topic pages of Python's own documentation
(`pydoc_data.topics`, ~465 KB of English that ships with CPython). Any UTF-8 text file works
too. Tokens are bytes (vocab 256), so a loss in nats per token converts to bits per byte by /ln 2.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import torch

from .errors import ConfigError

DEFAULT_CORPUS = "pydoc_data.topics"


class ByteTokenizer:
    """UTF-8 bytes as tokens: encode never fails, decode replaces broken sequences."""

    vocab_size = 256
    name = "bytes"

    def encode(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))

    def decode(self, ids) -> str:
        return bytes(int(i) for i in ids).decode("utf-8", errors="replace")

    def token_label(self, token_id: int) -> str:
        """A short printable label of one token for displays (⏎ newline, · space, \\xNN others)."""
        b = int(token_id)
        if b == 10:
            return "⏎"
        if b == 32:
            return "·"
        if 33 <= b < 127:
            return chr(b)
        return f"\\x{b:02x}"


def load_corpus(path: str | Path | None = None) -> str:
    """The training text: the bundled documentation topics, or a UTF-8 file at `path`."""
    if path is None or str(path) == DEFAULT_CORPUS:
        from pydoc_data.topics import topics

        return "\n\n".join(topics[key].strip() for key in sorted(topics))
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: no such data file")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(f"{p}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    except OSError as err:
        raise ConfigError(f"{p}: cannot read ({err.strerror})") from None
    if not text.strip():
        raise ConfigError(f"{p}: the file is empty")
    return text


def load_paragraphs(path: str | Path | None = None, *, min_chars: int = 40) -> list[str]:
    """Paragraphs (blank-line separated, whitespace collapsed) of a corpus, at least min_chars long."""
    text = load_corpus(path)
    paragraphs = (re.sub(r"\s+", " ", p).strip() for p in re.split(r"\n\s*\n", text))
    return [p for p in paragraphs if len(p) >= min_chars]


def split_tokens(ids: torch.Tensor, val_fraction: float = 0.1) -> tuple[torch.Tensor, torch.Tensor]:
    """Deterministic split: the last val_fraction of the token stream is validation."""
    n_val = max(1, int(math.ceil(len(ids) * val_fraction)))
    return ids[:-n_val], ids[-n_val:]


class TokenBatches:
    """Random [B, T] windows of a token stream for training, and fixed ones for evaluation."""

    def __init__(self, text: str, *, block_size: int, val_fraction: float = 0.1, source: str = DEFAULT_CORPUS):
        self.tokenizer = ByteTokenizer()
        ids = torch.tensor(self.tokenizer.encode(text), dtype=torch.uint8)
        self.train_ids, self.val_ids = split_tokens(ids, val_fraction)
        self.block_size = block_size
        for name, part in (("training", self.train_ids), ("validation", self.val_ids)):
            if len(part) <= block_size + 1:
                raise ConfigError(
                    f"{source}: the {name} split has {len(part)} tokens, fewer than block_size + 2 = "
                    f"{block_size + 2}; use a larger corpus or a smaller block size"
                )

    def batch(self, split: str, batch_size: int, generator: torch.Generator, device=None):
        """x, y [B, T] int64 (y is x shifted by one) from random offsets drawn with `generator`."""
        ids = self.train_ids if split == "train" else self.val_ids
        T = self.block_size
        starts = torch.randint(0, len(ids) - T - 1, (batch_size,), generator=generator)
        rows = torch.stack([ids[s : s + T + 1] for s in starts.tolist()]).long()  # [B, T+1]
        x, y = rows[:, :-1], rows[:, 1:]
        if device is not None:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        return x, y

    def eval_batches(self, n_batches: int, batch_size: int, *, seed: int = 0, device=None):
        """The same n_batches validation batches every time (so evaluations are comparable)."""
        gen = torch.Generator().manual_seed(seed)
        return [self.batch("val", batch_size, gen, device) for _ in range(n_batches)]


def bits_per_byte(loss_nats: float) -> float:
    """Cross-entropy per byte token in nats -> bits per byte."""
    return loss_nats / math.log(2)
