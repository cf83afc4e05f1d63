"""Every registered card of the app's pages gives a non-empty CSV (and an HTML page) on the demo,
built on the server from the card's keys, as the Export button and the batch export build it."""

from __future__ import annotations

import base64
import csv
import importlib
import io

import numpy as np
import pytest

import workbench.data.probes
from workbench import batch_export
from workbench.data import demo_workspace, item_layout
from workbench.data.layout_compute import save_layout
from workbench.data.speed import decode_latency
from workbench.views import PAGE_MODULES, cards, pages_with_data
from workbench.views.common import export_download

PROMPT = "def f(x):\n    return x * 2  # a short prompt keeps the probes fast"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """(workspace, batch state, {card: (figure, key values)}) for every card of the demo's pages."""
    ws = demo_workspace(cache_dir=tmp_path_factory.mktemp("cache"))
    for name in ws.domains.names():  # a PCA item layout in the cache: UMAP's first compile takes a minute
        memory = ws.domains.load(name)
        if memory.items is not None:
            path = item_layout.jobs_for(ws).path(item_layout.layout_key(memory))
            save_layout({"xy": item_layout.pca_layout(memory.items).astype(np.float32),
                         "edges": np.array([[0, 1], [1, 2]]), "distances": np.array([0.1, 0.2], np.float32),
                         "seconds": {}, "params": {}}, str(path))
    with pytest.MonkeyPatch.context() as mp:  # a real, short latency measurement (2 contexts, 2 tokens)
        mp.setattr(workbench.data.probes, "measure_decode_latency",
                   lambda models, contexts: decode_latency(models, (16, 32), new_tokens=2, repeats=1))
        state = batch_export.build_state(ws, batch_export.parse_args(["--out", "unused", "--prompt", PROMPT]))
        built = {}
        for module in pages_with_data(ws):
            for made in cards.page_recipes(module.PAGE["id"]):
                values = cards.batch_values(made, ws, state)
                for card, fig in zip(made.cards, made.outputs(ws, values)):
                    built[card] = (fig, values)
    return ws, state, built


def app_cards() -> set[str]:
    pages = {importlib.import_module(path).PAGE["id"] for path in PAGE_MODULES}
    return {card for card, made in cards.RECIPES.items() if made.page in pages}


def test_every_card_gives_a_csv_of_numbers(demo):
    from workbench.export import figure_to_bytes

    _, _, built = demo
    assert set(built) == app_cards()
    for card, (fig, _) in built.items():
        assert not cards.is_placeholder(fig), f"{card}: {cards.placeholder_text(fig)}"
        rows = list(csv.reader(io.StringIO(figure_to_bytes(fig, "csv", table=cards.RECIPES[card].table(card)).decode())))
        header, body = rows[0], rows[1:]
        assert body and all(len(r) == len(header) for r in body), card
        assert len(set(header)) == len(header) and all(header), f"{card}: {header}"
        numeric = [c for r in body[:50] for c in r if _is_number(c)]
        assert numeric, f"{card}: no numbers in {body[:2]}"


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def test_the_export_button_gives_csv_and_html_named_like_the_other_formats(demo):
    ws, state, built = demo
    fig, values = built["attn-entropy"]
    data, message = export_download(ws, "attn-entropy", values, "csv", 2, 1)
    assert data["filename"] == cards.export_file_name("attn-entropy", values, "csv") and message.startswith(data["filename"])
    rows = list(csv.DictReader(io.StringIO(base64.b64decode(data["content"]).decode())))
    tau = [r for r in rows if r["series"] == "tau"]
    np.testing.assert_allclose([float(r[fig.layout.yaxis.title.text]) for r in tau], fig.data[0].y)
    data, _ = export_download(ws, "attn-entropy", values, "html", 2, 1)
    page = base64.b64decode(data["content"]).decode()
    assert data["filename"].endswith(".html") and "<script src" not in page and "Plotly.newPlot" in page
