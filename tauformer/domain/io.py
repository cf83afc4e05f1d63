"""Domain-memory files: save, load (validated, never executes code), import the reference parquet.

Layouts
-------
``NAME.safetensors``  one file: tensors ``laplacian.indptr`` / ``.indices`` (int64),
                      ``.data`` (float64), ``.shape`` (int64 [2]); metadata strings ``format``,
                      ``format_version``, ``name``, ``fingerprint`` and JSON ``params``,
                      ``source``, ``timings``. With items: also tensors ``items`` [N, D]
                      (float16 when it fits), ``clusters`` [N], ``centroids`` [K, D] and
                      metadata ``items_json`` (texts / labels).
``DIR/``              ``domain.safetensors`` (the above without items) plus, optionally,
                      ``items.safetensors`` and ``items.json``.
``*.parquet``         the reference implementation's manifold (read-only, via
                      :func:`tauformer.domain.reference.import_reference_manifold`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from ..errors import DomainError
from .memory import DomainMemory, params_json
from ..fsutil import atomic_write_bytes
from ..safefile import check_regular, read_bytes
from .stfile import read_header, read_tensors, write_tensors

FORMAT = "tauformer-domain-memory"
FORMAT_VERSION = "1"
DOMAIN_FILE = "domain.safetensors"
ITEMS_FILE = "items.safetensors"
ITEMS_JSON = "items.json"
CSR_KEYS = ("laplacian.indptr", "laplacian.indices", "laplacian.data", "laplacian.shape")
FLOAT16_MAX = 65000.0
MAX_DIM = 65_536
"""Largest Laplacian (D x D) loaded without ``allow_large``: a head dim is rarely above 1,024, and
past this size an accidental dense step (toarray, eigh) would take minutes and gigabytes."""
INDEX_DTYPES = ("I32", "I64")
VALUE_DTYPES = ("F32", "F64")
ITEM_DTYPES = ("F16", "BF16", "F32", "F64")
CLUSTER_DTYPES = ("I32", "I64")


def _items_tensors(memory: DomainMemory) -> dict[str, np.ndarray]:
    items = np.asarray(memory.items, dtype=np.float32)
    fits16 = items.size == 0 or float(np.abs(items).max()) < FLOAT16_MAX
    out = {"items": items.astype(np.float16) if fits16 else items}
    if memory.clusters is not None:
        out["clusters"] = np.asarray(memory.clusters, dtype=np.int32)
    if memory.centroids is not None:
        out["centroids"] = np.asarray(memory.centroids, dtype=np.float32)
    return out


def _items_json(memory: DomainMemory) -> str:
    return json.dumps({"texts": memory.texts, "labels": memory.labels}, ensure_ascii=False)


def save_domain_memory(memory: DomainMemory, path, *, keep_items: bool | None = None) -> Path:
    """Write ``memory`` to ``path`` (a ``.safetensors`` file, or a directory otherwise), atomically.

    Item data is written when ``keep_items`` is True, or when it is None and the memory has items.
    Returns the path of the Laplacian file.
    """
    path = Path(path)
    with_items = memory.has_items if keep_items is None else bool(keep_items and memory.has_items)
    L = memory.laplacian
    tensors = {
        "laplacian.indptr": L.indptr.astype(np.int64),
        "laplacian.indices": L.indices.astype(np.int64),
        "laplacian.data": L.data.astype(np.float64),
        "laplacian.shape": np.asarray(L.shape, dtype=np.int64),
    }
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "name": memory.name,
        "fingerprint": memory.fingerprint,
        "params": params_json(memory.params),
        "source": json.dumps(memory.source, default=str),
        "timings": json.dumps(memory.timings),
    }
    if path.suffix == ".safetensors":
        if with_items:
            tensors.update(_items_tensors(memory))
            meta["items_json"] = _items_json(memory)
        write_tensors(path, tensors, meta)
        return path
    if path.exists() and not path.is_dir():
        raise DomainError(f"{path}: exists and is not a directory (use a .safetensors name for one file)")
    path.mkdir(parents=True, exist_ok=True)
    write_tensors(path / DOMAIN_FILE, tensors, meta)
    if with_items:
        write_tensors(path / ITEMS_FILE, _items_tensors(memory), {"format": FORMAT + "-items"})
        atomic_write_bytes(path / ITEMS_JSON, _items_json(memory).encode("utf-8"))
    else:
        for stale in (ITEMS_FILE, ITEMS_JSON):
            (path / stale).unlink(missing_ok=True)
    return path / DOMAIN_FILE


def _json_field(meta: dict, key: str, path: Path) -> dict:
    try:
        value = json.loads(meta[key])
    except KeyError:
        raise DomainError(f"{path}: missing metadata {key!r}") from None
    except (json.JSONDecodeError, RecursionError):
        raise DomainError(f"{path}: metadata {key!r} is not valid JSON") from None
    if not isinstance(value, dict):
        raise DomainError(f"{path}: metadata {key!r} must be a JSON object")
    return value


def check_dim(D: int, path, *, allow_large: bool = False) -> None:
    """DomainError for a Laplacian larger than MAX_DIM x MAX_DIM unless ``allow_large``."""
    if D > MAX_DIM and not allow_large:
        raise DomainError(f"{path}: Laplacian is {D:,} x {D:,}, above the {MAX_DIM:,} limit "
                          f"(pass --allow-large / allow_large=True to load it anyway)")


def csr_from_parts(indptr, indices, data, shape, path, *, allow_large: bool = False) -> sp.csr_matrix:
    """Build a CSR matrix from its parts after checking they are consistent, square, finite, symmetric."""
    shape = np.asarray(shape)
    if not np.issubdtype(shape.dtype, np.integer) or shape.size != 2:
        raise DomainError(f"{path}: Laplacian shape must be two integers [D, D], got {shape.tolist()!r}")
    shape = tuple(int(s) for s in shape.ravel())
    if shape[0] != shape[1] or shape[0] < 1:
        raise DomainError(f"{path}: Laplacian shape must be square [D, D], got {shape}")
    D = shape[0]
    check_dim(D, path, allow_large=allow_large)
    indptr, indices, data = (np.asarray(a).ravel() for a in (indptr, indices, data))
    if not (np.issubdtype(indptr.dtype, np.integer) and np.issubdtype(indices.dtype, np.integer)):
        raise DomainError(f"{path}: CSR index arrays must be integers")
    if len(indptr) != D + 1:
        raise DomainError(f"{path}: CSR indptr has length {len(indptr)}, a {D} x {D} matrix needs {D + 1}")
    if indptr[0] != 0 or np.any(np.diff(indptr) < 0):
        raise DomainError(f"{path}: CSR indptr must start at 0 and never decrease (starts at {indptr[0]})")
    if indptr[-1] != len(indices) or len(indices) != len(data):
        raise DomainError(f"{path}: inconsistent CSR arrays (indptr ends at {indptr[-1]}, {len(indices)} indices, {len(data)} values)")
    if len(indices) and (indices.min() < 0 or indices.max() >= D):
        raise DomainError(f"{path}: CSR column index out of range for a {D} x {D} matrix")
    if not np.issubdtype(data.dtype, np.floating) and not np.issubdtype(data.dtype, np.integer):
        raise DomainError(f"{path}: Laplacian values must be numbers, got dtype {data.dtype}")
    if not np.all(np.isfinite(data)):
        raise DomainError(f"{path}: Laplacian has NaN or infinite values")
    L = sp.csr_matrix((data.astype(np.float64), indices.astype(np.int64), indptr.astype(np.int64)), shape=(D, D))
    check_symmetric(L, path)
    return L


def check_symmetric(L: sp.spmatrix, path, rtol: float = 1e-10) -> None:
    """DomainError unless L equals its transpose (relative to its largest entry)."""
    diff = abs(L - L.T)
    worst = float(diff.max()) if diff.nnz else 0.0
    scale = max(1.0, float(abs(L).max()) if L.nnz else 0.0)
    if worst > rtol * scale:
        raise DomainError(f"{path}: Laplacian is not symmetric (max |L - L^T| = {worst:.3g})")


def _check_item_header(header: dict, dim: int, path: Path) -> None:
    """Dtypes and shapes of the item tensors, from the header (before reading their bytes)."""
    checks = {"items": ITEM_DTYPES, "clusters": CLUSTER_DTYPES, "centroids": ITEM_DTYPES}
    for name, dtypes in checks.items():
        if name in header and header[name]["dtype"] not in dtypes:
            raise DomainError(f"{path}: tensor {name!r} has dtype {header[name]['dtype']}, expected one of {dtypes}")
    for name in ("items", "centroids"):
        if name in header and (len(header[name]["shape"]) != 2 or header[name]["shape"][1] != dim):
            raise DomainError(f"{path}: {name} must be [N, {dim}], got shape {header[name]['shape']}")
    if "clusters" in header:
        n_items = header["items"]["shape"][0] if "items" in header else None
        if header["clusters"]["shape"] != [n_items]:
            raise DomainError(f"{path}: clusters must be [{n_items}] (one per item), got shape {header['clusters']['shape']}")


def _load_items(memory: DomainMemory, tensors: dict, items_json: str | None, path: Path) -> None:
    items = np.asarray(tensors["items"], dtype=np.float32)
    if items.ndim != 2 or items.shape[1] != memory.dim:
        raise DomainError(f"{path}: items must be [N, {memory.dim}], got shape {items.shape}")
    if not np.isfinite(items).all():
        raise DomainError(f"{path}: items contain NaN or infinite values")
    memory.items = items
    if "clusters" in tensors:
        clusters = np.asarray(tensors["clusters"], dtype=np.int64)
        if clusters.shape != (len(items),) or (clusters.size and clusters.min() < 0):
            raise DomainError(f"{path}: clusters must be one index >= 0 per item, got shape {clusters.shape}")
        memory.clusters = clusters
    if "centroids" in tensors:
        memory.centroids = np.asarray(tensors["centroids"], dtype=np.float32)
    if items_json:
        try:
            extra = json.loads(items_json)
        except (json.JSONDecodeError, RecursionError):
            raise DomainError(f"{path}: item texts / labels are not valid JSON") from None
        if not isinstance(extra, dict):
            raise DomainError(f"{path}: item texts / labels must be a JSON object")
        for key in ("texts", "labels"):
            values = extra.get(key)
            if values is not None and (not isinstance(values, list) or len(values) != len(items)):
                n = len(values) if isinstance(values, list) else type(values).__name__
                raise DomainError(f"{path}: {n} {key} for {len(items)} items (mismatched lengths)")
            setattr(memory, key, None if values is None else ["" if v is None else str(v) for v in values])


def _check_csr_header(header: dict, path: Path, allow_large: bool) -> None:
    """CSR part dtypes and lengths from the header, and the size cap, before any part is read."""
    missing = [k for k in CSR_KEYS if k not in header]
    if missing:
        raise DomainError(f"{path}: missing tensor(s) {', '.join(missing)}")
    want = {"laplacian.indptr": INDEX_DTYPES, "laplacian.indices": INDEX_DTYPES,
            "laplacian.data": VALUE_DTYPES, "laplacian.shape": INDEX_DTYPES}
    for key, dtypes in want.items():
        if header[key]["dtype"] not in dtypes:
            raise DomainError(f"{path}: {key} has dtype {header[key]['dtype']}, expected one of {dtypes}")
    if header["laplacian.shape"]["shape"] != [2]:
        raise DomainError(f"{path}: laplacian.shape must hold 2 integers, has shape {header['laplacian.shape']['shape']}")
    n_ptr = header["laplacian.indptr"]["shape"]
    if len(n_ptr) != 1 or n_ptr[0] < 2:
        raise DomainError(f"{path}: laplacian.indptr must be 1-D of length D + 1, has shape {n_ptr}")
    check_dim(n_ptr[0] - 1, path, allow_large=allow_large)
    if header["laplacian.indices"]["shape"] != header["laplacian.data"]["shape"]:
        raise DomainError(f"{path}: laplacian.indices and laplacian.data differ in length "
                          f"({header['laplacian.indices']['shape']} vs {header['laplacian.data']['shape']})")


def _load_safetensors(path: Path, items_dir: Path | None, allow_large: bool = False) -> DomainMemory:
    root = items_dir  # in a directory layout, no file may lead outside it
    header, meta = parsed = read_header(path, root=root)
    if meta.get("format") != FORMAT:
        raise DomainError(f"{path}: not a domain-memory file (a safetensors file without format={FORMAT!r})")
    if meta.get("format_version") != FORMAT_VERSION:
        raise DomainError(f"{path}: unsupported domain-memory format version {meta.get('format_version')!r}")
    _check_csr_header(header, path, allow_large)
    names = list(CSR_KEYS) + [k for k in ("items", "clusters", "centroids") if k in header]
    tensors, _ = read_tensors(path, names, header=parsed)
    L = csr_from_parts(*(tensors[k] for k in CSR_KEYS), path, allow_large=allow_large)
    _check_item_header(header, L.shape[0], path)
    memory = DomainMemory(
        laplacian=L,
        params=_json_field(meta, "params", path),
        source=_json_field(meta, "source", path),
        name=meta.get("name") or path.stem,
        timings=_json_field(meta, "timings", path) if "timings" in meta else {},
    )
    stored = meta.get("fingerprint")
    if stored != memory.fingerprint:
        raise DomainError(f"{path}: fingerprint mismatch (file says {stored}, content gives {memory.fingerprint}): corrupted or edited")
    if "items" in tensors:
        _load_items(memory, tensors, meta.get("items_json"), path)
    elif items_dir is not None and (items_dir / ITEMS_FILE).exists():
        items_path = items_dir / ITEMS_FILE
        item_header = read_header(items_path, root=root)
        if "items" not in item_header[0]:
            raise DomainError(f"{items_path}: missing tensor 'items'")
        _check_item_header(item_header[0], memory.dim, items_path)
        item_tensors, _ = read_tensors(items_path, header=item_header)
        json_path = items_dir / ITEMS_JSON
        text = None
        if json_path.exists():
            raw = read_bytes(json_path, root=root, error=DomainError)
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise DomainError(f"{json_path}: not UTF-8 text") from None
        _load_items(memory, item_tensors, text, json_path if text else items_path)
    return memory


def load_domain_memory(path, *, allow_large: bool = False) -> DomainMemory:
    """Load a domain memory from a ``.safetensors`` file, a directory, or a reference ``.parquet``.

    Everything is validated (regular files only, no symlink out of a directory layout, format tag,
    keys, CSR dtypes and consistency, shape, size cap :data:`MAX_DIM` unless ``allow_large``,
    finiteness, symmetry, fingerprint); any problem raises DomainError naming the file.
    """
    path = Path(path)
    if path.is_dir():
        inner = path / DOMAIN_FILE
        if not inner.exists():
            raise DomainError(f"{path}: directory has no {DOMAIN_FILE}")
        return _load_safetensors(inner, path, allow_large)
    if not path.exists():
        raise DomainError(f"{path}: file not found")
    check_regular(path, error=DomainError)
    if path.suffix == ".safetensors":
        return _load_safetensors(path, None, allow_large)
    if path.suffix == ".parquet":
        from .reference import import_reference_manifold  # imports this module: loaded on use

        return import_reference_manifold(path, allow_large=allow_large)
    raise DomainError(f"{path}: unknown domain-memory format {path.suffix!r} (expected .safetensors, a directory or .parquet)")
