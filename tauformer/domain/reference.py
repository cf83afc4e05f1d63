"""Import the reference implementation's (arrowspace's) manifold: parquet COO triplets plus a
JSON sidecar of builder parameters, checked and turned into a DomainMemory.

Parameters keep the reference's values under ``params["reference"]``; the ones that mean the same
here are also mapped to this package's names (:data:`REFERENCE_PARAMS`). The reference's
``normalise`` is not among them: it scales the data before the graph is built, while this
package's ``normalised`` says the Laplacian is I - D^-1/2 W D^-1/2. That flag is read off the
imported matrix itself (:func:`looks_normalised`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.sparse as sp

from ..errors import DomainError
from ..safefile import check_regular, read_json
from .io import check_dim, csr_from_parts
from .memory import DomainMemory

REFERENCE_COLUMNS = ("name_id", "n_rows", "n_cols", "nnz", "row", "col", "value")
REFERENCE_PARAMS = {  # reference builder_config key -> our parameter name
    "lambda_eps": "eps",
    "lambda_k": "k",
    "lambda_topk": "topk",
    "lambda_p": "p",
    "lambda_sigma": "sigma",
    "cluster_max_clusters": "n_clusters",
    "clustering_seed": "seed",
}


ROW_SUM_RTOL = 1e-9


def looks_normalised(L: sp.spmatrix) -> bool:
    """Whether L is a normalised Laplacian I - D^-1/2 W D^-1/2 rather than D_w - W: its rows do
    not all sum to 0 (relative to its largest entry) and every diagonal entry is 1 (0 for an
    isolated node). The reference writes D_w - W, whatever its ``normalise`` flag says."""
    L = sp.csr_matrix(L)
    scale = max(1.0, float(abs(L).max()) if L.nnz else 0.0)
    rows_sum_to_zero = np.abs(np.asarray(L.sum(axis=1)).ravel()).max() <= ROW_SUM_RTOL * scale
    diag = L.diagonal()
    unit_diagonal = np.all((np.abs(diag - 1.0) <= ROW_SUM_RTOL) | (diag == 0.0))
    return bool(not rows_sum_to_zero and unit_diagonal)


def _unwrap(value):
    """Strip the reference's type tags: {"F64": 1.31} -> 1.31, {"OptionUsize": null} -> None."""
    if isinstance(value, dict) and len(value) == 1:
        (tag, inner), = value.items()
        if tag[:1].isupper():
            return inner
    return value


def reference_sidecar(parquet_path) -> Path | None:
    """The reference's JSON sidecar beside a manifold parquet (``NAME.json`` for ``NAME.parquet``),
    or None when there is none."""
    sidecar = Path(parquet_path).with_suffix(".json")
    return sidecar if sidecar.exists() else None


def read_reference_sidecar(json_path) -> dict:
    """The reference JSON sidecar as plain values: builder_config unwrapped, other fields kept."""
    json_path = Path(json_path)
    raw = read_json(json_path, error=DomainError, what="reference sidecar")
    if not isinstance(raw, dict):
        raise DomainError(f"{json_path}: reference sidecar must be a JSON object")
    config = raw.get("builder_config", {})
    if not isinstance(config, dict):
        raise DomainError(f"{json_path}: builder_config must be a JSON object")
    return {**{k: v for k, v in raw.items() if k != "builder_config"}, "builder_config": {k: _unwrap(v) for k, v in config.items()}}


def import_reference_manifold(parquet_path, json_path=None, *, allow_large: bool = False) -> DomainMemory:
    """Read the reference implementation's manifold parquet (COO triplets) as a DomainMemory.

    The parquet has one row per non-zero with columns name_id, n_rows, n_cols, nnz, row, col,
    value; the JSON sidecar (default: the one beside the parquet, see :func:`reference_sidecar`)
    holds the builder parameters as one-key type-tagged objects. The matrix is checked (consistent
    sizes, indices in range, no duplicates, finite, symmetric) and the parameters mapped to this
    package's names (originals kept under params["reference"]); ``normalised`` comes from the
    matrix, not from the reference's ``normalise`` (module docstring).
    """
    import pyarrow.parquet as pq

    from .loaders import file_sha256

    path = Path(parquet_path)
    if not path.exists():
        raise DomainError(f"{path}: file not found")
    check_regular(path, error=DomainError)
    json_path = reference_sidecar(path) if json_path is None else json_path
    try:
        table = pq.read_table(path)
        missing = [c for c in REFERENCE_COLUMNS if c not in table.column_names]
        if missing:
            raise DomainError(f"{path}: not a reference manifold (missing column(s) {', '.join(missing)})")
        cols = {c: table.column(c).to_numpy(zero_copy_only=False) for c in REFERENCE_COLUMNS}
    except DomainError:
        raise
    except Exception as err:  # pyarrow raises ArrowInvalid / OSError for foreign or truncated files
        raise DomainError(f"{path}: unreadable parquet file ({type(err).__name__}: {err})") from None
    for c in ("n_rows", "n_cols", "nnz", "row", "col"):
        if not np.issubdtype(cols[c].dtype, np.integer):
            raise DomainError(f"{path}: column {c!r} must hold integers, has {cols[c].dtype}")
    if not np.issubdtype(cols["value"].dtype, np.number):
        raise DomainError(f"{path}: column 'value' must hold numbers, has {cols['value'].dtype}")
    if len(cols["row"]) == 0:
        raise DomainError(f"{path}: no entries")
    for c in ("n_rows", "n_cols", "nnz"):
        if len(np.unique(cols[c])) != 1:
            raise DomainError(f"{path}: column {c!r} is not constant")
    n_rows, n_cols, nnz = (int(cols[c][0]) for c in ("n_rows", "n_cols", "nnz"))
    if n_rows != n_cols or n_rows < 1:
        raise DomainError(f"{path}: Laplacian must be square, file says {n_rows} x {n_cols}")
    check_dim(n_rows, path, allow_large=allow_large)
    if nnz != len(cols["row"]):
        raise DomainError(f"{path}: nnz column says {nnz} but the file has {len(cols['row'])} rows (truncated?)")
    row, col = cols["row"].astype(np.int64), cols["col"].astype(np.int64)
    value = cols["value"].astype(np.float64)
    if row.min() < 0 or col.min() < 0 or row.max() >= n_rows or col.max() >= n_cols:
        raise DomainError(f"{path}: row / col index out of range for {n_rows} x {n_cols}")
    if len(np.unique(row * n_cols + col)) != len(row):
        raise DomainError(f"{path}: duplicate (row, col) entries")
    coo = sp.coo_matrix((value, (row, col)), shape=(n_rows, n_cols)).tocsr()
    L = csr_from_parts(coo.indptr, coo.indices, coo.data, coo.shape, path, allow_large=allow_large)

    sidecar = read_reference_sidecar(json_path) if json_path else {"builder_config": {}}
    config = sidecar["builder_config"]
    params = {ours: config[theirs] for theirs, ours in REFERENCE_PARAMS.items() if theirs in config}
    params["normalised"] = looks_normalised(L)
    params["dim"] = n_rows
    params["reference"] = config
    source = {
        "path": str(path),
        "fingerprint": file_sha256(path),
        "n_items": config.get("nitems"),
        "n_features": config.get("nfeatures", n_rows),
        "embedder": "reference (arrowspace)",
        "sidecar": str(json_path) if json_path else None,
        "timestamp": sidecar.get("timestamp"),
    }
    name = str(cols["name_id"][0]) if cols["name_id"][0] is not None else path.stem
    return DomainMemory(laplacian=L, params=params, source=source, name=name)
