"""Importing the reference's manifold: its `normalise` (a scaling of the data) is not this package's
`normalised` Laplacian flag; that one is read off the imported matrix."""

import json

import numpy as np
import pandas as pd
import scipy.sparse as sp

from tauformer.__main__ import main
from tauformer.domain import import_reference_manifold, load_domain_memory
from tauformer.domain.graph import laplacian_from_adjacency
from tauformer.domain.reference import looks_normalised


def adjacency():
    W = np.zeros((5, 5))
    for i, j, w in [(0, 1, 0.3), (1, 2, 0.25), (2, 3, 0.31), (3, 4, 0.28), (0, 4, 0.2)]:
        W[i, j] = W[j, i] = w
    return sp.csr_matrix(W)


def write_manifold(folder, L, normalise):
    coo = sp.coo_matrix(L)
    n = L.shape[0]
    pd.DataFrame({"name_id": "m", "n_rows": n, "n_cols": n, "nnz": coo.nnz, "row": coo.row.astype(np.uint64),
                  "col": coo.col.astype(np.uint64), "value": coo.data}).to_parquet(folder / "m.parquet")
    config = {"lambda_eps": {"F64": 1.31}, "lambda_topk": {"Usize": 15}, "normalise": {"Bool": normalise}}
    (folder / "m.json").write_text(json.dumps({"name_id": "m", "builder_config": config}))
    return folder / "m.parquet"


def test_normalise_true_on_an_unnormalised_laplacian(tmp_path):
    path = write_manifold(tmp_path, laplacian_from_adjacency(adjacency()), normalise=True)
    memory = import_reference_manifold(path)
    assert memory.params["normalised"] is False  # the matrix is D_w - W
    assert memory.params["reference"]["normalise"] is True  # the reference's own flag, kept as it was
    assert memory.summary()["normalised"] is False
    assert load_domain_memory(path).params["normalised"] is False


def test_a_normalised_matrix_is_recognised_whatever_the_flag(tmp_path):
    L = laplacian_from_adjacency(adjacency(), normalised=True)
    memory = import_reference_manifold(write_manifold(tmp_path, L, normalise=False))
    assert memory.params["normalised"] is True and memory.params["reference"]["normalise"] is False


def test_looks_normalised():
    W = adjacency()
    assert not looks_normalised(laplacian_from_adjacency(W))
    assert looks_normalised(laplacian_from_adjacency(W, normalised=True))
    with_isolated = sp.csr_matrix(np.pad(W.toarray(), ((0, 1), (0, 1))))  # node 5 has no edge: a zero row
    assert looks_normalised(laplacian_from_adjacency(with_isolated, normalised=True))
    assert not looks_normalised(sp.csr_matrix(np.diag([2.0, 3.0])))  # neither: rows off 0, diagonal not 1


def test_cli_import_prints_the_structure(tmp_path, capsys):
    hubs = [0, 5]
    W = sp.lil_matrix((10, 10))
    for v in range(10):
        if v not in hubs:
            for h in hubs:
                W[v, h] = W[h, v] = 0.3
    path = write_manifold(tmp_path, laplacian_from_adjacency(W.tocsr()), normalise=True)
    assert main(["domain", "import", str(path), "--out", str(tmp_path / "m.safetensors")]) == 0
    printed = capsys.readouterr().out
    assert "structure    2 hubs (degree 8..8, 4x the rest); every edge touches a hub; every other node has degree 2" in printed
    assert load_domain_memory(tmp_path / "m.safetensors").params["normalised"] is False
