"""The batch export CLI and the page bench: every page's figures, valid files, a manifest."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import workbench.views
from tauformer.domain import build_domain_memory, save_domain_memory
from workbench import batch_export, bench, export
from workbench.data import Workspace, item_layout
from workbench.data.layout_compute import save_layout

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def small_domain(tmp_path_factory):
    """A domain memory with 60 items, and its item layout already in the cache dir."""
    base = tmp_path_factory.mktemp("domain")
    rng = np.random.default_rng(0)
    X = (rng.normal(size=(3, 16))[rng.integers(3, size=60)] + 0.2 * rng.normal(size=(60, 16))).astype(np.float32)
    memory = build_domain_memory(X, dim=8, eps=2.0, topk=3, keep_items=True, name="small")
    save_domain_memory(memory, base / "small")
    cache = base / "cache"
    ws = Workspace(domains=[base / "small"], cache_dir=cache)
    loaded = ws.domains.load("small")
    path = item_layout.jobs_for(ws).path(item_layout.layout_key(loaded))
    save_layout({"xy": item_layout.pca_layout(loaded.items).astype(np.float32),
                 "edges": np.array([[0, 1], [1, 2]]), "distances": np.array([0.1, 0.2], np.float32),
                 "seconds": {}, "params": {}}, str(path))
    return base / "small", cache


@pytest.fixture
def extra_page(tmp_path, monkeypatch):
    """A page module that exports one figure of its own, added to PAGE_MODULES."""
    (tmp_path / "extra_page_for_export.py").write_text(
        "import plotly.graph_objects as go\n"
        "def export_figures(workspace, state):\n"
        "    return {'extra_prompt': go.Figure(go.Bar(x=[1, 2], y=[3, 4], name=str(state['prompt'])))}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(workbench.views, "PAGE_MODULES", (*workbench.views.PAGE_MODULES, "extra_page_for_export"))


@pytest.mark.browser
def test_the_cli_writes_every_pages_figures_and_a_manifest(small_domain, extra_page, tmp_path, capsys):
    domain, cache = small_domain
    out = tmp_path / "figures"
    code = batch_export.main(["--domain", str(domain), "--out", str(out), "--formats", "pdf",
                              "--prompt", "the cat sat", "--eig", "2", "--cache-dir", str(cache)])
    export.stop_renderer()
    assert code == 0, capsys.readouterr().err
    names = {"domain_feature_graph", "domain_item_map", "spectrum_eigenvalues", "spectrum_density",
             "spectrum_sparsity", "extra_prompt"}
    assert {p.name for p in out.iterdir()} == {f"{n}.pdf" for n in names} | {"manifest.json"}
    for name in names:
        pdf = (out / f"{name}.pdf").read_bytes()
        assert pdf.startswith(b"%PDF") and pdf.rstrip().endswith(b"%%EOF")
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["prompt"] == "the cat sat" and manifest["checkpoint"] is None
    assert len(manifest["domain"]["fingerprint"]) == 64 and manifest["domain"]["dim"] == 8
    assert manifest["parameters"]["eig"] == 2 and manifest["parameters"]["formats"] == "pdf"
    assert manifest["figures"]["extra_prompt"] == "extra_page_for_export"
    assert manifest["packages"]["umap-learn"] and manifest["versions"]["plotly"]
    assert len(manifest["files"]) == 6
    err = capsys.readouterr().err
    assert "workbench.views.spectrum: 3 figure(s)" in err and "wrote 7 files" in err


def test_bad_input_is_one_line_and_status_2(tmp_path):
    result = subprocess.run([sys.executable, "-m", "workbench.export", "--domain", str(tmp_path / "missing"),
                             "--out", str(tmp_path / "out")], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"error: {tmp_path / 'missing'}: no such domain-memory file"]


def test_two_pages_may_not_export_the_same_name(monkeypatch, small_domain):
    domain, cache = small_domain
    ws = Workspace(domains=[domain], cache_dir=cache)
    monkeypatch.setattr(workbench.views, "PAGE_MODULES",
                        ("workbench.views.spectrum", "workbench.views.spectrum"))
    with pytest.raises(Exception, match="two pages export a figure named 'spectrum_eigenvalues'"):
        batch_export.collect_figures(ws, {"domain": "small", "eig": 1, "vs": "chain", "prompt": None})


def test_bench_collects_and_times_every_pages_interactions(small_domain, capsys):
    domain, cache = small_domain
    code = bench.main(["--domain", str(domain), "--runs", "--cache-dir", str(cache), "--repeat", "1"])
    assert code == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["interaction", "first", "ms", "warm", "ms", "KiB"]
    timed = {line.rsplit(None, 3)[0] for line in lines[1:]}
    assert {"domain: click an item", "spectrum: sparsity of L", "domain: item map (lambda)"} <= timed
    rows = [tuple(map(float, line.rsplit(None, 3)[1:])) for line in lines[1:]]
    assert all(first >= 0 and warm >= 0 and size >= 0 for first, warm, size in rows)
    assert sum(first for first, _, _ in rows) > 1  # the figures take real time to build
