"""Load an embedding (items x features) from a file, or embed a text corpus on the spot.

Formats: ``.npy``; ``.npz`` and ``.safetensors`` (first array, or the one named by ``key``);
``.parquet`` and ``.csv`` (numeric columns become features, or a column of equal-length lists;
a text / label column is kept for hover; a table with only a text column is embedded);
``.txt`` / ``.md`` (UTF-8; one document per paragraph, or per line). Nothing is unpickled.
Every problem raises DomainError naming the file.
"""

from __future__ import annotations

import hashlib
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DomainError, TauformerError
from .embed import embed_texts

TEXT_SUFFIXES = (".txt", ".md")
SUFFIXES = (".npy", ".npz", ".safetensors", ".parquet", ".csv") + TEXT_SUFFIXES
MAX_ARRAY_BYTES = 8 << 30  # one embedding array; 300,000 x 384 float32 is 0.46 GB
BOMB_RATIO = 100  # an .npz member that inflates more than this ...
BOMB_MIN_BYTES = 16 << 20  # ... to more than this is refused as a zip bomb


@dataclass
class EmbeddingSet:
    """An embedding matrix with its provenance.

    Attributes
    ----------
    X : float32 [N, F]
    texts, labels : per-item strings (hover text / class) or None
    path : the file it came from
    fingerprint : sha256 of the file's bytes
    embedder : "precomputed", or the embedder that produced X from text
    feature_names : column names for tables, else None
    """

    X: np.ndarray
    texts: list[str] | None
    labels: list[str] | None
    path: str
    fingerprint: str
    embedder: str
    feature_names: list[str] | None = None

    @property
    def n_items(self) -> int:
        return int(self.X.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.X.shape[1])

    def source(self) -> dict:
        """Provenance dict stored with a domain memory."""
        return {
            "path": self.path,
            "fingerprint": self.fingerprint,
            "n_items": self.n_items,
            "n_features": self.n_features,
            "embedder": self.embedder,
        }


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes, read in 8 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(8 << 20), b""):
            h.update(block)
    return h.hexdigest()


def check_matrix(X, path) -> np.ndarray:
    """Validate an embedding matrix and return it as float32 [N, F]; DomainError names the problem."""
    X = np.asarray(X)
    if X.dtype == object or not (np.issubdtype(X.dtype, np.number) or X.dtype == bool):
        raise DomainError(f"{path}: embedding must be numeric, got dtype {X.dtype}")
    if X.ndim != 2:
        raise DomainError(f"{path}: expected a 2-D array [items, features], got {X.ndim}-D shape {X.shape}")
    N, F = X.shape
    if N == 0:
        raise DomainError(f"{path}: no items (shape {X.shape})")
    if F < 2:
        raise DomainError(f"{path}: need at least 2 features per item, got {F}")
    with np.errstate(over="ignore", invalid="ignore"):  # beyond float32 becomes inf: refused below
        X = np.asarray(X, dtype=np.float32)
    finite = np.isfinite(X).all(axis=1)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        raise DomainError(f"{path}: {len(bad)} row(s) contain NaN or inf (first at row {bad[0]})")
    return X


def split_documents(text: str, *, per_line: bool = False) -> list[str]:
    """Paragraphs (blank-line separated) or non-empty lines, stripped."""
    parts = text.splitlines() if per_line else re.split(r"\n\s*\n", text)
    return [p.strip() for p in parts if p.strip()]


def _strings(values, n: int, what: str, path) -> list[str]:
    values = list(values)
    if len(values) != n:
        raise DomainError(f"{path}: {what} has {len(values)} entries but there are {n} items (mismatched lengths)")
    return ["" if v is None else str(v) for v in values]


def _npy_bytes(fh, path, where: str) -> int:
    """Bytes of array data an .npy header announces (read from ``fh``, left after the header)."""
    from numpy.lib import format as npformat

    version = npformat.read_magic(fh)
    read = npformat.read_array_header_1_0 if version == (1, 0) else npformat.read_array_header_2_0
    shape, _, dtype = read(fh, max_header_size=10_000)
    if dtype.hasobject:
        raise DomainError(f"{path}: {where} holds Python objects (a pickle); refused")
    count = 1
    for s in shape:
        count *= int(s)
    return count * dtype.itemsize


def _check_npy(path: Path) -> None:
    """Refuse an .npy whose header asks for more bytes than the file has, or than MAX_ARRAY_BYTES."""
    from ..safefile import open_regular

    with open_regular(path, error=DomainError) as fh:
        need = _npy_bytes(fh, path, "the array")
        have = path.stat().st_size - fh.tell()
    if need > have:
        raise DomainError(f"{path}: truncated .npy file (the header announces {need:,} bytes, {have:,} present)")
    if need > MAX_ARRAY_BYTES:
        raise DomainError(f"{path}: array of {need:,} bytes is above the {MAX_ARRAY_BYTES:,} byte limit")


def _check_npz(path: Path) -> None:
    """Refuse an .npz member that is not a plain .npy, asks for more than MAX_ARRAY_BYTES, holds
    objects, or inflates like a zip bomb -- all from the zip directory and .npy headers."""
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            where = f"member {info.filename!r}"
            if info.file_size > MAX_ARRAY_BYTES:
                raise DomainError(f"{path}: {where} inflates to {info.file_size:,} bytes, above the limit")
            if info.file_size > BOMB_MIN_BYTES and info.file_size > BOMB_RATIO * max(1, info.compress_size):
                raise DomainError(f"{path}: {where} inflates {info.file_size // max(1, info.compress_size):,}-fold "
                                  f"to {info.file_size:,} bytes (a zip bomb?); refused")
            with zf.open(info) as fh:
                need = _npy_bytes(fh, path, where)
                header = fh.tell() if fh.seekable() else 0
            if header and need > info.file_size - header:
                raise DomainError(f"{path}: {where} announces {need:,} bytes but holds {info.file_size - header:,}")


def _read_npy(path: Path, key, text_column, label_column):
    _check_npy(path)
    return np.load(path, allow_pickle=False, mmap_mode="r"), None, None


def _read_npz(path: Path, key, text_column, label_column):
    _check_npz(path)
    with np.load(path, allow_pickle=False) as npz:
        names = list(npz.files)
        extras = {c for c in (text_column, label_column) if c}
        candidates = [n for n in names if n not in extras]
        name = key or (candidates[0] if candidates else None)
        if name is None or name not in names:
            raise DomainError(f"{path}: no array {name!r} (arrays: {', '.join(names) or 'none'})")
        for col in (text_column, label_column):
            if col and col not in names:
                raise DomainError(f"{path}: no array {col!r} (arrays: {', '.join(names)})")
        X = npz[name]
        texts = npz[text_column] if text_column else None
        labels = npz[label_column] if label_column else None
    return X, texts, labels


def _read_safetensors(path: Path, key, text_column, label_column):
    from .stfile import read_header, read_tensors

    parsed = read_header(path)
    header = parsed[0]
    if not header:
        raise DomainError(f"{path}: no tensors in file")
    name = key or next(iter(header))
    if name not in header:
        raise DomainError(f"{path}: no tensor {name!r} (tensors: {', '.join(header)})")
    tensors, _ = read_tensors(path, [name] + [c for c in (label_column,) if c], header=parsed)
    return tensors[name], None, tensors.get(label_column)


def _read_table(path: Path, key, text_column, label_column):
    import pandas as pd

    if path.suffix == ".csv":
        df = pd.read_csv(path)
    else:
        df = pd.read_parquet(path)
    for col in (text_column, label_column):
        if col and col not in df.columns:
            raise DomainError(f"{path}: no column {col!r} (columns: {', '.join(map(str, df.columns))})")
    texts = df[text_column].tolist() if text_column else None
    labels = df[label_column].tolist() if label_column else None
    rest = df.drop(columns=[c for c in (text_column, label_column) if c])
    if key:
        if key not in rest.columns:
            raise DomainError(f"{path}: no column {key!r}")
        rest = rest[[key]]
    numeric = [c for c in rest.columns if pd.api.types.is_numeric_dtype(rest[c]) and not pd.api.types.is_bool_dtype(rest[c])]
    if numeric:
        return rest[numeric].to_numpy(), texts, labels, [str(c) for c in numeric]
    for col in rest.columns:  # a column of equal-length vectors
        first = rest[col].iloc[0] if len(rest) else None
        if isinstance(first, (list, tuple, np.ndarray)):
            lengths = {len(v) if v is not None else -1 for v in rest[col]}
            if len(lengths) != 1:
                raise DomainError(f"{path}: column {col!r} holds vectors of different lengths {sorted(lengths)[:5]} (mismatched dims)")
            return np.stack([np.asarray(v, dtype=np.float64) for v in rest[col]]), texts, labels, None
    if texts is not None:
        return None, texts, labels, None
    raise DomainError(f"{path}: no numeric feature columns (give --text-column to embed a text column)")


def _read_text(path: Path, per_line: bool):
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        raise DomainError(f"{path}: not UTF-8 text (byte {err.start})") from err
    return split_documents(text, per_line=per_line)


def load_embedding(
    path,
    *,
    text_column: str | None = None,
    label_column: str | None = None,
    key: str | None = None,
    embedder: str = "auto",
    embed_dims: int = 384,
    per_line: bool = False,
    seed: int = 0,
) -> EmbeddingSet:
    """Read an embedding file, or embed a text corpus, into an :class:`EmbeddingSet`.

    Parameters
    ----------
    path : .npy, .npz, .safetensors, .parquet, .csv, .txt or .md
    text_column, label_column : table column (or .npz array) kept per item for hover / colour
    key : which array / tensor / column to read (default: the first)
    embedder, embed_dims, seed : used for text corpora ("auto", "tfidf" or "sentence")
    per_line : text corpora: one document per line instead of per paragraph
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise DomainError(f"{path}: unknown format {suffix or '(no suffix)'!r} (expected one of {', '.join(SUFFIXES)})")
    if not path.exists():
        raise DomainError(f"{path}: file not found")
    from ..safefile import check_regular

    check_regular(path, error=DomainError)
    feature_names = None
    used = "precomputed"
    try:
        if suffix in TEXT_SUFFIXES:
            X, texts, labels = None, _read_text(path, per_line), None
            if not texts:
                raise DomainError(f"{path}: no items (the text has no non-empty paragraphs)")
        elif suffix in (".parquet", ".csv"):
            X, texts, labels, feature_names = _read_table(path, key, text_column, label_column)
        else:
            reader = {".npy": _read_npy, ".npz": _read_npz, ".safetensors": _read_safetensors}[suffix]
            X, texts, labels = reader(path, key, text_column, label_column)
    except TauformerError:
        raise
    except (ValueError, OSError, EOFError, KeyError, IndexError, zipfile.BadZipFile, RecursionError, MemoryError) as err:
        raise DomainError(f"{path}: unreadable or truncated {suffix} file ({type(err).__name__}: {err})") from None
    except Exception as err:  # parquet / csv engines raise their own error types
        if type(err).__module__.split(".")[0] not in ("pyarrow", "pandas", "safetensors"):
            raise
        raise DomainError(f"{path}: unreadable {suffix} file ({type(err).__name__}: {err})") from err
    if X is None:
        try:
            X, used = embed_texts([str(t) for t in texts], embedder=embedder, dims=embed_dims, seed=seed)
        except TauformerError as err:
            raise type(err)(f"{path}: {err}") from err
    X = check_matrix(X, path)
    n = X.shape[0]
    texts = _strings(texts, n, "text", path) if texts is not None else None
    labels = _strings(labels, n, "labels", path) if labels is not None else None
    return EmbeddingSet(X, texts, labels, str(path), file_sha256(path), used, feature_names)
