"""Domain structure at a glance: hub data layer, shell layout, feature graph sizes / hubs, degree card."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from tauformer.domain import DomainMemory, save_domain_memory
from tauformer.domain.graph import laplacian_from_adjacency
from workbench import theme
from workbench.data import Workspace, demo_workspace
from workbench.data import domain_structure as dstruct
from workbench.data import domain_views as dv
from workbench.data.cache import content_key
from workbench.figures import FigureInputError, fig_degree_distribution, fig_feature_graph
from workbench.views import domain as page
from workbench.views import domain_parts as dp

N, N_HUBS, SPOKE_DEGREE = 96, 8, 3
HUBS = list(range(0, N, N // N_HUBS))  # 0, 12, 24, ...


def hub_and_spoke_laplacian(extra_edges=()):
    """Like the CVE manifold, small: every non-hub joins SPOKE_DEGREE hubs; hubs form a ring."""
    rng = np.random.default_rng(3)
    spokes = [v for v in range(N) if v not in HUBS]
    edges = [(v, HUBS[(r + 3 * t) % N_HUBS]) for r, v in enumerate(spokes) for t in range(SPOKE_DEGREE)]
    edges += [(HUBS[a], HUBS[(a + 1) % N_HUBS]) for a in range(N_HUBS)] + list(extra_edges)
    W = sp.lil_matrix((N, N))
    for i, j in edges:
        W[i, j] = W[j, i] = rng.uniform(0.2, 0.4)
    return laplacian_from_adjacency(W.tocsr()), len(edges)


@pytest.fixture(scope="module")
def hubs_ws(tmp_path_factory):
    root = tmp_path_factory.mktemp("hubs")
    L, _ = hub_and_spoke_laplacian()
    save_domain_memory(DomainMemory(laplacian=L, params={"kind": "hub-and-spoke"}), root / "hubs.safetensors")
    L2, _ = hub_and_spoke_laplacian([(1, 2)])
    save_domain_memory(DomainMemory(laplacian=L2, params={"kind": "broken"}), root / "broken.safetensors")
    return Workspace(domains=[root / "hubs.safetensors", root / "broken.safetensors"], cache_dir=root / "cache")


def test_structure_finds_the_hubs_and_is_cached_by_fingerprint(hubs_ws):
    s = dstruct.structure(hubs_ws, "hubs")
    assert s["hubs"].tolist() == HUBS and s["n_hubs"] == N_HUBS
    assert s["hub_bipartite"] and s["spoke_spoke_edges"] == 0 and s["spoke_degree"] == SPOKE_DEGREE
    assert s["degree"].shape == (N,) and s["degree"][1] == SPOKE_DEGREE
    assert s["other_max_degree"] == SPOKE_DEGREE and s["hub_min_degree"] == s["degree"][HUBS].min()
    assert s["describe"].startswith(f"{N_HUBS} hubs") and "every edge touches a hub" in s["describe"]
    memory = hubs_ws.domains.load("hubs")
    assert content_key("domain-structure", memory.fingerprint) in hubs_ws.cache
    assert dstruct.structure(hubs_ws, "hubs") is s  # second look comes from the cache


def test_one_spoke_edge_breaks_the_hub_and_spoke_summary(hubs_ws):
    s = dstruct.structure(hubs_ws, "broken")
    assert s["hubs"].tolist() == HUBS and not s["hub_bipartite"] and s["spoke_spoke_edges"] == 1
    line = dp.structure_line(s)
    assert "of edges touch a hub" in line and "other\u2013other 1" in line and "components of" not in line
    split = dp.structure_line(dict(s, components=3, component_sizes=[90, 5, 1], isolated=1))
    assert split.endswith("; components of 90, 5, 1 features (1 isolated)")
    good = dp.structure_line(dstruct.structure(hubs_ws, "hubs"))
    assert "every edge touches a hub" in good and f"every other node has degree {SPOKE_DEGREE}" in good
    assert "other\u2013other 0" in good


def test_summary_line_carries_the_structure(hubs_ws):
    parts = dp.summary_line(hubs_ws, "hubs")
    text = " ".join(str(getattr(p, "children", p)) for p in parts)
    assert f"Structure: {N_HUBS} hubs" in text


def test_auto_layout_puts_hubs_on_the_outer_ring_and_spokes_inside(hubs_ws):
    graph = dv.feature_graph(hubs_ws, "hubs", "auto")
    assert graph["method"] == "shell"
    radius = np.linalg.norm(graph["pos"], axis=1)
    np.testing.assert_allclose(radius[HUBS], 1.0)
    others = np.delete(radius, HUBS)
    assert others.max() <= dstruct.SHELL_INNER_RADIUS + 0.05  # spokes fill a disc well inside the ring
    angles = np.arctan2(graph["pos"][HUBS, 0], graph["pos"][HUBS, 1]) % (2 * np.pi)
    np.testing.assert_allclose(np.diff(angles), 2 * np.pi / N_HUBS)  # evenly apart, in index order
    assert dv.feature_graph(hubs_ws, "hubs", "bogus")["method"] == "shell"


def test_shell_layout_without_hubs_is_a_circle_and_a_demo_stays_spring(tmp_path):
    pos = dstruct.shell_layout(6, np.array([[0, 1], [1, 2]]), np.array([1.0, 1.0]), np.array([], dtype=int))
    np.testing.assert_allclose(np.linalg.norm(pos, axis=1), 1.0)
    ws = demo_workspace(cache_dir=tmp_path)
    assert dv.feature_graph(ws, "demo", "auto")["method"] == "spring"  # the demo graph has no hubs


def test_feature_graph_sizes_follow_degree_and_rings_the_hubs(hubs_ws):
    fig = dp.feature_graph_figure(hubs_ws, "hubs", 1)
    nodes = next(t for t in fig.data if t.name == "features")
    hub_trace = next(t for t in fig.data if (t.name or "").startswith("hubs"))
    degree = dstruct.structure(hubs_ws, "hubs")["degree"]
    sizes = np.asarray(nodes.marker.size)
    order = np.argsort(degree, kind="stable")
    assert np.all(np.diff(sizes[order]) >= 0) and sizes[HUBS].min() > sizes[1]  # bigger with degree
    assert hub_trace.name == f"hubs ({N_HUBS})" and list(hub_trace.customdata) == HUBS
    assert list(hub_trace.text) == [str(h) for h in HUBS] and hub_trace.marker.color == theme.HIGHLIGHT
    assert fig.layout.meta["hubs"] == N_HUBS
    edge_traces = [t for t in fig.data if t.mode == "lines"]
    assert edge_traces and all(t.name.startswith("hub edges") for t in edge_traces)  # every edge touches a hub


def test_feature_graph_tells_hub_edges_from_the_others():
    pos = np.random.default_rng(0).normal(size=(5, 2))
    edges, weights = np.array([[0, 1], [0, 2], [3, 4]]), np.array([0.3, 0.5, 0.4])
    fig = fig_feature_graph(pos, edges, weights, degree=[2, 1, 1, 1, 1], hubs=[0], n_width_bins=1)
    lines = {t.name: t for t in fig.data if t.mode == "lines"}
    hub_name = next(n for n in lines if n.startswith("hub edges"))
    other_name = next(n for n in lines if not n.startswith("hub edges"))
    assert hub_name.endswith("(2)") and other_name.endswith("(1)")
    assert lines[hub_name].line.color != lines[other_name].line.color
    plain = fig_feature_graph(pos, edges, weights)
    assert plain.layout.meta["hubs"] == 0 and not any((t.name or "").startswith("hub") for t in plain.data)
    with pytest.raises(FigureInputError, match="hubs must be node indices"):
        fig_feature_graph(pos, edges, weights, hubs=[7])
    with pytest.raises(FigureInputError, match="degree"):
        fig_feature_graph(pos, edges, weights, degree=[1, 2])


def test_degree_distribution_counts_and_marks_the_hubs():
    degree = np.array([3] * 40 + [4] * 2 + [30, 31])
    fig = fig_degree_distribution(degree, hubs=[42, 43])
    bars = {t.name: t for t in fig.data if t.type == "bar"}
    assert set(bars) == {"other features (42)", "hubs (2)"}
    assert list(bars["other features (42)"].x) == [3, 4] and list(bars["other features (42)"].y) == [40, 2]
    assert list(bars["hubs (2)"].x) == [30, 31] and bars["hubs (2)"].marker.color == theme.HIGHLIGHT
    assert fig.layout.meta["hubs"] == 2 and fig.layout.meta["split"] == 17.0
    assert fig.layout.yaxis.type == "log"  # 40 against 1
    assert fig.layout.height > 0
    none = fig_degree_distribution([2, 2, 3, 3])
    assert none.layout.meta["hubs"] == 0 and "split" not in none.layout.meta
    assert none.layout.yaxis.type == "linear" and any("no hubs" in a.text for a in none.layout.annotations)
    with pytest.raises(FigureInputError, match="hubs must be feature indices"):
        fig_degree_distribution([1, 2], hubs=[2])


def test_degree_card_on_the_page_and_in_the_export(hubs_ws):
    fig = dp.degree_figure(hubs_ws, "hubs")
    assert fig.layout.meta["hubs"] == N_HUBS
    hub_bar = next(t for t in fig.data if t.type == "bar" and t.name.startswith("hubs"))
    assert sum(hub_bar.y) == N_HUBS
    assert page.DEGREES.cards == ("domain-degrees",)
    assert "domain: degree distribution" in page.bench_cases(hubs_ws)


def test_hub_rings_use_the_trace_class_of_a_big_graph():
    """WebGL traces cover SVG ones: on a graph drawn in WebGL the rings must be WebGL too."""
    n = 2001  # a star: 2,000 edges, drawn in WebGL
    edges = np.stack([np.zeros(n - 1, dtype=int), np.arange(1, n)], axis=1)
    pos = np.random.default_rng(1).normal(size=(n, 2))
    degree = np.r_[n - 1, np.ones(n - 1, dtype=int)]
    fig = fig_feature_graph(pos, edges, np.ones(n - 1), degree=degree, hubs=[0])
    types = {t.name: t.type for t in fig.data}
    assert types["features"] == "scattergl" and types["hubs (1)"] == "scattergl"


def test_shell_layout_keeps_the_spokes_of_one_hub_apart():
    edges = np.array([[0, i] for i in range(1, 8)] + [[8, 9], [9, 10]])  # a star and a separate chain
    pos = dstruct.shell_layout(11, edges, np.ones(len(edges)), np.array([0]))
    np.testing.assert_allclose(pos[0], [0.0, 1.0])  # the hub at the top of the ring
    inner = pos[1:]
    gaps = np.linalg.norm(inner[:, None] - inner[None], axis=-1)[np.triu_indices(10, 1)]
    assert gaps.min() > 1e-3  # no two features on one spot, though the star's spokes share a neighbour
    assert np.linalg.norm(inner, axis=1).max() == pytest.approx(dstruct.SHELL_INNER_RADIUS)
