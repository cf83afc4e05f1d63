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
import tauformer
from tauformer.errors import TauformerError
from workbench import batch_export, bench, export
from workbench.data import DEMO_DIR, Workspace, item_layout
from workbench.pdf_info import pdf_title
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
    """A page module with two cards of its own, added to PAGE_MODULES: one shows the prompt,
    the other is a placeholder when nothing is compared."""
    (tmp_path / "extra_page_for_export.py").write_text(
        "import plotly.graph_objects as go\n"
        "from workbench.figures import fig_empty\n"
        "from workbench.views.cards import Key, recipe\n"
        "PAGE = dict(id='extra-export', path='/extra', name='Extra', order=99, description='')\n"
        "def build(workspace, prompt, compare):\n"
        "    bar = go.Figure(go.Bar(x=[1, 2], y=[3, 4], name=str(prompt)))\n"
        "    return bar, fig_empty('Nothing to compare with') if compare is None else bar\n"
        "recipe('extra-export', ('extra-prompt', 'extra-compared'), build,\n"
        "       (Key('prompt', None), Key('compare', None)))\n")
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
    names = {"domain-feature-graph", "domain-item-map", "domain-degrees", "spectrum-eigenvalues", "spectrum-density",
             "spectrum-sparsity", "extra-prompt"}
    assert {p.name for p in out.iterdir()} == {f"{n}.pdf" for n in names} | {"manifest.json"}
    manifest = json.loads((out / "manifest.json").read_text())
    for name in names:
        pdf = (out / f"{name}.pdf").read_bytes()
        assert pdf.startswith(b"%PDF") and pdf.rstrip().endswith(b"%%EOF")
        assert pdf_title(pdf) == manifest["figures"][name]["title"] and "untitled" not in pdf_title(pdf).lower()
    assert manifest["prompt"] == "the cat sat" and manifest["checkpoint"] is None
    assert len(manifest["domain"]["fingerprint"]) == 64 and manifest["domain"]["dim"] == 8
    assert manifest["parameters"]["eig"] == 2 and manifest["parameters"]["formats"] == "pdf"
    assert manifest["figures"]["domain-feature-graph"]["keys"]["eig"] == 2
    assert manifest["figures"]["extra-prompt"]["page"] == "extra_page_for_export"
    assert manifest["skipped"] == {"extra-compared": "Nothing to compare with"}
    assert manifest["packages"]["umap-learn"] and manifest["versions"]["plotly"]
    assert manifest["code"]["tauformer"] == tauformer.__version__
    assert len(manifest["files"]) == len(names)
    err = capsys.readouterr().err
    assert "workbench.views.spectrum: 3 figure(s)" in err and f"wrote {len(names) + 1} files" in err
    assert "skipped extra-compared: Nothing to compare with" in err


def test_bad_input_is_one_line_and_status_2(tmp_path):
    result = subprocess.run([sys.executable, "-m", "workbench", "export", "--domain", str(tmp_path / "missing"),
                             "--out", str(tmp_path / "out")], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"error: {tmp_path / 'missing'}: no such domain-memory file"]


def test_two_cards_may_not_export_the_same_file_name(monkeypatch, small_domain):
    domain, cache = small_domain
    ws = Workspace(domains=[domain], cache_dir=cache)
    monkeypatch.setattr(workbench.views, "PAGE_MODULES",
                        ("workbench.views.spectrum", "workbench.views.spectrum"))
    with pytest.raises(Exception, match="two cards export a figure named 'spectrum-eigenvalues'"):
        batch_export.collect_figures(ws, {"domain": "small", "eig": 1})


# ------------------------------------------------------------ model runs, no rendering
@pytest.fixture(scope="module")
def model_ws(small_domain, tmp_path_factory):
    """The demo runs with the small domain memory (D = 8, so not the runs' head dim of 32)."""
    domain, _ = small_domain
    return Workspace(runs=[DEMO_DIR], domains=[domain], cache_dir=tmp_path_factory.mktemp("cache"))


def _state(ws, *argv):
    warnings = []
    args = batch_export.parse_args(["--out", "unused", *argv])
    return batch_export.build_state(ws, args, warnings.append), args, warnings


def test_nothing_compared_skips_placeholders_and_files_carry_run_step_layer_head(model_ws, monkeypatch):
    monkeypatch.setattr(workbench.views, "PAGE_MODULES", ("workbench.views.attention",))
    step = model_ws.runs.nearest_step("tau", None)
    state, _, _ = _state(model_ws, "--compare", "none", "--layer", "1", "--head", "2", "--token", "5",
                         "--prompt", "the cat sat on the mat")
    figures, entries, skipped = batch_export.collect_figures(model_ws, state)
    assert set(skipped) == {"attn-grid-b", "attn-pair", "attn-difference", "attn-js"}
    assert all(reason.startswith("Nothing to compare tau with") for reason in skipped.values())
    assert set(figures) == {f"attn-grid-a_tau_step{step}", f"attn-tokens_tau_step{step}_L1_H2",
                            f"attn-sorted_tau_step{step}_L1_H2", f"attn-entropy_tau_step{step}"}
    keys = entries[f"attn-tokens_tau_step{step}_L1_H2"]["keys"]
    assert (keys["layer"], keys["head"], keys["token"]) == (1, 2, 5) and "prompt" not in keys
    assert state["prompt"] == "the cat sat on the mat"
    compared, _, _ = _state(model_ws, "--compare", "tau-reference", "--layer", "9", "--prompt", "0123456789")
    figures, entries, skipped = batch_export.collect_figures(model_ws, compared)
    keys = entries[f"attn-pair_tau_step{step}_L3_H0"]["keys"]  # layer 9 of a 4-layer model: the last
    assert not skipped and keys["compare"] == "tau-reference" and keys["token"] == 9  # the last of 10
    assert "tau-reference" in figures[f"attn-grid-b_tau_step{step}"].layout.title.text
    with pytest.raises(TauformerError, match="--compare nope: no such run"):
        _state(model_ws, "--compare", "nope")


def test_manifest_records_the_laplacian_used_the_prompt_and_the_code_version(model_ws, tmp_path):
    step = model_ws.runs.nearest_step("tau", None)
    state, args, warnings = _state(model_ws)
    assert state["laplacian"] == "model"
    assert warnings == ["warning: domain memory 'small' has D = 8 but run 'tau' has head dim 32: "
                        "the model figures use the checkpoint's own Laplacian"]
    record = manifest_of(model_ws, state, args)
    own = json.loads((model_ws.runs.checkpoint_path("tau", step) / "config.json").read_text())["domain"]
    lap = record["laplacian"]
    assert lap["source"] == "checkpoint" and lap["fingerprint"] == own["fingerprint"] and lap["dim"] == 32
    assert lap["used_by_whatif"] == "checkpoint" and "D = 8" in lap["domain_mismatch"]
    assert record["prompt"] == model_ws.probes.default_prompt("tau") and record["prompt_source"] == "validation text"
    assert record["checkpoint"] == {"run": "tau", "step": step, "compared_with": "dot",
                                    "path": str(model_ws.runs.checkpoint_path("tau", step))}
    assert record["code"]["tauformer"] == tauformer.__version__
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True)
    if head.returncode == 0:
        assert record["code"]["git_commit"] == head.stdout.strip()
        assert isinstance(record["code"]["git_dirty"], bool)
    # a domain memory of the head dim is what the what-if figures measure against
    rng = np.random.default_rng(1)
    memory = build_domain_memory(rng.normal(size=(80, 40)).astype(np.float32), dim=32, eps=2.0, topk=3,
                                 name="wide")
    save_domain_memory(memory, tmp_path / "wide")
    wide = Workspace(runs=[DEMO_DIR], domains=[tmp_path / "wide"], cache_dir=tmp_path / "cache")
    state, args, warnings = _state(wide)
    assert warnings == [] and state["laplacian"] == "domain:wide" and state["temperature"] == 0.0
    lap = manifest_of(wide, state, args)["laplacian"]
    assert lap["used_by_whatif"] == "domain" and lap["whatif"]["fingerprint"] == memory.fingerprint


def manifest_of(ws, state, args):
    return batch_export.manifest(ws, state, args, {}, {})


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


def test_the_cli_writes_csv_and_html_without_a_browser(small_domain, tmp_path, monkeypatch, capsys):
    domain, cache = small_domain
    monkeypatch.setattr(export, "_RENDERER", None)  # CSV and HTML never start Chromium
    out = tmp_path / "data"
    code = batch_export.main(["--domain", str(domain), "--out", str(out), "--formats", "csv,html",
                              "--cache-dir", str(cache), "--quiet"])
    assert code == 0, capsys.readouterr().err
    names = {"domain-feature-graph", "domain-item-map", "domain-degrees", "spectrum-eigenvalues", "spectrum-density", "spectrum-sparsity"}
    assert {p.name for p in out.iterdir()} == {f"{n}.{f}" for n in names for f in ("csv", "html")} | {"manifest.json"}
    eigen = (out / "spectrum-eigenvalues.csv").read_text().splitlines()
    assert eigen[0].startswith("series,mode index (ascending eigenvalue),eigenvalue") and len(eigen) > 8
    page = (out / "spectrum-eigenvalues.html").read_text()
    assert page.startswith("<!doctype html>") and "<script src" not in page
    manifest = json.loads((out / "manifest.json").read_text())
    assert {f["format"] for f in manifest["files"]} == {"csv", "html"}
