"""`compat="arrowspace"` / `domain build --compat arrowspace`: topk + 1 neighbours, no sparsification,
and nothing else different from the default build."""

import math

import numpy as np
import pytest

from tauformer.__main__ import main
from tauformer.domain import build_domain_memory, load_domain_memory
from tauformer.domain.graph import build_feature_graph, neighbours_per_node
from tauformer.errors import ConfigError

GRAPH = dict(eps=2.0, p=1.8, sigma=0.535)


def centroids(K=10, D=40, seed=0):
    return np.random.default_rng(seed).standard_normal((K, D))


def explicit_arrowspace_edges(C, *, topk, eps, p, sigma):
    """Each feature's topk + 1 nearest other features (d = 1 - cos <= eps), union, weights 1/(1+(d/sigma)^p)."""
    K, D = C.shape
    cos = lambda a, b: sum(x * y for x, y in zip(a, b)) / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))
    edges = {}
    for i in range(D):
        ranked = sorted((1.0 - cos(C[:, i], C[:, j]), j) for j in range(D) if j != i)
        for d, j in ranked[: topk + 1]:
            if d <= eps:
                edges[(min(i, j), max(i, j))] = 1.0 / (1.0 + (max(d, 0.0) / sigma) ** p)
    return edges


def as_edges(W):
    coo = W.tocoo()
    return {(int(i), int(j)): float(w) for i, j, w in zip(coo.row, coo.col, coo.data) if i < j}


def test_neighbour_count():
    assert neighbours_per_node(k=25, topk=15) == 15 and neighbours_per_node(k=6, topk=15) == 6
    assert neighbours_per_node(k=6, topk=15, compat="arrowspace") == 16  # k is no cap there
    with pytest.raises(ValueError, match="compat"):
        neighbours_per_node(k=6, topk=3, compat="faiss")


def test_compat_graph_against_explicit_loops():
    C = centroids()
    W, info = build_feature_graph(C, k=25, topk=12, compat="arrowspace", **GRAPH)
    want = explicit_arrowspace_edges(C, topk=12, **GRAPH)
    got = as_edges(W)
    assert got.keys() == want.keys()
    assert max(abs(got[e] - want[e]) for e in want) < 1e-12
    assert info["neighbours_per_node"] == 13 and info["mean_directed_degree"] > 10 and not info["sparsified"]


def test_compat_differs_from_default_only_in_neighbours_and_sparsification():
    C = centroids(seed=1)
    compat, c_info = build_feature_graph(C, k=25, topk=12, compat="arrowspace", **GRAPH)
    default, d_info = build_feature_graph(C, k=25, topk=12, **GRAPH)
    assert d_info["sparsified"] and d_info["neighbours_per_node"] == 12
    assert as_edges(compat) != as_edges(default)
    # the default builder with one more neighbour and sparsification off is the compat graph, exactly
    same, s_info = build_feature_graph(C, k=25, topk=13, sparsify_dense=False, **GRAPH)
    assert not s_info["sparsified"] and (compat != same).nnz == 0
    # each of the two changes matters on its own
    assert (build_feature_graph(C, k=25, topk=12, sparsify_dense=False, **GRAPH)[0] != compat).nnz > 0
    assert (build_feature_graph(C, k=25, topk=13, **GRAPH)[0] != compat).nnz > 0


def embedding(seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((6, 32))
    return (centres[rng.integers(6, size=400)] + 0.4 * rng.standard_normal((400, 32))).astype(np.float32)


def test_compat_build_records_its_settings():
    X = embedding()
    args = dict(dim=32, reduction=None, n_clusters=12, seed=3, **GRAPH)
    compat = build_domain_memory(X, k=25, topk=12, compat="arrowspace", **args)
    same = build_domain_memory(X, k=25, topk=13, sparsify=False, **args)
    default = build_domain_memory(X, k=25, topk=12, **args)
    assert (compat.laplacian != same.laplacian).nnz == 0
    assert compat.laplacian.nnz != default.laplacian.nnz  # the default sparsified (mean degree > 10)
    assert default.source["graph"]["sparsified"] and not compat.source["graph"]["sparsified"]
    assert compat.params == {**default.params, "compat": "arrowspace", "sparsify": False}
    assert "compat" not in default.params  # default builds keep the parameters (and fingerprints) they had
    with pytest.raises(ConfigError, match="compat"):
        build_domain_memory(X, compat="arrowspace-0.25", **args)


def test_cli_compat_flag(tmp_path, capsys):
    np.save(tmp_path / "emb.npy", embedding(1))
    out = tmp_path / "dom.safetensors"
    code = main(["domain", "build", str(tmp_path / "emb.npy"), "--out", str(out), "--reduction", "none",
                 "--n-clusters", "12", "--eps", "2", "--k", "25", "--topk", "12", "--compat", "arrowspace", "--quiet"])
    assert code == 0
    memory = load_domain_memory(out)
    assert memory.params["compat"] == "arrowspace" and memory.params["sparsify"] is False
    assert memory.source["graph"]["neighbours_per_node"] == 13
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        main(["domain", "build", str(tmp_path / "emb.npy"), "--out", str(out), "--compat", "faiss"])
    assert stop.value.code == 2
