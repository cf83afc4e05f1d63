"""Token shards: the on-disk form of a prepared corpus, read back memory-mapped.

    DIR/
      train.bin        flat token ids (uint16 or uint32, little-endian), documents back to back
      val.bin          the same for the validation documents
      tokenizer.json   the BPE tokenizer (absent for bytes)
      meta.json        format, tokenizer record, dtype, per-split token / byte / document counts,
                       source fingerprint and the split rule

The split is by document and deterministic: document i (0-based, in the order the inputs are
read) is validation when floor((i + 1) * f) > floor(i * f), i.e. every (1/f)-th document for a
validation fraction f. Bytes are the UTF-8 bytes the tokens cover, so bits per byte is
(sum of token losses) / (ln 2 * bytes) whatever the tokenizer (SPEC section 9).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import ConfigError
from .fsutil import atomic_write_json
from .tokenizer import TOKENIZER_FILE, load_tokenizer

FORMAT_NAME = "tauformer-shards"
FORMAT_VERSION = 1
META_FILE = "meta.json"
SPLIT_FILES = {"train": "train.bin", "val": "val.bin"}
DTYPES = ("uint16", "uint32")
SPLIT_RULE = "document i is validation when floor((i + 1) * val_fraction) > floor(i * val_fraction)"


def is_validation(index: int, val_fraction: float) -> bool:
    """Whether document `index` goes to the validation split (see the module docstring)."""
    return math.floor((index + 1) * val_fraction) > math.floor(index * val_fraction)


def is_shards_dir(path) -> bool:
    return path is not None and Path(path).is_dir() and (Path(path) / META_FILE).is_file()


class ShardWriter:
    """Appends documents' token ids to train.bin / val.bin; files appear complete or not at all.

    Use as a context manager: on an exception the partial files are removed.
    """

    def __init__(self, out: Path, dtype: str, val_fraction: float):
        if dtype not in DTYPES:
            raise ConfigError(f"--dtype {dtype!r}: choose one of {', '.join(DTYPES)}")
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.dtype = np.dtype(dtype).newbyteorder("<")
        self.val_fraction = val_fraction
        self.counts = {split: {"tokens": 0, "bytes": 0, "documents": 0} for split in SPLIT_FILES}
        self._tmp = {split: self.out / f".{name}.partial" for split, name in SPLIT_FILES.items()}
        self._files = {split: open(path, "wb") for split, path in self._tmp.items()}
        self.n_documents = 0

    def add(self, ids, n_bytes: int) -> str:
        """Write one document's ids to its split (by document index); returns the split."""
        split = "val" if is_validation(self.n_documents, self.val_fraction) else "train"
        arr = np.asarray(ids, dtype=self.dtype)
        self._files[split].write(arr.tobytes())
        c = self.counts[split]
        c["tokens"] += int(arr.size)
        c["bytes"] += int(n_bytes)
        c["documents"] += 1
        self.n_documents += 1
        return split

    def finish(self, meta: dict) -> Path:
        """Close, move the shards into place and write meta.json (with the counts) last."""
        for fh in self._files.values():
            fh.close()
        for split, name in SPLIT_FILES.items():
            os.replace(self._tmp[split], self.out / name)
        record = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "dtype": self.dtype.name,
                  "val_fraction": self.val_fraction, "split_rule": SPLIT_RULE, **self.counts, **meta}
        atomic_write_json(self.out / META_FILE, record)
        return self.out / META_FILE

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            for fh in self._files.values():
                fh.close()
            for path in self._tmp.values():
                path.unlink(missing_ok=True)
        return False


def read_shards_meta(path) -> dict:
    """meta.json of a shards directory, validated against the shard files' sizes."""
    path = Path(path)
    meta_path = path / META_FILE
    if not meta_path.is_file():
        raise ConfigError(f"{path}: not a prepared data directory (no {META_FILE}); "
                          "make one with `python -m tauformer prepare INPUT --out DIR`")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ConfigError(f"{meta_path}: cannot be read as JSON ({err})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise ConfigError(f"{meta_path}: not a tauformer shards file (format {found!r}, expected {FORMAT_NAME!r})")
    if not isinstance(meta.get("format_version"), int) or meta["format_version"] > FORMAT_VERSION:
        raise ConfigError(f"{meta_path}: format version {meta.get('format_version')!r} is not supported")
    if meta.get("dtype") not in DTYPES:
        raise ConfigError(f"{meta_path}: dtype {meta.get('dtype')!r} is not one of {', '.join(DTYPES)}")
    itemsize = np.dtype(meta["dtype"]).itemsize
    for split, name in SPLIT_FILES.items():
        shard = path / name
        tokens = int((meta.get(split) or {}).get("tokens", -1))
        if not shard.is_file():
            raise ConfigError(f"{shard}: missing")
        if shard.stat().st_size != tokens * itemsize:
            raise ConfigError(f"{shard}: holds {shard.stat().st_size} bytes, {META_FILE} says {tokens} "
                              f"{meta['dtype']} tokens ({tokens * itemsize} bytes); the data is truncated or stale")
    return meta


@dataclass
class Shards:
    """A prepared corpus opened read-only: memory-mapped ids [N] per split, the tokenizer, meta."""

    path: Path
    meta: dict
    train: np.ndarray
    val: np.ndarray
    tokenizer: object

    @property
    def bytes_per_token(self) -> float:
        c = self.meta["train"]
        return c["bytes"] / max(1, c["tokens"])


def open_shards(path) -> Shards:
    """Open DIR/train.bin and DIR/val.bin as memory maps (nothing is read until sliced)."""
    path = Path(path)
    meta = read_shards_meta(path)
    tokenizer = load_tokenizer(meta.get("tokenizer"), path)
    dtype = np.dtype(meta["dtype"]).newbyteorder("<")
    maps = {}
    for split, name in SPLIT_FILES.items():
        n = int(meta[split]["tokens"])
        maps[split] = np.memmap(path / name, dtype=dtype, mode="r", shape=(n,)) if n else np.zeros(0, dtype=dtype)
    return Shards(path=path, meta=meta, train=maps["train"], val=maps["val"], tokenizer=tokenizer)


def tokenizer_path(path) -> Path:
    return Path(path) / TOKENIZER_FILE
