"""Upload an embedding or a text corpus and build its domain memory (a card on the Domain page).

Three steps, each a callback: receive (check the file and its declared array sizes, store
it under the cache dir: fast, in the server), build (a job in the workspace's in-process
job registry, polled by a dcc.Interval that drives the progress bar; builds run one at a
time and a second one is told it is queued) and register (add the built memory to the
workspace and select it in the domain picker). A file built before with the same request
skips the build. Nothing of a job is stored on disk but the upload and its domain memory.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pathlib import Path

from dash import Input, Output, State, ctx, dcc, html, no_update
from dash.exceptions import PreventUpdate

from workbench.data import uploads
from workbench.data.cache_size import trim_workspace_cache
from workbench.data.errors import TauformerError
from workbench.data.jobs import JobRegistry

if TYPE_CHECKING:
    from workbench.data import Workspace


def upload_card(workspace: Workspace) -> html.Section:
    limit = uploads.limit_text(workspace.max_upload_mb)
    return html.Section(className="card upload-card", id="card-domain-upload", children=[
        html.Div(className="card-head", children=[html.H3("Add a domain memory")]),
        html.P(["Upload an embedding (", html.Code(".npy .npz .safetensors .parquet .csv"),
                ": one row per item) or a UTF-8 text corpus (", html.Code(".txt .md"),
                (": one item per paragraph). The app builds its domain memory (PCA to D, each feature "
                 "joined to its 6 nearest, eps 1.0, sigma 0.5, as the demo), keeps it in its cache and "
                 "selects it.")], className="card-description"),
        html.P(f"Files up to {limit}.", className="upload-limit", id="upload-limit"),
        html.Div(className="card-controls", children=[
            html.Label(["Laplacian size D", dcc.Input(id="upload-dim", type="number", min=2, step=1,
                                                      placeholder="auto", debounce=True,
                                                      className="dim-input")]),
            html.Button("Rebuild with this D", id="upload-rebuild", className="secondary-button",
                        disabled=True),
        ]),
        html.P(id="upload-dim-hint", className="hint"),
        # no ``accept`` filter: a file of the wrong kind gets a message instead of silence
        dcc.Upload(id="domain-upload", multiple=False, className="upload-drop",
                   className_active="upload-drop active",
                   children=html.Div(["Drop a file here or ", html.Span("choose one", className="link")])),
        html.Div(className="upload-progress", id="upload-progress-row", style={"display": "none"}, children=[
            html.Progress(id="upload-progress", value="0", max=str(len(uploads.BUILD_PHASES))),
            html.Span(id="upload-progress-label", className="muted"),
        ]),
        html.Div(id="upload-message", className="upload-message", role="status"),
        dcc.Store(id="upload-job"), dcc.Store(id="upload-result"), dcc.Store(id="upload-last"),
        dcc.Store(id="upload-payload"),
        dcc.Store(id="upload-limit", data={"bytes": int(workspace.max_upload_mb * 2**20), "text": limit}),
        dcc.Interval(id="upload-poll", interval=500, disabled=True),
    ])


def head_dim(workspace: Workspace, run) -> int | None:
    """The head dim of ``run``, or None."""
    if not run or run not in workspace.runs.names():
        return None
    return workspace.runs.info(run).model.head_dim


def dim_hint(workspace: Workspace, run) -> str:
    hd = head_dim(workspace, run)
    if hd:
        return (f"Empty D = automatic: {hd}, the head dim of run {run}, when the embedding has that "
                f"many features, else min(features, {uploads.DEFAULT_DIM}).")
    return f"Empty D = automatic: min(features, {uploads.DEFAULT_DIM})."


def message(kind: str, *parts) -> html.Div:
    return html.Div(className=f"upload-{kind}", children=list(parts))


def receive(workspace: Workspace, contents, filename, dim, run, last=None, rebuild=False):
    """Check and store an upload (or re-use the last one for a rebuild).

    Returns (job, result, message, last): ``job`` starts the background build, ``result``
    is set directly when this file was built before with the same request.
    """
    hd = head_dim(workspace, run)
    try:
        if rebuild:
            if not last:
                raise PreventUpdate
            job = uploads.make_job(last["sha"], last["suffix"], last["filename"], last["size"],
                                   uploads.parse_dim(dim), hd)
        else:
            if not contents:
                raise PreventUpdate
            job = uploads.receive_upload(workspace.cache_dir, contents, filename, dim=dim, head_dim=hd,
                                         max_mb=workspace.max_upload_mb)
    except TauformerError as err:
        return no_update, no_update, message("error", str(err)), no_update
    last = {"sha": job.sha, "suffix": job.suffix, "filename": job.filename, "size": job.size}
    trim_workspace_cache(workspace, [uploads.upload_dir(workspace.cache_dir) / f"{job.sha}{job.suffix}"])
    done = uploads.finished(workspace.cache_dir, job)
    if done is not None:
        result = {"path": str(done), "name": uploads.display_name(job.filename), "cached": True}
        return no_update, result, message("info", f"{job.filename}: built before, loading it."), last
    size = f"{job.size / 2**20:.1f} MB" if job.size >= 2**20 else f"{job.size / 1024:.0f} KB"
    return job.to_dict(), no_update, message("info", f"{job.filename} ({size}) received; building..."), last


def build(cache_dir, set_progress, job):
    """The background build: progress through the phases, then the result (or an error)."""
    if not job:
        raise PreventUpdate
    job = uploads.UploadJob.from_dict(job)

    def report(step, total, text):
        set_progress((str(step), str(total), text))

    try:
        path = uploads.build_upload(cache_dir, job, progress=report)
    except TauformerError as err:
        return {"error": str(err)}
    except (MemoryError, OSError, ValueError) as err:  # reported, never a crash of the app
        return {"error": f"{job.filename}: {type(err).__name__}: {err}"}
    return {"path": str(path), "name": uploads.display_name(job.filename), "cached": False}


def poll(workspace: Workspace, registry, job):
    """Submit ``job`` (once) to the job registry and report where it stands.

    Returns (progress value, progress max, label, progress-row style, upload disabled,
    poll disabled, result): ``result`` is no_update until the build has finished.
    """
    if not job:
        raise PreventUpdate
    parsed = uploads.UploadJob.from_dict(job)  # DomainError on a forged job: caught by the caller
    cache_dir = Path(workspace.cache_dir)
    state = registry.poll(parsed.key)
    if state is None:
        state = registry.submit(parsed.key, lambda progress: build(
            cache_dir, lambda p: progress(int(p[0]), int(p[1]), p[2]), job))
    hidden, shown = {"display": "none"}, {"display": "flex"}
    total = str(len(uploads.BUILD_PHASES))
    if state.state == "queued":
        return "0", total, f"queued: {state.position} build(s) ahead", shown, True, False, no_update
    if state.state == "running":
        return str(state.step), str(state.total), state.text, shown, True, False, no_update
    registry.forget(parsed.key)  # its domain directory now answers a repeat at once
    trim_workspace_cache(workspace, [uploads.domain_dir(cache_dir, parsed.key)])
    if state.state == "failed":
        result = {"error": f"{parsed.filename}: {type(state.result).__name__}: {state.result}"}
    else:
        result = state.result
    return total, total, "", hidden, False, True, result


def register(workspace: Workspace, result):
    """Add a built domain memory to the workspace and select it; (options, value, message).

    ``result`` comes back from the browser, so its path must be a built upload inside
    this workspace's cache directory; anything else is refused.
    """
    if not result:
        raise PreventUpdate
    if "error" in result:
        return no_update, no_update, message("error", result["error"])
    path = uploads.built_path(workspace.cache_dir, result.get("path"))
    if path is None:
        return no_update, no_update, message("error", "the build result names no upload of this app")
    name = workspace.domains.add(path, name=uploads.display_name(result.get("name", "upload")))
    memory, problem = workspace.domains.try_load(name) if name else (None, "the built file is missing")
    if memory is None:
        return no_update, no_update, message("error", f"{result['name']}: {problem}")
    options = [{"label": n, "value": n} for n in workspace.domains.names()]
    items = len(memory.items) if memory.has_items else 0
    text = (f"{name}: D = {memory.dim}, {items:,} items" + (" (from the cache)" if result.get("cached") else "")
            + "; selected in the domain picker.")
    return options, name, message("done", text)


_SIZE_CHECK_JS = """
function(contents, filename, limit) {
    const nu = window.dash_clientside.no_update;
    if (!contents) { return [nu, nu, nu]; }
    const bytes = Math.floor((contents.length - contents.indexOf(',') - 1) * 3 / 4);
    if (bytes <= limit.bytes + 4) { return [{contents: contents, filename: filename}, nu, nu]; }
    const text = `${filename}: ${(bytes / 1048576).toFixed(1)} MB is over the upload limit of ${limit.text} ` +
                 '(start the app with --max-upload-mb to change it)';
    const div = {namespace: 'dash_html_components', type: 'Div', props: {className: 'upload-error', children: text}};
    return [nu, div, null];
}
"""
"""Checks an upload's size in the browser: a file over the limit is never sent (the server
would refuse a request that large with 413 and the card would say nothing)."""


def register_callbacks(app, workspace: Workspace) -> None:
    registry = JobRegistry()
    app.clientside_callback(
        _SIZE_CHECK_JS,
        Output("upload-payload", "data"), Output("upload-message", "children", allow_duplicate=True),
        Output("domain-upload", "contents", allow_duplicate=True),
        Input("domain-upload", "contents"), State("domain-upload", "filename"), State("upload-limit", "data"),
        prevent_initial_call=True)

    @app.callback(Output("upload-dim-hint", "children"), Input("run-picker", "value"))
    def _hint(run):
        return dim_hint(workspace, run)

    @app.callback(Output("upload-job", "data"), Output("upload-result", "data"),
                  Output("upload-message", "children"), Output("upload-last", "data"),
                  Output("domain-upload", "contents"), Output("upload-rebuild", "disabled"),
                  Input("upload-payload", "data"), Input("upload-rebuild", "n_clicks"),
                  State("upload-dim", "value"), State("run-picker", "value"), State("upload-last", "data"),
                  prevent_initial_call=True)
    def _receive(payload, _clicks, dim, run, last):
        rebuild = ctx.triggered_id == "upload-rebuild"
        contents, filename = (payload or {}).get("contents"), (payload or {}).get("filename")
        job, result, text, new_last = receive(workspace, contents, filename, dim, run, last, rebuild)
        has_last = bool(new_last if new_last is not no_update else last)
        return job, result, text, new_last, None, not has_last

    @app.callback(Output("upload-progress", "value"), Output("upload-progress", "max"),
                  Output("upload-progress-label", "children"), Output("upload-progress-row", "style"),
                  Output("domain-upload", "disabled"), Output("upload-poll", "disabled"),
                  Output("upload-result", "data", allow_duplicate=True),
                  Input("upload-job", "data"), Input("upload-poll", "n_intervals"),
                  prevent_initial_call=True)
    def _poll(job, _n):
        try:
            return poll(workspace, registry, job)
        except TauformerError as err:
            return "0", "1", "", {"display": "none"}, False, True, {"error": str(err)}

    @app.callback(Output("domain-picker", "options", allow_duplicate=True),
                  Output("domain-picker", "value", allow_duplicate=True),
                  Output("upload-message", "children", allow_duplicate=True),
                  Input("upload-result", "data"), prevent_initial_call=True)
    def _register(result):
        return register(workspace, result)
