"""The domain pages' data layer on the bundled demo: spectra, feature graph, items, layouts."""

from __future__ import annotations

import time

import numpy as np
import pytest
import scipy.sparse as sp

from tauformer.domain import item_knn_graph
from workbench.data import demo_workspace, item_layout
from workbench.data import domain_views as dv
from workbench.data.layout_compute import (
    cluster_knn,
    compute_layout,
    knn_edges,
    load_layout,
    save_layout,
)


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    return demo_workspace(cache_dir=tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="module")
def name(ws):
    return ws.domains.names()[0]


def test_spectrum_facts_match_the_laplacian(ws, name):
    facts = dv.spectrum(ws, name)
    L = ws.domains.load(name).laplacian.toarray()
    D = L.shape[0]
    values, vectors = facts["eigenvalues"], facts["eigenvectors"]
    assert values.shape == (D,) and vectors.shape == (D, D) and facts["complete"]
    np.testing.assert_allclose(L @ vectors, vectors * values, atol=1e-9)  # eigenpairs
    assert np.all(np.diff(values) >= -1e-12)
    assert facts["zero_eigenvalues"] == facts["components"] == 1
    assert facts["gap"] == pytest.approx(values[1])
    assert facts["edges"] == (np.count_nonzero(L) - D) // 2
    peaks = vectors[np.argmax(np.abs(vectors), axis=0), np.arange(D)]
    assert np.all(peaks > 0)  # stable orientation for display
    assert dv.spectrum(ws, name) is facts  # cached


def test_chain_spectrum_is_the_path_graph_formula(ws):
    facts = dv.chain_spectrum(ws, 16)
    k = np.arange(16)
    np.testing.assert_allclose(facts["eigenvalues"], 2 - 2 * np.cos(np.pi * k / 16), atol=1e-10)
    assert facts["edges"] == 15 and facts["components"] == 1
    label, compared = dv.compared_spectrum(ws, "demo", dv.CHAIN)
    assert label == f"chain (D={ws.domains.load('demo').dim})"
    assert dv.compared_spectrum(ws, "demo", None) is None
    assert dv.compared_spectrum(ws, "demo", "demo") is None


def test_eigenvector_options_and_defaults(ws, name):
    facts = dv.spectrum(ws, name)
    options = dv.eigenvector_options(facts)
    assert len(options) == facts["dim"] and "(Fiedler)" in options[1]["label"]
    assert dv.default_eigenvector(facts, None) == 1
    assert dv.default_eigenvector(facts, "7") == 7
    assert dv.default_eigenvector(facts, 10_000) == 1
    assert dv.default_eigenvector(facts, "x") == 1


@pytest.mark.parametrize("method", dv.FEATURE_LAYOUTS)
def test_feature_graph_layouts_are_seeded_and_match_the_weights(ws, name, method):
    graph = dv.feature_graph(ws, name, method)
    L = ws.domains.load(name).laplacian
    D = L.shape[0]
    assert graph["pos"].shape == (D, 2) and np.isfinite(graph["pos"]).all()
    i, j = graph["edges"].T
    assert np.all(i < j)
    np.testing.assert_allclose(graph["weights"], -L.toarray()[i, j])
    ws.cache.clear()
    again = dv.feature_graph(ws, name, method)
    np.testing.assert_allclose(again["pos"], graph["pos"])  # same seed, same picture


def test_item_data_lambdas_and_colours(ws, name):
    data = dv.item_data(ws, name)
    memory = ws.domains.load(name)
    assert data["n"] == len(memory.items) == len(data["texts"])
    assert data["lambdas"].shape == (data["n"],) and np.isfinite(data["lambdas"]).all()
    values, label, categorical = dv.item_colors(data, "cluster")
    assert categorical and label == "cluster" and len(values) == data["n"]
    values, label, categorical = dv.item_colors(data, "label")  # the demo has no labels
    assert not categorical and label == "item lambda (reference index)"
    assert [o["value"] for o in dv.color_options(data)] == ["lambda", "energy", "cluster"]


def test_item_edges_are_the_exact_knn_graph_and_neighbours_sorted(ws, name):
    edges, dists = dv.item_edges(ws, name)
    expect_edges, expect_dists = item_knn_graph(dv.item_data(ws, name)["X"], dv.ITEM_KNN_K)
    np.testing.assert_array_equal(edges, expect_edges)
    neighbours = dv.item_neighbours(ws, name, 5)
    assert len(neighbours) >= 1 and all(5 in pair for pair in map(tuple, edges[(edges == 5).any(axis=1)]))
    linked = set(edges[edges[:, 0] == 5, 1]) | set(edges[edges[:, 1] == 5, 0])
    assert {i for i, _ in neighbours} <= linked
    d = [x for _, x in neighbours]
    assert d == sorted(d)
    assert dv.item_neighbours(ws, name, -1) == [] and dv.item_neighbours(ws, name, 10**9) == []


def test_cluster_knn_finds_nearly_all_true_neighbours():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(12, 16))
    X = (centres[rng.integers(12, size=3000)] + 0.5 * rng.normal(size=(3000, 16))).astype(np.float32)
    idx, dist = cluster_knn(X, 10, seed=0)
    U = X / np.linalg.norm(X, axis=1, keepdims=True)
    exact = 1 - U @ U.T
    np.fill_diagonal(exact, np.inf)
    truth = np.argsort(exact, axis=1)[:, :10]
    recall = np.mean([len(set(truth[i]) & set(idx[i])) / 10 for i in range(len(X))])
    assert recall > 0.95
    assert np.all(idx != np.arange(len(X))[:, None])  # never itself
    assert np.all(np.diff(dist, axis=1) >= 0)
    np.testing.assert_allclose(dist, exact[np.arange(len(X))[:, None], idx], atol=1e-5)


def test_knn_edges_follow_item_knn_graph_conventions():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 8)).astype(np.float32)
    U = X / np.linalg.norm(X, axis=1, keepdims=True)
    d = 1 - U @ U.T
    np.fill_diagonal(d, np.inf)
    idx = np.argsort(d, axis=1)[:, :6]
    edges, dists = knn_edges(idx, np.take_along_axis(d, idx, axis=1).astype(np.float32), 6)
    expect, expect_d = item_knn_graph(X, 6)
    np.testing.assert_array_equal(edges, expect)
    np.testing.assert_allclose(dists, expect_d, atol=1e-5)


def test_layout_files_round_trip(tmp_path):
    result = {"xy": np.ones((3, 2), np.float32), "edges": np.array([[0, 1]]), "distances": np.array([0.5], np.float32),
              "seconds": {"umap": 1.0}, "params": {"seed": 0}}
    save_layout(result, str(tmp_path / "a.npz"))
    back = load_layout(tmp_path / "a.npz")
    np.testing.assert_array_equal(back["xy"], result["xy"])
    assert back["seconds"] == {"umap": 1.0} and list(tmp_path.iterdir()) == [tmp_path / "a.npz"]


def test_the_layout_worker_runs_apart_and_its_result_survives_a_restart(tmp_path):
    # three items: the worker's whole path (process, files, status) without UMAP's compile time
    X = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=np.float32)
    jobs = item_layout.LayoutJobs(tmp_path)
    first = jobs.request("k3", X)
    assert first.status == "running"
    deadline = time.time() + 60
    while (found := jobs.request("k3", X)).status == "running" and time.time() < deadline:
        time.sleep(0.2)
    assert found.status == "ready", found.message
    assert found.xy.shape == (3, 2) and len(found.edges) == 3
    restarted = item_layout.LayoutJobs(tmp_path)  # a new app process: only the disk cache
    again = restarted.request("k3", X)
    assert again.status == "ready"
    np.testing.assert_array_equal(again.xy, found.xy)


def test_a_failing_worker_becomes_a_message_not_a_hang(tmp_path):
    jobs = item_layout.LayoutJobs(tmp_path)
    jobs.request("bad", np.ones(5, dtype=np.float32))  # a 1-D array: the worker fails
    deadline = time.time() + 60
    while (found := jobs.request("bad", np.ones(5))).status == "running" and time.time() < deadline:
        time.sleep(0.2)
    assert found.status == "failed" and "exited with status" in found.message


def test_pca_stand_in_layout():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(100, 5)) * np.array([10, 3, 1, 1, 1])
    xy = item_layout.pca_layout(X)
    assert xy.shape == (100, 2)
    assert np.var(xy[:, 0]) > np.var(xy[:, 1]) > 0


@pytest.mark.slow
def test_umap_layout_is_reproducible():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 8)).astype(np.float32)
    a, b = compute_layout(X), compute_layout(X)
    np.testing.assert_array_equal(a["xy"], b["xy"])
    assert a["xy"].shape == (300, 2)


def test_sparsity_parts(ws, name):
    s = dv.sparsity(ws, name)
    L = ws.domains.load(name).laplacian
    rebuilt = sp.coo_matrix((s["values"], (s["rows"], s["cols"])), shape=s["shape"]).toarray()
    np.testing.assert_allclose(rebuilt, L.toarray())


def test_the_demo_ships_its_item_layout_so_the_first_visit_needs_no_umap(tmp_path):
    fresh = demo_workspace(cache_dir=tmp_path)
    memory = fresh.domains.load(fresh.domains.names()[0])
    layout = item_layout.request(fresh, memory)
    assert layout.status == "ready" and layout.xy.shape == (len(memory.items), 2)


def test_a_layout_bundled_beside_a_domain_memory_is_adopted(tmp_path):
    from tauformer.domain import build_domain_memory, save_domain_memory
    from workbench.data import Workspace

    X = np.random.default_rng(0).normal(size=(40, 6)).astype(np.float32)
    memory = build_domain_memory(X, dim=6, keep_items=True, eps=1.0, topk=3)
    save_domain_memory(memory, tmp_path / "dom", keep_items=True)
    ws = Workspace(domains=[tmp_path / "dom"], cache_dir=tmp_path / "cache")
    loaded = ws.domains.load(ws.domains.names()[0])
    xy = np.arange(80, dtype=np.float32).reshape(40, 2)
    path = item_layout.bundled_path(tmp_path / "dom", item_layout.layout_key(loaded))
    path.parent.mkdir()
    save_layout({"xy": xy, "edges": np.array([[0, 1]]), "distances": np.array([0.1]), "seconds": {}, "params": {}},
                str(path))
    layout = item_layout.request(ws, loaded)
    assert layout.status == "ready"
    np.testing.assert_array_equal(layout.xy, xy)
