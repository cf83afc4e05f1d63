"""Corpora and training batches: a text held in memory, or prepared shards read memory-mapped.

The default corpus needs no download: the topic pages of Python's own documentation
(`pydoc_data.topics`, ~465 KB of English that ships with CPython). Any UTF-8 text file works
too (byte tokens). A directory made by `python -m tauformer prepare` (see shards.py) brings
its own tokenizer; windows are sliced from its memory maps, so the corpus never has to fit in
memory. Validation is reported in nats per token and in bits per byte (SPEC section 9).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import torch

from .errors import ConfigError
from .shards import is_shards_dir, open_shards
from .tokenizer import ByteTokenizer

__all__ = ["ByteTokenizer", "DEFAULT_CORPUS", "ShardBatches", "TokenBatches", "bits_per_byte", "load_batches",
           "load_corpus", "load_paragraphs", "split_tokens"]

DEFAULT_CORPUS = "pydoc_data.topics"


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
    """Random [B, T] windows of a token stream for training, and fixed ones for evaluation.

    Built from a text (byte tokens, split by position: the last val_fraction is validation);
    ShardBatches builds the same from prepared shards.
    """

    def __init__(self, text: str, *, block_size: int, val_fraction: float = 0.1, source: str = DEFAULT_CORPUS):
        self.tokenizer = ByteTokenizer()
        ids = torch.tensor(self.tokenizer.encode(text), dtype=torch.uint8)
        self.train_ids, self.val_ids = split_tokens(ids, val_fraction)
        self.block_size = block_size
        self.source = source
        self._check_sizes()

    def _check_sizes(self) -> None:
        for name, part in (("training", self.train_ids), ("validation", self.val_ids)):
            if len(part) <= self.block_size + 1:
                raise ConfigError(
                    f"{self.source}: the {name} split has {len(part)} tokens, fewer than block_size + 2 = "
                    f"{self.block_size + 2}; use a larger corpus or a smaller block size"
                )

    def _ids(self, split: str):
        return self.train_ids if split == "train" else self.val_ids

    def starts(self, split: str, n: int, generator: torch.Generator) -> torch.Tensor:
        """n random window offsets [n] into a split, drawn with `generator`."""
        return torch.randint(0, len(self._ids(split)) - self.block_size - 1, (n,), generator=generator)

    def windows(self, split: str, starts, device=None):
        """x, y [B, T] int64 (y is x shifted by one) at the given offsets."""
        ids = self._ids(split)
        T = self.block_size
        rows = self._rows(ids, [int(s) for s in starts], T + 1)  # [B, T+1]
        x, y = rows[:, :-1], rows[:, 1:]
        if device is not None:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        return x, y

    @staticmethod
    def _rows(ids, starts: list[int], width: int) -> torch.Tensor:
        return torch.stack([ids[s : s + width] for s in starts]).long()

    def batch(self, split: str, batch_size: int, generator: torch.Generator, device=None):
        """x, y [B, T] int64 (y is x shifted by one) from random offsets drawn with `generator`."""
        return self.windows(split, self.starts(split, batch_size, generator), device)

    def eval_batches(self, n_batches: int, batch_size: int, *, seed: int = 0, device=None):
        """The same n_batches validation batches every time (so evaluations are comparable)."""
        gen = torch.Generator().manual_seed(seed)
        return [self.batch("val", batch_size, gen, device) for _ in range(n_batches)]

    def target_bytes(self, y: torch.Tensor) -> int:
        """UTF-8 bytes the target tokens y cover (the denominator of bits per byte)."""
        lengths = getattr(self, "_byte_lengths", None)
        if lengths is None:
            lengths = self._byte_lengths = torch.from_numpy(self.tokenizer.byte_lengths())
        return int(lengths[y.detach().cpu().clamp(0, len(lengths) - 1)].sum())

    @property
    def n_train_tokens(self) -> int:
        return len(self.train_ids)


class ShardBatches(TokenBatches):
    """TokenBatches over a prepared directory's memory-mapped train.bin / val.bin."""

    def __init__(self, path, *, block_size: int):
        self.shards = open_shards(path)
        self.tokenizer = self.shards.tokenizer
        self.train_ids, self.val_ids = self.shards.train, self.shards.val
        self.block_size = block_size
        self.source = str(path)
        self._check_sizes()

    @staticmethod
    def _rows(ids, starts: list[int], width: int) -> torch.Tensor:
        rows = np.stack([np.asarray(ids[s : s + width]) for s in starts]).astype(np.int64)  # [B, width]
        return torch.from_numpy(rows)


def load_batches(data: str | None, *, block_size: int, val_fraction: float = 0.1) -> TokenBatches:
    """Batches of a prepared shards directory, a UTF-8 text file, or (None) the bundled corpus."""
    if is_shards_dir(data):
        return ShardBatches(data, block_size=block_size)
    if data is not None and Path(data).is_dir():
        raise ConfigError(f"{data}: a directory without meta.json; make one with "
                          f"`python -m tauformer prepare INPUT --out {data}` or pass a text file")
    return TokenBatches(load_corpus(data), block_size=block_size, val_fraction=val_fraction,
                        source=data or "the bundled Python documentation topics")


def bits_per_byte(loss_nats: float, bytes_per_token: float = 1.0) -> float:
    """Mean cross-entropy per token in nats -> bits per UTF-8 byte (1 byte per token for byte tokens)."""
    return loss_nats / (math.log(2) * bytes_per_token)
