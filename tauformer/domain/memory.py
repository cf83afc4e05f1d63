"""The domain memory: a D x D feature Laplacian plus the record of how it was made.

What the rest of the package relies on: ``laplacian`` (scipy CSR float64, D x D),
``fingerprint``, ``params``, ``source``, ``name`` and ``summary()``. Item data (the reduced
item matrix, texts, labels, cluster of each item) is optional and kept only for the workbench.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from .graph import canonical_csr


def params_json(params: dict) -> str:
    """Canonical JSON of a parameter dict (sorted keys, no spaces): what fingerprints hash."""
    return json.dumps(params, sort_keys=True, separators=(",", ":"), allow_nan=False)


def fingerprint_laplacian(L: sp.spmatrix, params: dict) -> str:
    """sha256 over the canonical CSR arrays (int64 / float64, little-endian) and the params JSON."""
    L = canonical_csr(L)
    h = hashlib.sha256()
    h.update(np.asarray(L.shape, dtype="<i8").tobytes())
    h.update(L.indptr.astype("<i8").tobytes())
    h.update(L.indices.astype("<i8").tobytes())
    h.update(L.data.astype("<f8").tobytes())
    h.update(params_json(params).encode("utf-8"))
    return h.hexdigest()


@dataclass
class DomainMemory:
    """A feature-graph Laplacian with its parameters, provenance and optional item data.

    Attributes
    ----------
    laplacian : scipy.sparse.csr_matrix, float64 [D, D]
    params : builder parameters (JSON-serialisable)
    source : provenance: path, fingerprint, n_items, n_features, embedder, ...
    name : short human name (file stem by default)
    timings : seconds per build phase
    items : reduced item matrix [N, D] or None
    texts, labels : per-item strings or None
    clusters : centroid index of each item [N] or None
    centroids : centroid matrix [K, D] or None
    """

    laplacian: sp.csr_matrix
    params: dict
    source: dict = field(default_factory=dict)
    name: str = "domain"
    timings: dict = field(default_factory=dict)
    items: np.ndarray | None = None
    texts: list[str] | None = None
    labels: list[str] | None = None
    clusters: np.ndarray | None = None
    centroids: np.ndarray | None = None

    def __post_init__(self):
        self.laplacian = canonical_csr(self.laplacian)
        self.fingerprint = fingerprint_laplacian(self.laplacian, self.params)
        self._stats: dict | None = None

    @property
    def dim(self) -> int:
        """D, the number of features (nodes) and the head dim this memory fits."""
        return int(self.laplacian.shape[0])

    @property
    def has_items(self) -> bool:
        return self.items is not None

    def laplacian_tensor(self, dtype=None):
        """The Laplacian as a dense torch tensor [D, D] (float32 unless ``dtype`` says otherwise)."""
        import torch

        return torch.from_numpy(self.laplacian.toarray()).to(dtype or torch.float32)

    def spectral_stats(self) -> dict:
        """Components, spectral gap, eigenvalue range and degree statistics (computed once)."""
        if self._stats is None:
            from .spectrum import spectrum_summary

            start = time.perf_counter()
            self._stats = spectrum_summary(self.laplacian)
            self.timings.setdefault("spectrum", time.perf_counter() - start)
        return self._stats

    def summary(self) -> dict:
        """Plain dict for printing and for the workbench: sizes, graph facts, spectrum, timings."""
        L = self.laplacian
        D = self.dim
        off_nnz = int(L.nnz - np.count_nonzero(L.diagonal()))
        out = {
            "name": self.name,
            "fingerprint": self.fingerprint,
            "dim": D,
            "nnz": int(L.nnz),
            "edges": off_nnz // 2,
            "density": float(L.nnz) / float(D * D) if D else 0.0,
            "normalised": bool(self.params.get("normalised", False)),
            "n_items": self.source.get("n_items"),
            "n_features": self.source.get("n_features"),
            "embedder": self.source.get("embedder"),
            "source_path": self.source.get("path"),
            "has_items": self.has_items,
        }
        out.update(self.spectral_stats())
        out["params"] = dict(self.params)
        out["timings"] = dict(self.timings)
        return out
