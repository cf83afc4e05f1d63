"""Reading and writing `.safetensors` files safely: header checked before any tensor is touched.

A safetensors file is an 8-byte little-endian header length, a JSON header (tensor name ->
dtype / shape / byte offsets, plus an optional ``__metadata__`` dict of strings) and the raw
bytes. Checking the header against the file size first lets a truncated or foreign file fail
with a message that says which, instead of a library traceback. Nothing here executes code.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np

from ..errors import DomainError
from ..fsutil import atomic_write_bytes

_MAX_HEADER = 100 * 1024 * 1024


def read_header(path: Path) -> tuple[dict, dict]:
    """Parse and check the header of a safetensors file.

    Returns
    -------
    tensors : dict
        name -> {"dtype", "shape", "data_offsets"} for every tensor.
    metadata : dict
        The ``__metadata__`` strings (empty when absent).
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            head = fh.read(8)
            if len(head) < 8:
                raise DomainError(f"{path}: truncated safetensors file ({size} bytes, no header)")
            (n,) = struct.unpack("<Q", head)
            if n > min(size - 8, _MAX_HEADER):
                raise DomainError(
                    f"{path}: not a safetensors file or truncated (header claims {n} bytes, file has {size})"
                )
            raw = fh.read(n)
    except OSError as err:
        raise DomainError(f"{path}: cannot read ({err.strerror or err})") from err
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DomainError(f"{path}: not a safetensors file (header is not JSON)") from err
    if not isinstance(header, dict):
        raise DomainError(f"{path}: not a safetensors file (header is not an object)")
    metadata = header.pop("__metadata__", None) or {}
    data_size = size - 8 - n
    for name, info in header.items():
        try:
            start, end = info["data_offsets"]
        except (TypeError, KeyError, ValueError) as err:
            raise DomainError(f"{path}: malformed safetensors header entry {name!r}") from err
        if end > data_size or start > end:
            raise DomainError(
                f"{path}: truncated file: tensor {name!r} needs bytes up to {end}, only {data_size} present"
            )
    return header, dict(metadata)


def read_tensors(
    path: Path, names: list[str] | None = None, *, header: tuple[dict, dict] | None = None
) -> tuple[dict[str, np.ndarray], dict]:
    """Load tensors (all, or ``names``) of a checked safetensors file as numpy arrays.

    ``header`` is what :func:`read_header` returned for this file, when the caller has it already
    (it is then not read again). bfloat16 tensors, which numpy cannot hold, are read through torch
    and returned as float32.
    """
    path = Path(path)
    header, metadata = read_header(path) if header is None else header
    wanted = list(header) if names is None else names
    missing = [n for n in wanted if n not in header]
    if missing:
        raise DomainError(f"{path}: missing tensor(s) {', '.join(missing)}")
    from safetensors import safe_open

    try:
        if any(header[n]["dtype"] == "BF16" for n in wanted):
            import torch

            with safe_open(str(path), framework="pt") as fh:
                out = {n: fh.get_tensor(n).to(torch.float32).numpy() for n in wanted}
        else:
            with safe_open(str(path), framework="numpy") as fh:
                out = {n: fh.get_tensor(n) for n in wanted}
    except Exception as err:  # the library's own errors carry no file name
        raise DomainError(f"{path}: unreadable safetensors file ({err})") from err
    return out, metadata


def write_tensors(path: Path, tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> None:
    """Save numpy arrays and string metadata as one safetensors file, atomically."""
    from safetensors.numpy import save

    arrays = {k: np.ascontiguousarray(v) for k, v in tensors.items()}
    atomic_write_bytes(Path(path), save(arrays, metadata=metadata))
