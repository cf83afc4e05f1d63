"""The Domain graph and Spectrum pages' callbacks, called as plain functions on the demo."""

from __future__ import annotations

import numpy as np
import pytest
from dash.exceptions import PreventUpdate

from tauformer.domain import build_domain_memory, save_domain_memory
from workbench import theme
from workbench.data import Workspace, demo_workspace, item_layout
from workbench.data import domain_views as dv
from workbench.data.layout_compute import save_layout
from workbench.views import PAGE_MODULES, cards, domain_parts, spectrum
from workbench.views import domain as page


def seed_layout(workspace, memory, xy=None):
    """Put a finished item layout in the disk cache, so no worker (and no UMAP) is needed."""
    from tauformer.domain import item_knn_graph

    xy = item_layout.pca_layout(memory.items) if xy is None else xy
    edges, dists = item_knn_graph(np.asarray(memory.items, dtype=np.float32), 10)
    path = item_layout.jobs_for(workspace).path(item_layout.layout_key(memory))
    save_layout({"xy": np.asarray(xy, np.float32), "edges": edges, "distances": dists,
                 "seconds": {"umap": 0.0}, "params": {}}, str(path))
    return xy


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    workspace = demo_workspace(cache_dir=tmp_path_factory.mktemp("cache"))
    seed_layout(workspace, workspace.domains.load("demo"))
    return workspace


def texts_of(component) -> str:
    """All text inside a Dash component tree."""
    if component is None:
        return ""
    if isinstance(component, (str, int, float)):
        return str(component)
    if isinstance(component, (list, tuple)):
        return " ".join(texts_of(c) for c in component)
    return texts_of(getattr(component, "children", None))


def walk(tree, visit) -> None:
    """Call ``visit`` on every Dash component of a layout tree, depth first."""
    if isinstance(tree, (list, tuple)):
        for x in tree:
            walk(x, visit)
    elif hasattr(tree, "children") or hasattr(tree, "id"):
        visit(tree)
        walk(getattr(tree, "children", None), visit)


def assert_knn_edge_invariants(edges, n, k):
    """What holds for any unique undirected kNN edge list, whatever the ties: each pair once with
    i < j, every item joined to at least k others, and between n*k/2 and n*k edges in all
    (the exact count depends on how ties between equal distances break)."""
    edges = np.asarray(edges)
    assert edges.ndim == 2 and edges.shape[1] == 2
    assert (edges[:, 0] < edges[:, 1]).all() and edges.min() >= 0 and edges.max() < n
    assert len(np.unique(edges[:, 0] * n + edges[:, 1])) == len(edges)
    degree = np.bincount(edges.ravel(), minlength=n)
    assert degree.min() >= k
    assert n * k / 2 <= len(edges) <= n * k


def ready_status(ws, domain="demo"):
    status, disabled = page.layout_status(ws, domain)
    assert status.startswith("ready:") and disabled is True
    return status


def test_pages_are_registered_with_their_paths():
    assert "workbench.views.domain" in PAGE_MODULES and "workbench.views.spectrum" in PAGE_MODULES
    assert page.PAGE["path"] == "/domain" and spectrum.PAGE["path"] == "/spectrum"


def test_callbacks_wait_for_the_domain_picker(ws):
    for call in (lambda: page.color_choice(ws, None, "lambda"), lambda: page.layout_status(ws, None),
                 lambda: domain_parts.feature_graph_figure(ws, None, 1),
                 lambda: spectrum.spectrum_figures(ws, None, "chain", []),
                 lambda: page.item_map(ws, None, "lambda"), lambda: page.selection(ws, 3, None)):
        with pytest.raises(PreventUpdate):
            call()


def test_layouts_restore_their_state_from_the_url(ws):
    tree = page.layout(ws, eig="3", color="cluster", item="17", flayout="kamada-kawai")
    found = {}

    def keep(c):
        if isinstance(getattr(c, "id", None), str):
            found[c.id] = c

    walk(tree, keep)
    assert found["domain-eig"].value == 3 and found["domain-color"].value == "cluster"
    assert found["domain-selected"].data == 17 and found["domain-feature-layout"].value == "kamada-kawai"
    # a Dash dropdown drops a value missing from its options: the first render must offer it
    assert 3 in [o["value"] for o in found["domain-eig"].options]
    assert "cluster" in [o["value"] for o in found["domain-color"].options]
    found.clear()
    walk(spectrum.layout(ws, eig="5", vs="none", log="log"), keep)
    assert found["spectrum-eig"].value == 5 and found["spectrum-vs"].value == "none"
    assert found["spectrum-log"].value == ["log"]
    assert 5 in [o["value"] for o in found["spectrum-eig"].options]
    assert "none" in [o["value"] for o in found["spectrum-vs"].options]
    found.clear()
    walk(page.layout(ws, eig="x", flayout="bogus"), keep)  # malformed values fall back
    assert found["domain-eig"].value == 1 and found["domain-feature-layout"].value == "auto"
    assert found["domain-edges"].value == ["edges"]
    found.clear()
    walk(page.layout(ws, edges=""), keep)  # the URL of a map with its edges switched off
    assert found["domain-edges"].value == []


def test_item_map_draws_every_item_with_its_text_and_three_selection_slots(ws):
    fig, meta, note = page.item_map(ws, ready_status(ws), "lambda")
    data = dv.item_data(ws, "demo")
    items = [t for t in fig.data if t.name == "items"][0]
    assert len(items.x) == data["n"] and list(items.customdata[:3]) == [0, 1, 2]
    np.testing.assert_allclose(items.marker.color, data["lambdas"])
    assert items.hovertext[0].startswith(data["texts"][0][:20])
    assert meta == {**meta, "domain": "demo", "kind": "umap", "n": data["n"]}
    edges, _ = dv.item_edges(ws, "demo")
    assert [t.name for t in fig.data] == [f"kNN edges ({len(edges):,})", "items"]
    assert not fig.layout.shapes
    assert_knn_edge_invariants(edges, data["n"], dv.ITEM_KNN_K)
    assert "UMAP layout of 1,976 items" in note
    fig2, _, _ = page.item_map(ws, ready_status(ws), "cluster")
    assert len(fig2.data) == 1 + len(np.unique(data["clusters"]))  # edges + one trace per cluster
    bare, _, _ = page.item_map(ws, ready_status(ws), "lambda", [])
    assert [t.name for t in bare.data] == ["items"]


def test_the_batch_export_builds_the_item_map_the_screen_shows(ws):
    screen, _, _ = page.item_map(ws, ready_status(ws), "cluster")
    exported, values = cards.build_for_state(ws, "domain", {"domain": "demo", "color": "cluster"})["domain-item-map"]
    assert values["color"] == "cluster" and exported.to_json() == screen.to_json()
    assert [t.line.color for t in exported.data if t.mode == "lines"] == [page.EDGE_COLOR]  # the lighter edges


def test_many_categories_drop_the_legend_for_a_note(ws, monkeypatch):
    monkeypatch.setattr(page, "MAX_LEGEND_CATEGORIES", 5)
    ws.cache.clear()
    fig, _, _ = page.item_map(ws, ready_status(ws), "cluster")
    assert not any(t.showlegend for t in fig.data if t.legendgroup)
    assert any("15 clusters" in a.text for a in fig.layout.annotations)
    ws.cache.clear()


def test_while_umap_runs_the_map_shows_principal_components(ws, monkeypatch):
    monkeypatch.setattr(item_layout, "request",
                        lambda workspace, memory: item_layout.Layout("running", "k", elapsed=12.0))
    fig, meta, note = page.item_map(ws, "running:demo:k", "lambda")
    assert meta["kind"] == "pca" and "12 s so far" in note
    assert fig.layout.xaxis.title.text == "PC 1"


def test_clicking_an_item_patches_in_it_and_its_neighbours(ws):
    fig, meta, _ = page.item_map(ws, ready_status(ws), "lambda")
    item = page.choose_item({"points": [{"customdata": 42, "x": 0, "y": 0}]}, [], "demo", None, meta, "map")
    assert item == 42
    shapes, panel = page.selection(ws, item, meta)
    neighbours = dv.item_neighbours(ws, "demo", 42)
    xy = item_layout.request(ws, ws.domains.load("demo")).xy
    lines = [sh for sh in shapes if sh["type"] == "line"]
    dots = [sh for sh in shapes if sh["type"] == "circle"]
    assert len(lines) == len(neighbours) and len(dots) == len(neighbours) + 1
    np.testing.assert_allclose([dots[-1]["xanchor"], dots[-1]["yanchor"]], xy[42], rtol=1e-6)  # the item
    np.testing.assert_allclose([[d["xanchor"], d["yanchor"]] for d in dots[:-1]],
                               xy[[i for i, _ in neighbours]], rtol=1e-6)
    assert all(sh["name"] == theme.UI_ONLY for sh in shapes)  # screen-only, like other selections
    text = texts_of(panel)
    assert dv.item_data(ws, "demo")["texts"][neighbours[0][0]][:30].split()[0] in text
    assert f"{len(neighbours)} nearest neighbours" in text


def test_no_selection_clears_the_shapes(ws):
    meta = page.item_map(ws, ready_status(ws), "lambda")[1]
    shapes, panel = page.selection(ws, None, meta)
    assert shapes == [] and "Click an item" in texts_of(panel)
    shapes, _ = page.selection(ws, 10**6, meta)  # an index from another domain's URL
    assert shapes == []


def test_clicking_a_listed_neighbour_moves_the_selection(ws):
    meta = page.item_map(ws, ready_status(ws), "lambda")[1]
    trigger = {"type": "domain-neighbour", "index": 7}
    assert page.choose_item(None, [None, 1], "demo", 42, meta, trigger) == 7
    with pytest.raises(PreventUpdate):  # a re-render of the list is not a click
        page.choose_item(None, [None, None], "demo", 42, meta, trigger)
    with pytest.raises(PreventUpdate):  # a click on an edge line carries no item
        page.choose_item({"points": [{"x": 1}]}, [], "demo", 42, meta, "map")


def test_a_new_domain_clears_the_selection_but_the_first_one_keeps_the_url_item(ws):
    assert page.choose_item(None, [], "other", 42, {"domain": "demo"}, "domain-picker") is None
    with pytest.raises(PreventUpdate):
        page.choose_item(None, [], "demo", 42, None, "domain-picker")


def test_switching_the_eigenvector_repaints_the_feature_graph(ws):
    facts = dv.spectrum(ws, "demo")
    options, value = domain_parts.eigen_choice(ws, "demo", None)
    assert value == 1 and len(options) == facts["dim"]
    one = domain_parts.feature_graph_figure(ws, "demo", 1)
    five = domain_parts.feature_graph_figure(ws, "demo", 5)
    nodes1, nodes5 = one.data[-1], five.data[-1]
    np.testing.assert_allclose(nodes1.marker.color, facts["eigenvectors"][:, 1])
    np.testing.assert_allclose(nodes5.marker.color, facts["eigenvectors"][:, 5])
    np.testing.assert_allclose(nodes1.x, nodes5.x)  # same layout, new colours
    assert one.layout.meta["eigenvector"] == 1 and five.layout.meta["eigenvector"] == 5
    assert domain_parts.eigen_choice(ws, "demo", 2, clicked_index=9)[1] == 9


def test_colour_choice_offers_only_what_the_memory_has(ws):
    options, value = page.color_choice(ws, "demo", "label")
    assert [o["value"] for o in options] == ["lambda", "energy", "cluster"] and value == "lambda"
    options, value = page.color_choice(ws, "demo", "cluster")
    assert value is not None and value != "lambda"  # no_update: it is valid


def test_spectrum_against_the_chain_and_another_domain(ws, tmp_path):
    spec, density, table = spectrum.spectrum_figures(ws, "demo", "chain", ["log"])
    names = [t.name for t in spec.data]
    assert "demo" in names and "chain (D=32)" in names
    assert spec.layout.yaxis.type == "log"
    assert {t.name for t in density.data} == {"demo", "chain (D=32)"}
    text = texts_of(table)
    assert "spectral gap" in text and "0.962" in text
    alone, _, _ = spectrum.spectrum_figures(ws, "demo", "none", [])
    assert [t.name for t in alone.data if "zero" not in t.name] == ["demo"]
    assert spectrum.compare_choice(ws, "demo", "bogus")[1] == "chain"


def test_sparsity_figure_counts_the_non_zeros(ws):
    fig = spectrum.sparsity_figure(ws, "demo")
    nnz = ws.domains.load("demo").laplacian.nnz
    assert f"{nnz:,} non-zeros" in fig.layout.annotations[0].text
    assert np.isfinite(np.asarray(fig.data[0].z, dtype=float)).sum() == nnz


def test_links_carry_the_pickers_and_the_eigenvector():
    href = domain_parts.page_link("/spectrum", "tau", 150, "dot", "demo", eig=4)
    assert href == "/spectrum?run=tau&step=150&compare=dot&domain=demo&eig=4"
    assert domain_parts.eig_from_click({"points": [{"x": 3, "y": 0.5}]}) == 3
    assert domain_parts.eig_from_click(None) is None


def test_a_domain_without_items_shows_the_graph_and_a_helpful_empty_map(tmp_path):
    rng = np.random.default_rng(0)
    memory = build_domain_memory(rng.normal(size=(80, 12)).astype(np.float32), dim=8, eps=2.0, topk=3)
    save_domain_memory(memory, tmp_path / "plain.safetensors")  # no items kept
    ws = Workspace(domains=[tmp_path / "plain.safetensors"], cache_dir=tmp_path / "cache")
    status, disabled = page.layout_status(ws, "plain")
    assert status == "none:plain:" and disabled
    fig, meta, _ = page.item_map(ws, status, "lambda")
    assert fig.layout.meta["empty"] and "keeps no items" in fig.layout.annotations[0].text and meta is None
    assert len(domain_parts.feature_graph_figure(ws, "plain", 1).data) >= 2
    assert "no items kept" in texts_of(domain_parts.summary_line(ws, "plain"))


def test_no_domain_loaded_shows_an_empty_state(tmp_path):
    ws = Workspace(cache_dir=tmp_path)
    text = texts_of(page.layout(ws)) + texts_of(spectrum.layout(ws))
    assert text.count(domain_parts.NO_DOMAIN) == 2
    graphs = []
    walk([page.layout(ws), spectrum.layout(ws)], lambda c: graphs.append(c) if type(c).__name__ == "Graph" else None)
    assert len(graphs) == 7  # every card says so rather than "Loading..." forever
    assert all(g.figure.layout.meta["empty"] and "No domain memory" in g.figure.layout.annotations[0].text
               for g in graphs)


def test_warm_up_computes_the_first_views(tmp_path):
    workspace = demo_workspace(cache_dir=tmp_path)
    seed_layout(workspace, workspace.domains.load("demo"))
    page.warm_up(workspace)
    spectrum.warm_up(workspace)
    memory = workspace.domains.load("demo")
    from workbench.data.cache import content_key

    assert content_key("domain-spectrum", memory.fingerprint) in workspace.cache
    assert content_key("feature-graph", memory.fingerprint, "spring", 0) in workspace.cache
    assert item_layout.request(workspace, memory).status == "ready"
    assert content_key("chain-spectrum", memory.dim) in workspace.cache
    status = page.layout_status(workspace, "demo")[0]
    assert content_key("item-map", status.split(":", 2)[2], "umap", "lambda", "demo", True) in workspace.cache


def test_export_and_bench_hooks(ws):
    figs = cards.build_for_state(ws, "domain", {"domain": "demo", "eig": 2})
    assert set(figs) == {"domain-feature-graph", "domain-item-map", "domain-degrees"}
    assert figs["domain-feature-graph"][0].layout.meta["eigenvector"] == 2
    assert figs["domain-item-map"][1]["status"].startswith("ready:demo:")
    assert set(cards.build_for_state(ws, "spectrum", {"domain": "demo"})) == {
        "spectrum-eigenvalues", "spectrum-density", "spectrum-sparsity"}
    cases = {**page.bench_cases(ws), **spectrum.bench_cases(ws)}
    assert "domain: click an item" in cases and "spectrum: sparsity of L" in cases
    for fn in cases.values():
        fn()  # every interaction runs without error


def test_item_lambda_is_named_and_explained_as_the_reference_index(ws):
    options, value = page.color_choice(ws, "demo", "lambda")
    item_lambda = [o for o in options if o["value"] == "lambda"][0]
    assert item_lambda["label"] == "item lambda (reference index)" and "SPEC section 7" in item_lambda["title"]
    fig, _, _ = page.item_map(ws, ready_status(ws), "lambda")
    items = [t for t in fig.data if t.name == "items"][0]
    assert items.marker.colorbar.title.text == "item lambda (reference index)"
    found = {}
    walk(page.layout(ws), lambda c: found.__setitem__(c.id, c) if isinstance(getattr(c, "id", None), str) else None)
    caption = found["domain-lambda-note"].children
    assert "not the lambda a model head computes" in caption and "(1 - tau) G" in caption
    panel = str(page.neighbour_panel(dv.item_data(ws, "demo"), 0, []))
    assert "item lambda (reference index)" in panel


def test_a_laplacian_without_edges_says_so_instead_of_an_empty_pattern(tmp_path):
    rng = np.random.default_rng(0)
    memory = build_domain_memory(rng.normal(size=(80, 12)).astype(np.float32), dim=8, eps=1e-9, topk=3)
    save_domain_memory(memory, tmp_path / "lonely.safetensors")  # eps keeps no edge: L = 0
    ws = Workspace(domains=[tmp_path / "lonely.safetensors"], cache_dir=tmp_path / "cache")
    sparsity = spectrum.sparsity_figure(ws, "lonely")
    assert sparsity.layout.meta["empty"] and sparsity.layout.annotations[0].text.startswith("No edges")
    graph = domain_parts.feature_graph_figure(ws, "lonely", 1)
    assert any(str(a.text).startswith("No edges") for a in graph.layout.annotations)
