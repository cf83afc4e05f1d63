"""Opening files that someone else may have written: regular files only, no escapes, no code.

Every reader of checkpoints, domain files and run directories goes through here, so that a
FIFO named ``config.json`` cannot hang a reader, a symlink cannot pull in a file from outside the
directory that was handed over, deeply nested JSON cannot blow the stack, and a safetensors
header is checked in full (dtypes, shapes, offsets against the file size) before a library sees
it. Each problem raises the caller's error type with one line naming the file.
"""

from __future__ import annotations

import json
import os
import stat
import struct
from pathlib import Path

from .errors import TauformerError

MAX_JSON_BYTES = 256 * 1024 * 1024  # a history.json of a very long run is a few MB
MAX_SAFETENSORS_HEADER = 100 * 1024 * 1024
SAFETENSORS_ITEMSIZE = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1,
    "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
    "I32": 4, "U32": 4, "F32": 4,
    "I64": 8, "U64": 8, "F64": 8,
}


def check_regular(path, *, root=None, error=TauformerError) -> Path:
    """Refuse anything but a regular file (a FIFO, device, socket or directory), and a path that
    resolves outside ``root`` (when given) through a symlink. Returns the path unchanged."""
    path = Path(path)
    try:
        info = path.stat()
    except FileNotFoundError:
        raise error(f"{path}: missing") from None
    except OSError as err:
        raise error(f"{path}: cannot read ({err.strerror or err})") from None
    if not stat.S_ISREG(info.st_mode):
        raise error(f"{path}: not a regular file ({_kind(info.st_mode)})")
    if root is not None:  # the file itself or a directory on the way may be a symlink
        target, base = path.resolve(), Path(root).resolve()
        if base != target and base not in target.parents:
            raise error(f"{path}: a symlink leads outside {root} (to {target}); refused")
    return path


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device")):
        if test(mode):
            return name
    return "a special file"


def open_regular(path, *, root=None, error=TauformerError):
    """A binary file object of a checked regular file, opened without blocking on a FIFO
    swapped in after the check (O_NONBLOCK, then fstat again)."""
    path = check_regular(path, root=root, error=error)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as err:
        raise error(f"{path}: cannot open ({err.strerror or err})") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise error(f"{path}: not a regular file")
    return os.fdopen(fd, "rb")


def read_bytes(path, *, root=None, error=TauformerError, max_bytes: int = MAX_JSON_BYTES) -> bytes:
    """The bytes of a checked regular file of at most ``max_bytes``."""
    with open_regular(path, root=root, error=error) as fh:
        data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise error(f"{path}: larger than {max_bytes:,} bytes; refused")
    return data


def read_json(path, *, root=None, error=TauformerError, what: str = "JSON"):
    """Parsed JSON of a checked regular file; invalid, non-UTF-8 or absurdly nested JSON raises
    ``error`` naming the file."""
    data = read_bytes(path, root=root, error=error)
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as err:
        raise error(f"{path}: not UTF-8 text ({what}; bad byte at {err.start})") from None
    except json.JSONDecodeError as err:
        raise error(f"{path}: not valid JSON ({what}: {err})") from None
    except RecursionError:
        raise error(f"{path}: not valid JSON ({what} nested too deeply)") from None


def read_safetensors_header(path, *, root=None, error=TauformerError) -> tuple[dict, dict]:
    """Parse and check the header of a safetensors file, without reading any tensor bytes.

    Checked: the length word against the file size; JSON object of entries with a known dtype,
    a shape of non-negative integers and ``data_offsets`` whose span is exactly
    prod(shape) * itemsize; offsets inside the file and not overlapping; string metadata.

    Returns
    -------
    tensors : name -> {"dtype", "shape", "data_offsets"}
    metadata : the ``__metadata__`` strings (empty when absent)
    """
    path = Path(path)
    with open_regular(path, root=root, error=error) as fh:
        size = os.fstat(fh.fileno()).st_size
        head = fh.read(8)
        if len(head) < 8:
            raise error(f"{path}: truncated safetensors file ({size} bytes, no header)")
        (n,) = struct.unpack("<Q", head)
        if n > min(size - 8, MAX_SAFETENSORS_HEADER):
            raise error(f"{path}: not a safetensors file or truncated (header claims {n} bytes, file has {size})")
        raw = fh.read(n)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise error(f"{path}: not a safetensors file (header is not JSON)") from None
    if not isinstance(header, dict):
        raise error(f"{path}: not a safetensors file (header is not an object)")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        raise error(f"{path}: safetensors metadata must map strings to strings")
    data_size = size - 8 - n
    spans = []
    for name, info in header.items():
        start, end = _check_entry(name, info, data_size, path, error)
        spans.append((start, end, name))
    spans.sort()
    for (_, end_a, a), (start_b, _, b) in zip(spans, spans[1:]):
        if start_b < end_a:
            raise error(f"{path}: tensors {a!r} and {b!r} overlap in the file")
    return header, dict(metadata)


def _check_entry(name, info, data_size: int, path: Path, error) -> tuple[int, int]:
    if not isinstance(info, dict):
        raise error(f"{path}: malformed safetensors header entry {name!r}")
    dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
    if dtype not in SAFETENSORS_ITEMSIZE:
        raise error(f"{path}: tensor {name!r} has unknown dtype {dtype!r}")
    if not isinstance(shape, list) or not all(_is_int(s) and s >= 0 for s in shape):
        raise error(f"{path}: tensor {name!r} has a malformed shape {shape!r}")
    if not isinstance(offsets, list) or len(offsets) != 2 or not all(_is_int(o) for o in offsets):
        raise error(f"{path}: malformed safetensors header entry {name!r} (data_offsets {offsets!r})")
    start, end = offsets
    if start < 0 or start > end:
        raise error(f"{path}: tensor {name!r} has invalid byte offsets {offsets}")
    if end > data_size:
        raise error(f"{path}: truncated file: tensor {name!r} needs bytes up to {end}, only {data_size} present")
    count = 1
    for s in shape:
        count *= s
    if count * SAFETENSORS_ITEMSIZE[dtype] != end - start:
        raise error(f"{path}: tensor {name!r} claims shape {shape} of {dtype} ({count * SAFETENSORS_ITEMSIZE[dtype]:,} bytes) "
                    f"but spans {end - start:,} bytes")
    return start, end


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
