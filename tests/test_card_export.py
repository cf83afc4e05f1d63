"""The cards' figure recipes: one registry serves the page callbacks and the Export buttons,
and an export renders the figure the server builds from the card's keys -- never one the
browser sent."""

from __future__ import annotations

import base64
import importlib
import json
import re

import plotly.graph_objects as go
import pytest
from dash import no_update

from workbench import export
from workbench.app import create_app
from workbench.data import demo_workspace
from workbench.pdf_info import pdf_title
from workbench.views import PAGE_MODULES, cards

EVIL_TITLE = "CLIENT SENT THIS TITLE"


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    return create_app(demo_workspace(cache_dir=tmp_path_factory.mktemp("cache")))


@pytest.fixture(scope="module")
def renderer():
    export.start_renderer()
    yield
    export.stop_renderer()


def _sid(ident: dict) -> str:
    """A dict id as Dash writes it in callback keys and responses."""
    return json.dumps(ident, separators=(",", ":"), sort_keys=True)


def _export_callback(app, card: str) -> tuple[str, dict]:
    wanted = _sid({"type": "export-download", "id": card}) + ".data"
    found = [(key, spec) for key, spec in app.callback_map.items() if wanted in key]
    assert len(found) == 1, card
    return found[0]


def _outputs(app, key) -> list[dict]:
    """The callback's outputs as Dash's request body lists them."""
    parts = [p for p in key.strip(".").split("...")]
    out = []
    for part in parts:
        ident, prop = part.rsplit(".", 1)
        out.append({"id": json.loads(ident) if ident.startswith("{") else ident, "property": prop})
    return out


def app_recipes(app) -> dict:
    """The recipes of the app's pages (a test may have registered others for a page of its own)."""
    pages = {module.PAGE["id"] for module in map(importlib.import_module, PAGE_MODULES)}
    return {card: made for card, made in cards.RECIPES.items() if made.page in pages}


def _all_figure_cards(component, found: set) -> set:
    ident = getattr(component, "id", None)
    if isinstance(ident, dict) and ident.get("type") == "export-button":
        found.add(ident["id"])
    children = getattr(component, "children", None)
    for child in children if isinstance(children, (list, tuple)) else [children]:
        if child is not None and hasattr(child, "to_plotly_json"):
            _all_figure_cards(child, found)
    return found


def test_every_export_callback_reads_keys_and_never_a_figure(app):
    assert any('"export-scale"}.disabled' in key for key in app.callback_map)  # PNG only
    exports = {key: spec for key, spec in app.callback_map.items() if "export-download" in key}
    assert len(exports) == len(app_recipes(app))
    for key, spec in exports.items():
        read = spec["inputs"] + spec["state"]
        assert not [r for r in read if r["property"] in ("figure", "clickData", "relayoutData")], key
        card = json.loads(key.strip(".").split("...")[0].rsplit(".", 1)[0])["id"]
        wanted = [(k.component, k.prop) for k in cards.page_keys(cards.RECIPES[card])]
        assert [(r["id"], r["property"]) for r in spec["state"][3:]] == wanted


def test_every_card_on_every_page_has_a_recipe_the_page_callback_uses(app):
    ws = app.workspace
    shown = set()
    for path in PAGE_MODULES:
        module = importlib.import_module(path)
        _all_figure_cards(module.layout(ws), shown)
    assert shown == set(app_recipes(app))
    for card, made in app_recipes(app).items():
        figure = _sid({"id": card, "type": "figure"})
        page = [spec for key, spec in app.callback_map.items() if f"{figure}.figure" in key]
        assert len(page) == 1, card
        inputs = {(i["id"], i["property"]) for i in page[0]["inputs"]}
        assert {(k.component, k.prop) for k in cards.page_keys(made)} <= inputs, card


def _post_export(app, card: str, fmt: str, values: dict, extra_state: list = (), status: int = 200) -> dict:
    key, spec = _export_callback(app, card)
    state = [{"id": {"type": f"export-{name}", "id": card}, "property": "value", "value": value}
             for name, value in (("format", fmt), ("scale", 2), ("columns", 1))]
    state += [{"id": s["id"], "property": s["property"], "value": values[k.name]}
              for s, k in zip(spec["state"][3:], cards.page_keys(cards.RECIPES[card]))]
    button = {"type": "export-button", "id": card}
    body = {"output": key, "outputs": _outputs(app, key),
            "inputs": [{"id": button, "property": "n_clicks", "value": 1}],
            "state": state + list(extra_state),
            "changedPropIds": [_sid(button) + ".n_clicks"]}
    response = app.server.test_client().post("/_dash-update-component", json=body)
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    return response.get_json()["response"] if status == 200 else {}


def _uid_free(svg: bytes) -> bytes:
    """An SVG with plotly's random per-render ids (figure, traces) replaced, so renders compare equal."""
    uid = re.search(rb'id="defs-([0-9a-f]+)"', svg).group(1)
    return re.sub(rb"\btrace[0-9a-f]{6}\b", b"traceUID", svg.replace(uid, b"UID"))


def _svg_of(answer: dict, card: str) -> tuple[bytes, str]:
    download = answer[_sid({"id": card, "type": "export-download"})]["data"]
    return base64.b64decode(download["content"]), download["filename"]


@pytest.mark.browser
def test_export_renders_the_server_built_figure_not_the_clients(app, renderer):
    card = "train-speed"
    made = cards.RECIPES[card]
    evil = go.Figure(go.Bar(x=[1], y=[1])).update_layout(title_text=EVIL_TITLE)
    evil.add_layout_image(source="file:///etc/passwd", x=0, y=1, sizex=1, sizey=1)
    sent = [{"id": {"type": "figure", "id": card}, "property": "figure", "value": evil.to_plotly_json()}]
    _post_export(app, card, "svg", {"smoothing": 0.5, "x_axis": "step"}, sent, status=500)  # Dash takes no extra state

    def server_svg(smoothing):
        fig = made.figure(app.workspace, card, cards.app_values(made, [smoothing, "step"]))
        return _uid_free(export.figure_to_bytes(fig, "svg", scale=2, columns=1))

    svg, filename = _svg_of(_post_export(app, card, "svg", {"smoothing": 0.5, "x_axis": "step"}), card)
    assert filename == "train-speed.svg"
    assert _uid_free(svg) == server_svg(0.5) != server_svg(0.0)  # the keys chose the figure
    # a figure sent in place of a key is only a bad key: the page's default figure comes back
    svg, _ = _svg_of(_post_export(app, card, "svg", {"smoothing": evil.to_plotly_json(), "x_axis": "step"}), card)
    assert EVIL_TITLE.encode() not in svg and b"passwd" not in svg and b"<image" not in svg
    assert _uid_free(svg) == server_svg(0.0)


@pytest.mark.browser
def test_a_per_head_export_is_named_and_titled_by_its_keys(app, renderer):
    ws = app.workspace
    step = ws.runs.nearest_step("tau", None)
    values = {"run": "tau", "step": step, "compare": "dot", "prompt": None, "layer": 1, "head": 2,
              "token": 5}
    answer = _post_export(app, "attn-pair", "pdf", values, [])
    download = answer[_sid({"id": "attn-pair", "type": "export-download"})]["data"]
    assert download["filename"] == f"attn-pair_tau_step{step}_L1_H2.pdf"
    pdf = base64.b64decode(download["content"])
    title = pdf_title(pdf)
    assert title.startswith("layer 1, head 2; query 5") and f"run tau, step {step}" in title


def test_a_placeholder_is_not_exported(app):
    from workbench.views.common import export_download

    step = app.workspace.runs.nearest_step("tau", None)
    values = {"run": "tau", "step": step, "compare": "__none__", "prompt": None}
    data, text = export_download(app.workspace, "attn-grid-b", values, "pdf", 1, 1)
    assert data is no_update and text.startswith("Nothing to export: Nothing to compare tau with")
    data, text = export_download(app.workspace, "attn-grid-a", {**values, "run": None}, "pdf", 1, 1)
    assert text == "Nothing to export yet."
