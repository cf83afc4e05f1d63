"""Theme templates, import isolation, and real PNG / SVG / PDF export through Chromium."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
import pytest

import workbench.figures as F
from workbench import export, theme
from workbench.export import ExportError

ROOT = Path(__file__).resolve().parents[1]
SVG_NS = "{http://www.w3.org/2000/svg}"


# ------------------------------------------------------------------- theme
def test_templates_are_registered_with_installed_fonts():
    assert theme.SCREEN_TEMPLATE in pio.templates and theme.PAPER_TEMPLATE in pio.templates
    paper = pio.templates[theme.PAPER_TEMPLATE].layout
    family = paper.font.family
    installed = theme.installed_font_families()
    first = family.split(",")[0].strip().strip("'")
    if installed:  # fontconfig present: the first family named must be installed
        assert first in installed
    assert family.rstrip().endswith("serif")
    assert 8 <= paper.font.size * 72 / theme.DPI <= 10  # 8-10 pt
    assert list(paper.colorway) == list(theme.OKABE_ITO)


def test_paper_sizes_match_column_widths_at_96_dpi():
    assert theme.paper_size(1).width_px == 336  # 3.5 in
    assert theme.paper_size(2).width_px == 687  # 7.16 in
    with pytest.raises(ValueError):
        theme.paper_size(3)


def test_model_kinds_and_series_colours():
    assert theme.model_kind("tau-30m") == "tau"
    assert theme.model_kind("dot_baseline") == "dot"
    assert theme.model_kind("chain") is None
    colors = theme.series_colors(["tau-a", "dot-a", "tau-b", "chain"])
    assert colors["tau-a"] == theme.MODEL_COLORS["tau"]
    assert colors["dot-a"] == theme.MODEL_COLORS["dot"]
    assert colors["tau-b"] not in (colors["tau-a"], colors["dot-a"])
    assert colors["chain"] not in theme.MODEL_COLORS.values()
    assert theme.series_colors(["run1"], {"run1": "dot"})["run1"] == theme.MODEL_COLORS["dot"]
    assert theme.with_alpha("#0072B2", 0.5) == "rgba(0, 114, 178, 0.5)"


def test_figure_modules_do_not_import_torch_or_tauformer():
    code = ("import sys, workbench.figures, workbench.theme, workbench.export\n"
            "bad = [m for m in ('torch', 'tauformer') if m in sys.modules]\n"
            "assert not bad, bad\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr


# -------------------------------------------------------------- preparation
def _scattergl_figure(n: int = 6000) -> go.Figure:
    rng = np.random.default_rng(0)
    return F.fig_item_map(rng.normal(size=(n, 2)), color=rng.random(n))


def test_prepare_converts_webgl_for_vector_formats_only():
    fig = _scattergl_figure()
    assert isinstance(fig.data[0], go.Scattergl)
    for fmt in ("svg", "pdf"):
        prepared, _, _ = export.prepare_figure(fig, fmt)
        assert [type(t) for t in prepared.data] == [go.Scatter]
        np.testing.assert_array_equal(prepared.data[0].customdata, fig.data[0].customdata)
    png, _, _ = export.prepare_figure(fig, "png")
    assert isinstance(png.data[0], go.Scattergl)
    assert isinstance(fig.data[0], go.Scattergl)  # the caller's figure is untouched


def test_prepare_paper_mode_drops_title_and_notes_and_sizes_by_columns():
    idx = np.arange(4)
    fig = F.fig_sparsity(idx, idx, np.ones(4), (4, 4))
    fig.update_layout(title_text="screen title")
    assert any(a.name == "ui-note" for a in fig.layout.annotations)
    prepared, w, h = export.prepare_figure(fig, "pdf", columns=2)
    assert prepared.layout.title.text is None
    assert not any(a.name == "ui-note" for a in prepared.layout.annotations)
    assert (w, h) == (687, 687)  # the sparsity figure asks for a square (aspect 1)
    assert prepared.layout.template.layout.font.family == theme.build_paper_template(2).layout.font.family
    pair = F.fig_attention_grid(np.ones((2, 2, 3, 3)))
    assert pair.layout.annotations[0].font.size == 16  # subplot titles, screen size
    paper_pair, _, _ = export.prepare_figure(pair, "svg", columns=2)
    assert {a.font.size for a in paper_pair.layout.annotations} == {theme.pt_to_px(9.0)}
    screen, w, h = export.prepare_figure(fig, "png", paper=False)
    # a screen export keeps the figure's own height (every figure function sets one)
    assert (w, h) == (export.DEFAULT_SCREEN_SIZE[0], fig.layout.height) and screen.layout.title.text == "screen title"


def test_prepare_paper_mode_drops_the_screen_selection():
    steps = np.arange(0, 100, 10)
    fig = F.fig_loss_curves({"tau": dict(step=steps, train_loss=np.linspace(4, 2, 10))},
                            selected_step=50, selected_run="tau")
    assert len(fig.layout.shapes) == 1 and len(fig.data) == 2
    prepared, _, _ = export.prepare_figure(fig, "png")
    assert len(prepared.layout.shapes) == 0 and len(prepared.layout.annotations) == 0
    assert [t.name for t in prepared.data] == ["tau train"]
    kept, _, _ = export.prepare_figure(fig, "png", paper=False)
    assert len(kept.data) == 2


def test_prepare_paper_mode_drops_selection_marks_of_maps_and_heads():
    rng = np.random.default_rng(0)
    xy = rng.normal(size=(30, 2))
    fig = F.fig_item_map(xy, color=rng.random(30), highlight=3, neighbours=[4, 5])
    assert len(fig.data) == 4  # items, links, neighbour rings, the selected star
    prepared, _, _ = export.prepare_figure(fig, "svg")
    assert [t.name for t in prepared.data] == [fig.data[0].name]
    assert len(export.prepare_figure(fig, "svg", paper=False)[0].data) == 4
    pair = F.fig_attention_pair(np.eye(6), np.eye(6), list("abcdef"), highlight_query=2)
    assert len(pair.layout.shapes) == 2  # the query row outlined in both maps
    assert len(export.prepare_figure(pair, "pdf")[0].layout.shapes) == 0


def test_prepare_drops_layout_images_that_would_be_fetched():
    fig = F.fig_empty("x")
    inline = "data:image/png;base64,iVBORw0KGgo="
    for source in ("file:///etc/passwd", "http://169.254.169.254/latest", "/etc/passwd", inline):
        fig.add_layout_image(source=source, x=0, y=0, sizex=1, sizey=1)
    for paper in (True, False):
        prepared, _, _ = export.prepare_figure(fig, "png", paper=paper)
        assert [im.source for im in prepared.layout.images] == [inline]


def test_pdf_title_is_rewritten_with_a_valid_xref():
    from workbench.pdf_info import pdf_title, set_pdf_title

    objects = [b"<</Title (Kaleido-fier)\n/Producer (x)>>", b"<</Type /Catalog /Pages 3 0 R>>",
               b"<</Type /Pages /Kids [] /Count 0>>"]
    body, offsets = b"%PDF-1.4\n", []
    for i, obj in enumerate(objects, 1):
        offsets.append(len(body))
        body += b"%d 0 obj\n%s\nendobj\n" % (i, obj)
    xref = len(body)
    body += b"xref\n0 4\n0000000000 65535 f \n" + b"".join(b"%010d 00000 n \n" % o for o in offsets)
    body += b"trailer\n<</Size 4\n/Root 2 0 R\n/Info 1 0 R>>\nstartxref\n%d\n%%%%EOF\n" % xref
    assert pdf_title(body) == "Kaleido-fier"
    for title in ("Loss (tau, step 1500)", "lambda \u03bb of head (2)"):
        out = set_pdf_title(body, title)
        assert pdf_title(out) == title and b"Kaleido-fier" not in out
        start = int(out.rsplit(b"startxref", 1)[1].split()[0])
        assert out[start:start + 4] == b"xref"
        entries = out[start:].split(b"trailer")[0].splitlines()[3:]
        for number, entry in enumerate(entries, 1):
            assert out[int(entry.split()[0]):].startswith(b"%d 0 obj" % number)


def test_bad_arguments_raise_export_error():
    fig = F.fig_empty("x")
    with pytest.raises(ExportError, match="unknown export format 'jpg'"):
        export.figure_to_bytes(fig, "jpg")
    with pytest.raises(ExportError, match="scale must be between 1 and 4"):
        export.figure_to_bytes(fig, "png", scale=8)
    with pytest.raises(ExportError, match="columns must be 1 or 2"):
        export.figure_to_bytes(fig, "png", columns=3)


def test_missing_browser_is_a_clear_export_error(monkeypatch):
    monkeypatch.setenv("BROWSER_PATH", "/nonexistent/chromium")
    monkeypatch.setattr(export, "_RENDERER", export.Renderer())  # not the shared browser
    with pytest.raises(ExportError, match="BROWSER_PATH='/nonexistent/chromium' is not an exec"):
        export.figure_to_bytes(F.fig_empty("x"), "png")
    assert not export.renderer_running()


# ------------------------------------------------------------ real rendering
@pytest.fixture(scope="module")
def renderer():
    """One Chromium for every export test in this module."""
    export.start_renderer()
    yield
    export.stop_renderer()


def _small_figure() -> go.Figure:
    steps = np.arange(0, 200, 10)
    hist = {"tau": dict(step=steps, train_loss=np.linspace(5, 3, steps.size)),
            "dot": dict(step=steps, train_loss=np.linspace(5, 2.5, steps.size))}
    return F.fig_loss_curves(hist)


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


@pytest.mark.browser
def test_png_has_the_signature_and_the_paper_size(renderer):
    one = export.figure_to_bytes(_small_figure(), "png", scale=2)
    assert _png_size(one) == (2 * 336, 2 * theme.paper_size(1).height_px)
    two = export.figure_to_bytes(_small_figure(), "png", columns=2, scale=1)
    assert _png_size(two)[0] == 687
    assert export.TIMINGS[-1].fmt == "png" and export.TIMINGS[-1].n_bytes == len(two)


@pytest.mark.browser
def test_svg_parses_and_uses_the_paper_font(renderer):
    data = export.figure_to_bytes(_small_figure(), "svg")
    root = ET.fromstring(data)
    assert root.tag == f"{SVG_NS}svg"
    assert root.get("width") == "336"
    assert theme.paper_font("serif") in data.decode()


@pytest.mark.browser
def test_pdf_is_complete_and_titled(renderer):
    from workbench.pdf_info import pdf_title

    data = export.figure_to_bytes(_small_figure(), "pdf", title="Loss curves of tau and dot")
    assert data.startswith(b"%PDF")
    assert data.rstrip().endswith(b"%%EOF")
    assert pdf_title(data) == "Loss curves of tau and dot"
    fig = _small_figure().update_layout(title_text="<b>Loss</b> at step 100")
    named = export.figure_to_bytes(fig, "pdf")  # paper mode drops the title from the page, not the file
    assert pdf_title(named) == "Loss at step 100"
    assert b"Kaleido" not in named and b"untitled" not in named.lower()


def _mediabox_inches(pdf: bytes) -> tuple[float, float]:
    import re

    x0, y0, x1, y1 = map(float, re.search(rb"/MediaBox\s*\[([^\]]*)\]", pdf).group(1).split())
    return (x1 - x0) / 72, (y1 - y0) / 72


@pytest.mark.browser
@pytest.mark.parametrize("columns, inches", [(1, 3.5), (2, 7.16)])
def test_png_scale_leaves_svg_and_pdf_at_the_paper_size(renderer, columns, inches):
    fig = _small_figure()
    size = theme.paper_size(columns)
    svg = ET.fromstring(export.figure_to_bytes(fig, "svg", columns=columns, scale=2))
    assert (svg.get("width"), svg.get("height")) == (str(size.width_px), str(size.height_px))
    width, height = _mediabox_inches(export.figure_to_bytes(fig, "pdf", columns=columns, scale=2))
    assert abs(width - inches) < 0.01 and abs(height - size.height_px / theme.DPI) < 0.01
    png = export.figure_to_bytes(fig, "png", columns=columns, scale=2)
    assert _png_size(png) == (2 * size.width_px, 2 * size.height_px)


@pytest.mark.browser
def test_webgl_scatter_exports_as_vector_points(renderer):
    n = 6000
    data = export.figure_to_bytes(_scattergl_figure(n), "svg")
    root = ET.fromstring(data)
    assert root.findall(f".//{SVG_NS}image") == []  # no bitmap of a WebGL canvas
    points = [p for p in root.iter(f"{SVG_NS}path") if "point" in (p.get("class") or "")]
    assert len(points) == n


@pytest.mark.browser
def test_export_figures_writes_files_atomically_with_a_manifest(renderer, tmp_path):
    figs = {"loss curves": _small_figure(), "js": F.fig_js_divergence(np.eye(2) * 0.3)}
    calls = []
    paths = export.export_figures(figs, tmp_path / "out", ["png", "svg"],
                                  manifest={"run": "tau-30m", "step": 1000},
                                  progress=lambda done, total, label: calls.append((done, total)))
    names = sorted(p.name for p in paths)
    assert names == ["js.png", "js.svg", "loss_curves.png", "loss_curves.svg", "manifest.json"]
    assert paths[-1].name == "manifest.json"
    assert calls == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.endswith(".tmp")]
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["run"] == "tau-30m" and manifest["step"] == 1000
    assert set(manifest["versions"]) == {"plotly", "kaleido", "dash", "numpy"}
    assert manifest["versions"]["kaleido"].split(".")[0] >= "1"
    for entry in manifest["files"]:
        assert (tmp_path / "out" / entry["path"]).stat().st_size == entry["bytes"] > 0
    with pytest.raises(ExportError, match="manifest may not set files"):
        export.export_figures(figs, tmp_path, ["png"], manifest={"files": []}, progress=False)


@pytest.mark.browser
def test_export_figures_shows_a_tqdm_bar_by_default(renderer, tmp_path, capsys):
    export.export_figures({"js": F.fig_js_divergence(np.eye(2))}, tmp_path, ["svg"])
    err = capsys.readouterr().err
    assert "exporting figures" in err and "1/1" in err


def test_a_render_before_the_page_script_loaded_is_tried_once_more(monkeypatch):
    """kaleido's tab can answer "kaleido_scopes is not defined" right after start-up: one retry."""
    import asyncio
    import threading

    from workbench import export_renderer

    calls = []

    class FlakyBrowser:
        def __init__(self, first_error):
            self.first_error = first_error

        async def calc_fig(self, fig, opts):
            calls.append(opts["format"])
            if len(calls) == 1:
                raise RuntimeError(self.first_error)
            return b"%PDF-ok"

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        r = export_renderer.Renderer()
        r._loop, r._kaleido = loop, FlakyBrowser("ReferenceError: kaleido_scopes is not defined")
        monkeypatch.setattr(export_renderer.time, "sleep", lambda s: None)
        assert r.render({}, {"format": "pdf"}, timeout=5) == b"%PDF-ok" and calls == ["pdf", "pdf"]
        calls.clear()
        r._kaleido = FlakyBrowser("some other failure")  # is not retried
        with pytest.raises(RuntimeError, match="some other failure"):
            r.render({}, {"format": "pdf"}, timeout=5)
        assert calls == ["pdf"]
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
