"""Reading and writing `.safetensors` files safely: header checked before any tensor is touched.

A safetensors file is an 8-byte little-endian header length, a JSON header (tensor name ->
dtype / shape / byte offsets, plus an optional ``__metadata__`` dict of strings) and the raw
bytes. Checking the header against the file size first lets a truncated or foreign file fail
with a message that says which, instead of a library traceback. Nothing here executes code.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DomainError
from ..fsutil import atomic_write_bytes
from ..safefile import read_safetensors_header


def read_header(path: Path, *, root=None) -> tuple[dict, dict]:
    """Parse and check the header of a safetensors file (see safefile.read_safetensors_header).

    Returns
    -------
    tensors : dict
        name -> {"dtype", "shape", "data_offsets"} for every tensor.
    metadata : dict
        The ``__metadata__`` strings (empty when absent).
    """
    return read_safetensors_header(path, root=root, error=DomainError)


def read_tensors(
    path: Path, names: list[str] | None = None, *, header: tuple[dict, dict] | None = None, root=None
) -> tuple[dict[str, np.ndarray], dict]:
    """Load tensors (all, or ``names``) of a checked safetensors file as numpy arrays.

    ``header`` is what :func:`read_header` returned for this file, when the caller has it already
    (it is then not read again). bfloat16 tensors, which numpy cannot hold, are read through torch
    and returned as float32.
    """
    path = Path(path)
    header, metadata = read_header(path, root=root) if header is None else header
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
