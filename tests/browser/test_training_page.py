"""The Training page's dynamics cards on the demo: tau and energy, every tau run's lambda, the
wall-clock switch and the scalars download."""

import csv
import io
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser


def graph(name: str) -> str:
    return f"#card-{name} .js-plotly-plot"


def trace_names(page, name: str) -> list[str]:
    return page.page.evaluate("(sel) => document.querySelector(sel).data.map(t => t.name || '')", graph(name))


def test_the_dynamics_cards_draw_and_the_axis_switches_to_wall_clock(demo_app, page):
    page.open(demo_app + "training", 5)
    page.page.wait_for_function(
        "(sel) => { const gd = document.querySelector(sel); return gd && gd.data && gd.data.length > 4; }",
        arg=graph("train-tau"), timeout=60_000)
    tau = trace_names(page, "train-tau")
    assert "tau: tau" in tau and "tau-reference: tau (fixed)" in tau
    assert any(name.startswith("tau: mean E(q)") for name in tau)  # logged, or from the checkpoints
    assert {"tau", "tau-reference"} <= set(trace_names(page, "train-lambda"))
    page.page.locator("#train-x label", has_text="wall-clock time").click()
    for name in ("train-loss", "train-tau", "train-lambda", "train-entropy", "train-speed"):
        page.page.wait_for_function(
            "(sel) => (document.querySelector(sel).layout.xaxis.title.text || '').startsWith('wall-clock time')",
            arg=graph(name), timeout=60_000)
    page.wait_idle()
    assert "x=time" in page.page.url
    page.assert_healthy()


def test_the_scalars_download_is_a_csv_of_every_evaluation(demo_app, page):
    page.open(demo_app + "training", 5)
    with page.page.expect_download(timeout=60_000) as download:
        page.page.click("#train-csv-button")
    assert download.value.suggested_filename == "training-scalars.csv"
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    assert {r["run"] for r in rows} == {"tau", "dot", "tau-reference"}
    assert len(rows) == 3 * 41 and all(float(r["elapsed_s"]) > 0 for r in rows)
    page.page.wait_for_function("() => document.querySelector('#train-csv-message').innerText.includes('3 runs')")
    page.assert_healthy()
