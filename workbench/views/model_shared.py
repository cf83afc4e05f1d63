"""Pieces the model pages share: the prompt box, head / token selectors, and callback helpers.

The prompt lives in three stores: ``model-prompt`` (the committed prompt the pages compute on;
None means the default prompt, so the URL stays short), ``model-prompt-memory`` (session
storage, so the prompt follows the user from page to page) and ``model-prompt-from-url``
(whether the URL named a prompt, which then wins over the remembered one).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import functools
import inspect

import numpy as np
from dash import Input, Output, State, dcc, html
from dash.exceptions import PreventUpdate

from workbench.figures import fig_empty

from .cards import Key
from .common import FRIENDLY_ERRORS, empty_state, figure_card
from .shell import NONE

if TYPE_CHECKING:
    from workbench.data import Workspace

PROMPT = "model-prompt"
PROMPT_TEXT = "model-prompt-text"
PROMPT_RUN = "model-prompt-run"
PROMPT_MEMORY = "model-prompt-memory"
PROMPT_FROM_URL = "model-prompt-from-url"
PROMPT_DEFAULT = "model-prompt-default"
PROMPT_NOTE = "model-prompt-note"
PICKERS = [Input("run-picker", "value"), Input("step-picker", "value")]
WITH_COMPARE = PICKERS + [Input("compare-picker", "value")]
PENDING = "__PENDING__"  # the committed prompt before the page has decided it (URL, remembered or default)
# the keys a model figure is built from (see workbench.views.cards)
RUN = Key("run", "run-picker")
STEP = Key("step", "step-picker")
COMPARE = Key("compare", "compare-picker")
PROMPT_KEY = Key("prompt", PROMPT, "data")


def bind(workspace: Workspace, fn):
    """A Dash callback that calls the module-level ``fn(workspace, *inputs)``."""

    def callback(*args):
        return fn(workspace, *args)

    callback.__name__ = fn.__name__
    return callback


def require(*values) -> None:
    """Skip the update while a global picker is still empty (they start as None)."""
    if any(v is None for v in values):
        raise PreventUpdate


MESSAGE = object()
"""Among a callback's ``extra`` defaults: the error message itself (e.g. for a note beside the figure)."""


def model_callback(*, figures: int = 1, extra: tuple = (), requires: tuple[str, ...] = ("run", "step"),
                   tau_only: str | None = None, compact: bool = False):
    """The one opening of a model page's callback ``fn(workspace, ...)``.

    The decorated function skips the update (PreventUpdate) while an argument named in
    ``requires`` is None -- the global pickers start empty. A friendly error (a bad checkpoint,
    an unknown run, a figure's input check) becomes the callback's answer: an empty figure
    with the message for each of its ``figures`` outputs, then the ``extra`` defaults for its
    other outputs (:data:`MESSAGE` stands for the message). ``tau_only`` (a sentence to append,
    "" for none) answers a dot-product run the same way with :func:`no_lambda` before ``fn`` runs.
    Card recipes call the decorated function for export, so they get the same answers.
    ``compact`` draws those empty figures at the height of a compact figure (the overview's).
    """

    def decorate(fn):
        signature = inspect.signature(fn)

        def failed(text: str):
            out = tuple(empty(text, compact=compact) for _ in range(figures)) + tuple(text if d is MESSAGE else d for d in extra)
            return out[0] if len(out) == 1 else out

        @functools.wraps(fn)
        def callback(workspace: Workspace, *args, **kwargs):
            given = signature.bind(workspace, *args, **kwargs).arguments
            require(*(given.get(name) for name in requires))
            try:
                if tau_only is not None and workspace.runs.info(given["run"]).attention != "tau":
                    return failed(no_lambda(given["run"]) + tau_only)
                return fn(workspace, *args, **kwargs)
            except FRIENDLY_ERRORS as err:
                return failed(message(err))

        return callback

    return decorate


def message(err: Exception) -> str:
    """An error as one readable line (KeyError quotes its message)."""
    return str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)


def no_lambda(run: str) -> str:
    return (f"{run} is a dot-product model: it has no lambda. "
            "Pick a tau run in the Run picker to see its lambdas.")


_LOADING = []


def no_runs(workspace: Workspace, title: str):
    """The page to show when the app was started without runs (else None)."""
    if workspace.runs.names():
        return None
    return html.Div(className="model-page", children=[html.H1(title), empty_state(
        "No training runs are loaded, so there is no model to probe.",
        hint="Start the app with --runs DIR (a run directory or a folder of runs), or with no arguments for the demo.")])


def model_page(workspace: Workspace, query: dict, title: str, lead: str, body, *, prompt: bool = True) -> html.Div:
    """A model page: its title, the lead paragraph, the shared prompt box (unless ``prompt`` is
    False), then ``body(run)`` for the run the page opens on; the no-runs page without runs."""
    if (page := no_runs(workspace, title)) is not None:
        return page
    head = [html.H1(title), html.P(lead, className="lead")] + ([prompt_box(workspace, query)] if prompt else [])
    return html.Div(className="model-page", children=head + list(body(default_run(workspace, query))))


def token_picker(query: dict, component_id: str, label: str, *, default=None, **kwargs) -> html.Label:
    """A token-position box (``component_id``) set from the URL's ``token``, else ``default``."""
    token = query.get("token")
    return html.Label([label, dcc.Input(id=component_id, type="number", min=0, step=1, debounce=True,
                                        value=clamp_index(token, 10**6) if token not in (None, "") else default,
                                        className="token-input", **kwargs)])


def card(name: str, title: str, **kwargs):
    """A figure card that starts with one shared 'Computing...' placeholder (built once, not per layout)."""
    if not _LOADING:
        _LOADING.append(fig_empty("Computing..."))
    return figure_card(name, title, figure=_LOADING[0], **kwargs)


def empty(text: str, *, compact: bool = False):
    return fig_empty(text, compact=compact)


def compare_run(workspace: Workspace, run: str, compare: str | None) -> str | None:
    """The compared run: the compare picker's, else the run's tau/dot twin; None for 'nothing'."""
    if compare == NONE:
        return None
    if compare in workspace.runs.names():
        return compare
    return workspace.probes.pair(run)


def default_run(workspace: Workspace, query: dict) -> str | None:
    """The run a page opens on (the URL's, else the default tau run) -- for initial options."""
    names = workspace.runs.names()
    run = query.get("run")
    if run in names:
        return run
    tau, dot = workspace.runs.default_pair()
    return tau or dot or (names[0] if names else None)


def export_state(workspace: Workspace, state: dict) -> tuple:
    """(run, step, compared run, prompt) of an export or bench state: the state's run (else the
    default run) at its checkpoint nearest the state's step (the latest when none)."""
    run = state.get("run") or default_run(workspace, {})
    return run, workspace.runs.nearest_step(run, state.get("step")), state.get("compare"), state.get("prompt")


def shape_of(workspace: Workspace, run: str | None) -> tuple[int, int]:
    """(n_layer, n_head) of a run ((1, 1) when unknown)."""
    if not run or run not in workspace.runs.names():
        return 1, 1
    m = workspace.runs.info(run).model
    return m.n_layer, m.n_head


def index_options(n: int, label: str) -> list[dict]:
    return [{"label": f"{label} {i}", "value": i} for i in range(n)]


def clamp_index(value, n: int, default: int = 0) -> int:
    try:
        return int(np.clip(int(value), 0, max(0, n - 1)))
    except (TypeError, ValueError):
        return default


def head_options(workspace: Workspace, run):
    """Layer and head dropdown options for the run's shape."""
    n_layer, n_head = shape_of(workspace, run)
    return index_options(n_layer, "layer"), index_options(n_head, "head")


def layer_picker(workspace: Workspace, run, query: dict, prefix: str) -> html.Label:
    """The Layer dropdown (id ``<prefix>-layer``), set from the URL query."""
    n_layer, _ = shape_of(workspace, run)
    return html.Label(["Layer", dcc.Dropdown(id=f"{prefix}-layer", options=index_options(n_layer, "layer"),
                                             clearable=False, value=clamp_index(query.get("layer"), n_layer))])


def head_picker(workspace: Workspace, run, query: dict, prefix: str) -> html.Label:
    """The Head dropdown (id ``<prefix>-head``), set from the URL query."""
    _, n_head = shape_of(workspace, run)
    return html.Label(["Head", dcc.Dropdown(id=f"{prefix}-head", options=index_options(n_head, "head"),
                                            clearable=False, value=clamp_index(query.get("head"), n_head))])


def layer_head_pickers(workspace: Workspace, run, query: dict, prefix: str) -> list:
    """The Layer and Head dropdowns (ids ``<prefix>-layer`` / ``<prefix>-head``), set from the URL query."""
    return [layer_picker(workspace, run, query, prefix), head_picker(workspace, run, query, prefix)]


def head_choices(workspace: Workspace, run):
    """(layer options, head options) for the run picker's run."""
    require(run)
    return head_options(workspace, run)


def layer_choices(workspace: Workspace, run):
    """Layer options for the run picker's run."""
    return head_choices(workspace, run)[0]


def register_head_choices(app, workspace: Workspace, prefix: str, *, head: bool = True) -> None:
    """Refill ``<prefix>-layer`` (and ``<prefix>-head`` unless ``head`` is False) when the run changes."""
    run = Input("run-picker", "value")
    if head:
        app.callback(Output(f"{prefix}-layer", "options"), Output(f"{prefix}-head", "options"),
                     run)(bind(workspace, head_choices))
    else:
        app.callback(Output(f"{prefix}-layer", "options"), run)(bind(workspace, layer_choices))


def colour_cap(*maps: np.ndarray, sample: int = 200_000) -> float:
    """A shared top of the colour scale: the 99.5th percentile of the weights past the first rows.

    The first rows (a query sees 1..8 keys) always hold large weights and would wash out the scale.
    Large maps are read on a strided grid of about `sample` cells (a view, no copy).
    """
    values = []
    for m in maps:
        body = m[..., min(8, m.shape[-2] - 1):, :]
        stride = max(1, int(np.ceil(np.sqrt(body.size / sample))))
        values.append(body[..., ::stride, ::stride].ravel())
    values = np.concatenate(values)
    values = values[values > 0]
    return float(np.quantile(values, 0.995)) if values.size else 1.0


# ------------------------------------------------------------------ the prompt box
def initial_prompt(workspace: Workspace, query: dict) -> tuple[str, str, bool]:
    """(text shown, default prompt, whether the URL named one)."""
    default = workspace.probes.default_prompt(default_run(workspace, query))
    given = query.get("prompt")
    return (given if given else default), default, bool(given)


def prompt_box(workspace: Workspace, query: dict) -> html.Section:
    """The shared prompt: a text area, a run button, a note (length, truncation) and its stores."""
    text, default, from_url = initial_prompt(workspace, query)
    return html.Section(className="card prompt-card", children=[
        html.Div(className="prompt-row", children=[
            dcc.Textarea(id=PROMPT_TEXT, value=text, className="prompt-text", spellCheck=False,
                         placeholder="Type or paste text; it is cut to the first 1024 tokens of the run's tokenizer."),
            html.Div(className="prompt-side", children=[
                html.Button("Run prompt", id=PROMPT_RUN, className="prompt-run", n_clicks=0,
                            title="Probe the models on this text (also runs when the box loses focus)"),
                html.Button("Default text", id="model-prompt-reset", className="prompt-reset", n_clicks=0,
                            title="Back to the default passage of validation text"),
                html.Div(id=PROMPT_NOTE, className="prompt-note"),
            ]),
        ]),
        dcc.Store(id=PROMPT, data=PENDING),  # set once on load by the prompt callback
        dcc.Store(id=PROMPT_MEMORY, storage_type="session"),
        dcc.Store(id=PROMPT_FROM_URL, data=from_url),
        dcc.Store(id=PROMPT_DEFAULT, data=default),
    ])


def prompt_of(workspace: Workspace, stored: str | None, run: str | None = None) -> str:
    """The prompt to compute on: the committed one, or the default passage (skips while undecided)."""
    if stored == PENDING:
        raise PreventUpdate
    return stored if stored else workspace.probes.default_prompt(run)


def prompt_note(workspace: Workspace, stored: str | None, run: str | None = None) -> str:
    """'256 tokens (bytes)' in the run's tokenizer, or a note that the text was cut to the limit."""
    text = prompt_of(workspace, stored, run)
    ids, cut = workspace.probes.encode(text, run)
    unit = "bytes" if workspace.probes.tokenizer_for(run).kind == "bytes" else "BPE pieces"
    note = f"{len(ids)} tokens ({unit})" + ("" if stored else " of validation text")
    return note + (" -- cut to the first 1024" if cut else "")


_PROMPT_JS = """
function(nRun, nBlur, nReset, memory, text, fromUrl, current, dflt) {
    const nu = window.dash_clientside.no_update;
    const fired = (window.dash_clientside.callback_context.triggered || []).map(t => t.prop_id);
    const typed = fired.some(p => p.startsWith('model-prompt-text.') || p.startsWith('model-prompt-run.'));
    const reset = fired.some(p => p.startsWith('model-prompt-reset.'));
    const norm = (v) => (!v || v === dflt) ? null : v;
    if (typed || reset) {
        const v = norm(reset ? dflt : text);
        return [v === current ? nu : v, v, (reset && text !== dflt) ? dflt : nu];
    }
    if (current !== '__PENDING__') { return [nu, nu, nu]; }
    // page load, decided once: a prompt in the URL wins, else the one remembered in this tab
    if (fromUrl) { const v = norm(text); return [v, v, nu]; }
    let saved = memory;
    try {
        const raw = window.sessionStorage.getItem('model-prompt-memory');
        if (raw) { saved = JSON.parse(raw); }
    } catch (e) { saved = memory; }
    const v = norm(saved);
    return [v, nu, v ? v : nu];
}
"""


def register_prompt(app, workspace: Workspace) -> None:
    """Register the prompt box's callbacks once per app (every model page calls this)."""
    if getattr(app, "_model_prompt_registered", False):
        return
    app._model_prompt_registered = True
    app.clientside_callback(
        _PROMPT_JS,
        Output(PROMPT, "data"), Output(PROMPT_MEMORY, "data"), Output(PROMPT_TEXT, "value"),
        Input(PROMPT_RUN, "n_clicks"), Input(PROMPT_TEXT, "n_blur"), Input("model-prompt-reset", "n_clicks"),
        Input(PROMPT_MEMORY, "data"),
        State(PROMPT_TEXT, "value"), State(PROMPT_FROM_URL, "data"), State(PROMPT, "data"),
        State(PROMPT_DEFAULT, "data"),
    )
    app.callback(Output(PROMPT_NOTE, "children"), Input(PROMPT, "data"), Input("run-picker", "value"))(
        bind(workspace, prompt_note))
