"""Runs: every loaded checkpoint in one sortable, filterable table; pick two to compare them.

The table is a Dash AG Grid filled from the checkpoints' JSON (workbench.data.runs_table); no
weights are loaded. Ticking two rows sets the global pickers -- the first row picked becomes
Run and Checkpoint, the second Compare with -- and lists the settings that differ between them;
a picker changed in its dropdown ticks the rows it names.
The picked rows live in the URL (``rows=tau@1500,dot@1500``, beside the pickers), so the view can be
bookmarked.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import dash_ag_grid as dag
from dash import Input, Output, State, dcc, html, no_update

from workbench.data import runs_table

from . import model_shared as ms
from .common import register_url_sync
from .shell import NONE

if TYPE_CHECKING:
    from workbench.data import Workspace

PAGE = dict(id="runs", requires="runs", path="/runs", name="Runs", order=29,
            description="Every run and checkpoint in one table: settings, size, bits per byte, speed, "
                        "KV bytes; pick two to compare them.")
GRID = "runs-grid"
PICKED = "runs-picked"
AUTO_HEIGHT_ROWS = 30  # up to this many rows the grid is as tall as its rows, else it scrolls
GRID_HEIGHT_PX = 620

NUMBER = "params.value == null ? '\u2014' : d3.format('{fmt}')(params.value)"
TEXT = "params.value == null ? '\u2014' : String(params.value)"
YES_NO = "params.value == null ? '\u2014' : (params.value ? 'yes' : 'no')"


def _col(field: str, header: str, *, fmt: str | None = None, flag: bool = False, tip: str | None = None,
         **extra) -> dict:
    """One column: numbers right-aligned with a d3 format and a number filter, else text."""
    col = {"field": field, "headerName": header, "headerTooltip": tip or header}
    if fmt is not None:
        col.update(filter="agNumberColumnFilter", type="numericColumn",
                   valueFormatter={"function": NUMBER.format(fmt=fmt)})
    elif flag:
        col.update(filter=False, cellDataType=False, valueFormatter={"function": YES_NO})
    else:
        col.update(filter="agTextColumnFilter", floatingFilter=True, valueFormatter={"function": TEXT})
    col.update(extra)
    return col


COLUMNS = [
    {"headerName": "Checkpoint", "children": [
        _col("run", "run", pinned="left", sort="asc", sortIndex=0, tip="Run name (filter here to show one run)"),
        _col("step", "step", fmt=",d", pinned="left", sort="asc", sortIndex=1),
        _col("latest", "latest", flag=True, pinned="left", tip="The run's latest checkpoint"),
    ]},
    {"headerName": "Quality, speed, size", "children": [
        _col("val_bpb", "val bpb", fmt=".3f", tip="Validation bits per byte at the last evaluation up to this step"),
        _col("val_loss", "val loss", fmt=".3f", tip="Validation loss (nats per token)"),
        _col("tokens_per_s", "tokens/s", fmt=",.0f", tip="Median training tokens/s of the evaluations up to this step"),
        _col("parameters", "parameters", fmt=",d", tip="Trainable parameters (from the config)"),
        _col("kv_bytes_per_token", "KV B/token", fmt=",d",
             tip="KV-cache bytes per position, all layers, float32 (dot: K and V; tau: V and lambda_k)"),
    ]},
    {"headerName": "Attention settings", "children": [
        _col("attention", "attention", tip="tau (Tauformer) or dot (dot-product)"),
        _col("tau_mode", "tau mode"),
        _col("tau", "tau", fmt=".3~g", tip="Fixed tau (the starting value of a calibrated one)"),
        _col("temperature", "T init", fmt=".3~g", tip="Initial attention temperature"),
        _col("learn_temperature", "T learned", flag=True, tip="Whether the temperature is trained"),
        _col("temperature_at_step", "T at step", fmt=".3~g", tip="Mean temperature over heads at this step"),
        _col("laplacian", "Laplacian", tip="domain (a domain memory) or chain (the path graph)"),
    ]},
    {"headerName": "Shape", "children": [
        _col("n_layer", "layers", fmt="d"), _col("n_head", "heads", fmt="d"),
        _col("n_kv_head", "kv heads", fmt="d"), _col("head_dim", "D", fmt="d", tip="Head dimension"),
        _col("n_embd", "C", fmt=",d", tip="Embedding width"), _col("block_size", "context", fmt=",d")]},
    {"headerName": "Tokenizer", "children": [
        _col("tokenizer", "kind"), _col("vocab_size", "vocab", fmt=",d"),
    ]},
    {"headerName": "Domain memory", "children": [
        _col("domain_name", "name"),
        _col("domain_fingerprint", "fingerprint", tip="First 12 hex digits of the domain memory's fingerprint"),
    ]},
    {"headerName": "Training", "children": [
        _col("train_steps", "steps", fmt=",d"), _col("lr", "lr", fmt=".2~e"),
        _col("batch_size", "batch", fmt="d"), _col("seed", "seed", fmt="d"),
    ]},
    {"headerName": "", "children": [_col("problem", "problem", tip="Why a checkpoint's config could not be read")]},
]
GRID_FIELDS = [c["field"] for group in COLUMNS for c in group["children"]]


def layout(workspace: Workspace, **query):
    if (page := ms.no_runs(workspace, "Runs")) is not None:
        return page
    rows = table_rows(workspace)
    picked = initial_pick(workspace, query, {r["id"] for r in rows})
    n_runs = len({r["run"] for r in rows})
    auto = len(rows) <= AUTO_HEIGHT_ROWS
    return html.Div(className="model-page runs-page", children=[
        html.H1("Runs"),
        html.P("One row per checkpoint of every loaded run, read from the checkpoints' config and history "
               "(no weights are loaded). Sort or filter by any column; tick two rows to compare them: the first "
               "ticked sets Run and Checkpoint, the second Compare with, and their differing settings are "
               "listed below.", className="lead"),
        html.Section(className="card", id="card-runs-table", children=[
            html.Div(className="card-head", children=[
                html.H3("Checkpoints"),
                html.Div(className="export", children=[
                    html.Button("Download CSV", id="runs-csv-button", className="export-button",
                                title="Every row with its unrounded numbers, as CSV"),
                    dcc.Download(id="runs-csv"),
                ]),
            ]),
            html.P(f"{len(rows)} checkpoints of {n_runs} runs.", className="card-description"),
            dag.AgGrid(
                id=GRID, rowData=[grid_row(r) for r in rows], columnDefs=COLUMNS,
                getRowId="params.data.id", selectedRows={"ids": picked},
                defaultColDef={"sortable": True, "resizable": True, "minWidth": 70},
                dashGridOptions={"rowSelection": {"mode": "multiRow", "headerCheckbox": False,
                                                  "enableClickSelection": False},
                                 "selectionColumnDef": {"pinned": "left", "headerTooltip": "Tick two rows to compare"},
                                 "domLayout": "autoHeight" if auto else "normal", "tooltipShowDelay": 300,
                                 "animateRows": False},
                columnSize="autoSize", className="runs-grid",
                style={"width": "100%"} if auto else {"width": "100%", "height": f"{GRID_HEIGHT_PX}px"},
            ),
        ]),
        html.Section(className="card", id="card-runs-diff", children=[
            html.Div(className="card-head", children=[html.H3("Settings that differ")]),
            html.Div(id="runs-diff", children=diff_view(workspace, picked)),
        ]),
        dcc.Store(id=PICKED, data=picked),
        dcc.Store(id="runs-url"),
    ])


# ------------------------------------------------------------------ data for the page
def table_rows(workspace: Workspace) -> list[dict]:
    """Every checkpoint's row (workbench.data.runs_table), cached there by the checkpoints' refs."""
    return runs_table.checkpoint_rows(workspace)


def grid_row(row: dict) -> dict:
    """What the grid shows of a row: its id and columns (the settings stay on the server)."""
    return {"id": row["id"], **{field: row.get(field) for field in GRID_FIELDS}}


def initial_pick(workspace: Workspace, query: dict, ids: set) -> list[str]:
    """The rows ticked on load: Run at Checkpoint and Compare with at its nearest step (from the
    URL, else the default tau run and its twin) -- or the URL's ``rows`` when they name those two
    runs and that checkpoint (they also keep the compared run's own step), so the ticks on load
    never disagree with the pickers."""
    runs = workspace.runs
    run = ms.default_run(workspace, query)
    step = runs.nearest_step(run, _int(query.get("step")))
    compare = query.get("compare")
    other = None if compare == NONE else (compare if compare in runs.names() and compare != run else runs.pair_for(run))
    picked = [runs_table.row_id(run, step)]
    if other:
        picked.append(runs_table.row_id(other, runs.nearest_step(other, step)))
    wanted = [r for r in str(query.get("rows") or "").split(",") if r in ids]
    pair = [runs_table.parse_row_id(r) for r in wanted]
    if len(wanted) == 2 and other and pair[0] == (run, step) and pair[1][0] == other:
        return wanted
    return [p for p in picked if p in ids]


def _int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def picked_order(previous, selected) -> list[str]:
    """The ticked rows in the order they were ticked, at most the last two: rows still ticked
    keep their place, newly ticked ones follow (in the grid's order)."""
    ids = [r.get("id") if isinstance(r, dict) else r for r in (selected or [])]
    ids = [i for i in ids if isinstance(i, str)]
    kept = [i for i in (previous or []) if i in ids]
    order = kept + [i for i in ids if i not in kept]
    return order[-2:]


def on_select(workspace: Workspace, selected, previous):
    """(picked store, grid selection): the new order, and the grid trimmed to it when a third row
    was ticked; nothing changes when the selection is what the store already holds."""
    order = picked_order(previous, selected)
    n_selected = len([r for r in selected or [] if isinstance(r, dict)])
    if order == list(previous or []) and n_selected == len(order):
        return no_update, no_update
    return order, ({"ids": order} if n_selected > len(order) else no_update)


def pickers_for(workspace: Workspace, picked, run_now, step_now, compare_now):
    """(run, step, compare) picker values for two picked rows: the first sets Run and Checkpoint,
    the second Compare with. Two checkpoints of one run set Run and Checkpoint only (a run is never
    compared with itself); a picker already showing its value is left alone."""
    pair = [runs_table.parse_row_id(p) for p in (picked or [])]
    pair = [p for p in pair if p is not None and p[0] in workspace.runs.names()]
    if len(pair) != 2:
        return no_update, no_update, no_update
    (run, step), (other, _) = pair
    compare = other if other != run else (compare_now if compare_now != run else no_update)
    return (run if run != run_now else no_update, step if step != step_now else no_update,
            compare if compare != compare_now else no_update)


def follow_pickers(workspace: Workspace, run, step, compare, picked):
    """(grid selection, picked store) when the pickers were changed elsewhere (the dropdowns):
    tick Run at Checkpoint and Compare with at its nearest step. Nothing changes while a picker is
    still empty or when the ticks already name them (the first row Run at Checkpoint, the second
    the compared run -- or another checkpoint of Run)."""
    if run is None or step is None or run not in workspace.runs.names():
        return no_update, no_update
    pair = [runs_table.parse_row_id(p) for p in (picked or [])]
    if pair and pair[0] == (run, step) and (compare in (None, NONE) or (len(pair) == 2 and pair[1][0] in (compare, run))):
        return no_update, no_update
    ids = {r["id"] for r in table_rows(workspace)}
    ticks = initial_pick(workspace, {"run": run, "step": step, "compare": compare}, ids)
    return ({"ids": ticks}, ticks) if ticks != list(picked or []) else (no_update, no_update)


def diff_view(workspace: Workspace, picked) -> list:
    """The differing settings of the two picked rows as a table (a hint with fewer than two)."""
    ids = [p for p in (picked or []) if isinstance(p, str)]
    if len(ids) != 2:
        return [html.P("Tick two rows of the table to list the settings in which they differ.", className="muted")]
    a, b = (runs_table.settings_of(workspace, i) for i in ids)
    if a is None or b is None:
        return [html.P("A picked checkpoint is no longer loaded.", className="muted")]
    diff = runs_table.settings_diff(a, b)
    if not diff:
        return [html.P(f"{ids[0]} and {ids[1]} have the same settings.", className="muted")]
    body = [html.Tr([html.Th(d["setting"]), html.Td(show(d["a"])), html.Td(show(d["b"]))]) for d in diff]
    return [html.P(f"{len(diff)} of {len(set(a) | set(b))} settings differ.", className="card-description"),
            html.Table(className="runs-diff-table", children=[
                html.Thead(html.Tr([html.Th("setting"), html.Th(ids[0]), html.Th(ids[1])])), html.Tbody(body)])]


def show(value) -> str:
    """A setting as text: '\u2014' for unset, yes / no, numbers without trailing noise."""
    if value is None:
        return "\u2014"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def csv_download(workspace: Workspace, n_clicks):
    """The table as CSV (dcc.Download data), every row and column, numbers unrounded."""
    if not n_clicks:
        return no_update
    return dict(content=runs_table.rows_csv(table_rows(workspace)), filename="runs.csv", type="text/csv")


# ------------------------------------------------------------------ callbacks
def register_callbacks(app, workspace: Workspace) -> None:
    app.callback(Output(PICKED, "data"), Output(GRID, "selectedRows"),
                 Input(GRID, "selectedRows"), State(PICKED, "data"),
                 prevent_initial_call=True)(ms.bind(workspace, on_select))
    app.callback(Output("run-picker", "value", allow_duplicate=True),
                 Output("step-picker", "value", allow_duplicate=True),
                 Output("compare-picker", "value", allow_duplicate=True),
                 Input(PICKED, "data"), State("run-picker", "value"), State("step-picker", "value"),
                 State("compare-picker", "value"), prevent_initial_call=True)(ms.bind(workspace, pickers_for))
    app.callback(Output(GRID, "selectedRows", allow_duplicate=True), Output(PICKED, "data", allow_duplicate=True),
                 Input("run-picker", "value"), Input("step-picker", "value"), Input("compare-picker", "value"),
                 State(PICKED, "data"), prevent_initial_call=True)(ms.bind(workspace, follow_pickers))
    app.callback(Output("runs-diff", "children"), Input(PICKED, "data"),
                 prevent_initial_call=True)(ms.bind(workspace, diff_view))
    app.callback(Output("runs-csv", "data"), Input("runs-csv-button", "n_clicks"),
                 prevent_initial_call=True)(ms.bind(workspace, csv_download))
    register_url_sync(app, "runs-url", [("rows", PICKED, "data")])


# ------------------------------------------------------------------ bench
def bench_cases(workspace: Workspace) -> list:
    names = workspace.runs.names()  # ids from the run list, so the first case times the cold table
    first = runs_table.row_id(names[-1], workspace.runs.info(names[-1]).steps[-1])
    second = runs_table.row_id(names[0], workspace.runs.info(names[0]).steps[0])
    return [
        ("runs: table rows", lambda: [grid_row(r) for r in table_rows(workspace)]),
        ("runs: page layout", lambda: layout(workspace)),
        ("runs: tick a second row", lambda: on_select(workspace, [{"id": first}, {"id": second}], [first])),
        ("runs: set the pickers", lambda: pickers_for(workspace, [first, second], None, None, None)),
        ("runs: follow the pickers", lambda: follow_pickers(
            workspace, names[0], workspace.runs.info(names[0]).steps[0], names[-1], [first])),
        ("runs: settings diff", lambda: diff_view(workspace, [first, second])),
        ("runs: CSV download", lambda: csv_download(workspace, 1)),
    ]


def warm_up(workspace: Workspace) -> None:
    """Read every checkpoint's JSON once in the background (600 checkpoints take seconds)."""
    if workspace.runs.names():
        table_rows(workspace)
