"""What an upload declares, checked before anything is decompressed or allocated.

A 4 MB ``.npz`` can declare a 4 GB array: numpy allocates the shape its ``.npy`` header
states before it reads a byte, and a zip member inflates to the size its header states.
So the sizes an upload declares -- zip member sizes, ``.npy`` headers, safetensors and
parquet metadata, a CSV's rows and columns -- are read first and compared with the bounds
below; only a file within them is loaded (a text corpus: its paragraphs are counted before
they are embedded). The same bounds are checked again on what was actually loaded.
Nothing here runs code from the file.
"""

from __future__ import annotations

import math
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tauformer.errors import DomainError

MAX_ITEMS = 250_000
MAX_FEATURES = 4096
MAX_ARRAY_MB = 1024.0  # one array, decompressed, as stored
_NPY_HEADER_MAX = 1 << 16


@dataclass
class Declared:
    """The largest array an upload declares: items x features and its bytes (None: unknown)."""

    n_items: int | None
    n_features: int | None
    nbytes: int | None


def _fmt_bytes(n: float) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"


def limits_text() -> str:
    return (f"at most {MAX_ITEMS:,} items, {MAX_FEATURES:,} features and {MAX_ARRAY_MB:g} MB "
            f"per array")


def check_bounds(name: str, declared: Declared, what: str = "declares") -> None:
    """Raise DomainError naming ``name`` when ``declared`` exceeds the bounds."""
    n, f, nbytes = declared.n_items, declared.n_features, declared.nbytes
    shape = " x ".join(t for t in (f"{n:,} items" if n is not None else "", f"{f:,} features" if f is not None
                                   else "") if t) or "an array"
    size = f" ({_fmt_bytes(nbytes)})" if nbytes else ""
    if (n is not None and n > MAX_ITEMS) or (f is not None and f > MAX_FEATURES) \
            or (nbytes is not None and nbytes > MAX_ARRAY_MB * 2**20):
        raise DomainError(f"{name}: {what} {shape}{size}; uploads may have {limits_text()}")


def _npy_header(fh) -> tuple[tuple, np.dtype]:
    """(shape, dtype) from an open .npy stream's header (numpy's own safe parser)."""
    from numpy.lib import format as npformat

    version = npformat.read_magic(fh)
    read = npformat.read_array_header_1_0 if version == (1, 0) else npformat.read_array_header_2_0
    shape, _, dtype = read(fh, max_header_size=_NPY_HEADER_MAX)
    return tuple(int(s) for s in shape), dtype


def _from_shape(shape: tuple, itemsize: int) -> Declared:
    n = shape[0] if len(shape) >= 1 else 1
    f = math.prod(shape[1:]) if len(shape) >= 2 else 1
    return Declared(int(n), int(f), int(math.prod(shape)) * int(itemsize))


def _largest(found: list[Declared]) -> Declared:
    return max(found, key=lambda d: d.nbytes or 0) if found else Declared(None, None, None)


def declared_npy(path: Path) -> Declared:
    with open(path, "rb") as fh:
        shape, dtype = _npy_header(fh)
    return _from_shape(shape, dtype.itemsize)


def declared_npz(path: Path, name: str) -> Declared:
    """Every member's stated inflated size and .npy header, read without inflating the rest."""
    found = []
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            if info.file_size > MAX_ARRAY_MB * 2**20:
                raise DomainError(f"{name}: member {info.filename!r} declares {_fmt_bytes(info.file_size)} "
                                  f"uncompressed; uploads may have {limits_text()}")
            if not info.filename.endswith(".npy"):
                continue
            with zf.open(info) as member:
                shape, dtype = _npy_header(member)
            found.append(_from_shape(shape, dtype.itemsize))
            check_bounds(name, found[-1], f"array {info.filename[:-4]!r} declares")
    return _largest(found)


def declared_safetensors(path: Path) -> Declared:
    from tauformer.domain.stfile import read_header

    header, _ = read_header(path)
    found = [_from_shape(tuple(int(s) for s in info.get("shape", [])), 1) for info in header.values()]
    for d, info in zip(found, header.values()):
        start, end = info["data_offsets"]
        d.nbytes = int(end) - int(start)
    return _largest(found)


def declared_parquet(path: Path) -> Declared:
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(path).metadata
    inflated = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
    return Declared(int(meta.num_rows), int(meta.num_columns), int(inflated))


def declared_csv(path: Path) -> Declared:
    """Rows (newlines, less the header) and the header's columns of a CSV."""
    with open(path, "rb") as fh:
        header = fh.readline()
        rows = sum(block.count(b"\n") for block in iter(lambda: fh.read(1 << 20), b""))
    return Declared(rows, header.count(b",") + 1, None)


def declared_text(path: Path) -> Declared:
    """Paragraphs (blank-line separated blocks) of a text corpus: its items once embedded."""
    import re

    with open(path, "rb") as fh:
        blocks = re.split(rb"\n[ \t\r]*\n", fh.read())
    return Declared(sum(1 for b in blocks if b.strip()), None, None)


READERS = {".npy": declared_npy, ".safetensors": declared_safetensors, ".parquet": declared_parquet,
           ".csv": declared_csv, ".txt": declared_text, ".md": declared_text}


def check_declared(path, suffix: str, name: str) -> Declared:
    """Read what the upload at ``path`` declares and refuse it (DomainError naming ``name``)
    when it exceeds the bounds or its headers cannot be read. A text corpus declares its
    paragraphs (the items it will have)."""
    path = Path(path)
    try:
        if suffix == ".npz":
            declared = declared_npz(path, name)
        elif suffix in READERS:
            declared = READERS[suffix](path)
        else:
            return Declared(None, None, None)
    except DomainError as err:
        raise DomainError(str(err).replace(str(path), name)) from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, SyntaxError) as err:
        raise DomainError(f"{name}: unreadable {suffix} file ({type(err).__name__}: {err})") from None
    except Exception as err:  # pyarrow's own error types
        if type(err).__module__.split(".")[0] != "pyarrow":
            raise
        raise DomainError(f"{name}: unreadable {suffix} file ({type(err).__name__}: {err})") from None
    check_bounds(name, declared)
    return declared


def build_bytes(n_items: int, n_features: int) -> int:
    """Rough peak memory of building a domain memory from an N x F upload: the loaded array
    (up to float64), its float32 copy, the PCA sample and the kept items, plus the libraries."""
    return int(n_items * n_features * (8 + 4 + 8) + n_items * 64 * 4 * 4 + 300 * 2**20)


def check_memory(name: str, needed: int, available: int | None = None) -> None:
    """Refuse (DomainError) work estimated to need more memory than is available now."""
    if available is None:
        import psutil

        available = int(psutil.virtual_memory().available)
    if needed > available:
        raise DomainError(f"{name}: needs about {_fmt_bytes(needed)} of memory and "
                          f"{_fmt_bytes(available)} is available; try a smaller file or free memory")
