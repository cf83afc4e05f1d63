"""Batch export of every page's figures, for a paper: ``python -m workbench export``.

    python -m workbench export --run DIR --domain FILE --out DIR [--formats pdf,svg,png,csv,html]
        [--prompt TEXT] [--step N] [--compare RUN|none] [--layer L] [--head H] [--token T]
        [--eig 1] [--color lambda] [--columns 1] [--scale 2]

Every card registered in :mod:`workbench.views.cards` is built by its own recipe from this
export's state (run, step, compared run, prompt, layer, head, token, domain, eigenvector...),
so a file is the figure the page shows for those keys. Placeholder figures ("nothing to
compare", "not a tau model") are skipped and listed in the manifest. Files are named by
:func:`workbench.views.cards.export_file_name` (as the Export button names its download):
``<card>_<run>_step<N>_L<layer>_H<head>`` (the parts the figure depends on), rendered in
the paper theme (CSV: the figure's numbers, by the card's own table where its recipe names one;
HTML: the screen figure as an interactive page); ``manifest.json`` records the checkpoint, the domain memory, the Laplacian
the model figures use, the prompt text, each figure's keys and the code version. Without
--run and --domain it exports the bundled demo.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import argparse
import importlib.metadata
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

from dash.exceptions import PreventUpdate

from workbench import cli
from workbench.data.errors import TauformerError

if TYPE_CHECKING:
    from workbench.data import Workspace

COMMAND = "export"
EXTRA_PACKAGES = ("scipy", "networkx", "umap-learn", "torch")
NOTHING = "none"  # --compare none: compare with nothing
REPO = Path(__file__).resolve().parents[1]


def register(subparsers) -> None:
    """The ``export`` sub-command of ``python -m workbench``."""
    p = cli.add_command(subparsers, COMMAND, "Write the workbench's figures as paper-ready files with a manifest.",
                        run)
    p.add_argument("--run", default=None, metavar="DIR",
                   help="a run directory or a folder of runs (default: the demo's, unless --domain is given)")
    p.add_argument("--domain", default=None, metavar="FILE",
                   help="a domain-memory file or directory (default: the demo's, unless --run is given)")
    p.add_argument("--out", required=True, metavar="DIR", help="where the figures and manifest.json go")
    p.add_argument("--formats", default="pdf",
                   help="comma-separated: pdf, svg, png (paper figures), csv (the numbers), html (interactive page)")
    p.add_argument("--prompt", default=None, help="the prompt the model pages analyse (default: validation text)")
    p.add_argument("--step", type=int, default=None, help="checkpoint step (default: the latest)")
    p.add_argument("--compare", default=None, metavar="RUN",
                   help="the run compared with (default: the run's tau/dot twin; 'none' for nothing)")
    p.add_argument("--layer", type=int, default=0, help="layer of the per-head figures")
    p.add_argument("--head", type=int, default=0, help="head of the per-head figures")
    p.add_argument("--token", type=int, default=None, help="token of the per-token figures (default: the last)")
    p.add_argument("--eig", type=int, default=1, help="eigenvector painted on the feature graph (1: Fiedler)")
    p.add_argument("--color", default="lambda", help="item-map colour: lambda, energy, cluster or label")
    p.add_argument("--columns", type=int, choices=(1, 2), default=1, help="paper width: 1 (3.5 in) or 2 (7.16 in)")
    p.add_argument("--scale", type=float, default=2, help="PNG pixel density, 1-4 (SVG / PDF keep their size)")
    p.add_argument("--cache-dir", default=None, help="cache for item layouts (default: the app's temp folder)")
    p.add_argument("--quiet", action="store_true", help="no progress output")


def parse_args(argv=None) -> argparse.Namespace:
    """The arguments of ``python -m workbench export ARGV``."""
    return cli.parse_one(register, COMMAND, argv)


def head_dim(workspace: Workspace, run: str) -> int:
    return workspace.runs.info(run).model.head_dim


def checkpoint_laplacian(workspace: Workspace, run: str, step: int) -> dict:
    """The Laplacian a run's checkpoint measures lambda against, as its config.json records it."""
    info = workspace.runs.info(run)
    config = json.loads((workspace.runs.checkpoint_path(run, step) / "config.json").read_text())
    record = config.get("domain") or {}
    if info.attention != "tau":
        return {"source": "none", "note": f"{run} is a dot-product model: it has no Laplacian"}
    return {"source": "checkpoint", "kind": record.get("laplacian", "chain"), "name": record.get("name"),
            "fingerprint": record.get("fingerprint"), "dim": head_dim(workspace, run)}


def choose_laplacian(workspace: Workspace, run, step, domain, warn) -> tuple[str, dict]:
    """(what-if Laplacian key, manifest record): the --domain when it fits the head dim, else the checkpoint's."""
    own = checkpoint_laplacian(workspace, run, step)
    if own["source"] == "none" or not domain:
        return "model", {**own, "used_by_whatif": "checkpoint"}
    memory = workspace.domains.load(domain)
    record = {"source": "domain", "name": domain, "fingerprint": memory.fingerprint, "dim": memory.dim}
    if memory.dim != own["dim"]:
        warn(f"warning: domain memory {domain!r} has D = {memory.dim} but run {run!r} has head dim {own['dim']}: "
             "the model figures use the checkpoint's own Laplacian")
        return "model", {**own, "used_by_whatif": "checkpoint",
                         "domain_mismatch": f"{domain}: D = {memory.dim}, head dim {own['dim']}"}
    if memory.fingerprint == own["fingerprint"]:
        return "model", {**own, "used_by_whatif": "checkpoint", "domain_is_checkpoints": True}
    return f"domain:{domain}", {**own, "used_by_whatif": "domain", "whatif": record}


def build_state(workspace: Workspace, args, warn=lambda message: None) -> dict:
    """The keys every card is built from: run, step, compared run, domain, prompt and page parameters."""
    from workbench.views.shell import NONE

    runs = workspace.runs
    run = None
    if runs.names():
        tau, dot = runs.default_pair()
        run = tau or dot or runs.names()[0]
    step = runs.nearest_step(run, args.step) if run else None
    compare = None
    if run:
        if args.compare is None:
            compare = runs.pair_for(run) or NONE
        elif args.compare.lower() == NOTHING:
            compare = NONE
        elif args.compare in runs.names():
            compare = args.compare
        else:
            raise TauformerError(f"--compare {args.compare}: no such run (loaded: {', '.join(runs.names())}, or none)")
    domains = workspace.domains.names()
    domain = domains[0] if domains else None
    state = {"run": run, "step": step, "compare": compare, "domain": domain,
             "prompt": args.prompt, "layer": args.layer, "head": args.head, "token": args.token,
             "eig": args.eig, "color": args.color}
    if run:
        state.update(selection(workspace, run, args))
        state["laplacian"], state["_laplacian_record"] = choose_laplacian(workspace, run, step, domain, warn)
        if state["laplacian"] != "model":
            state["temperature"] = 0.0  # the what-if then changes the Laplacian only
    return state


def selection(workspace: Workspace, run: str, args) -> dict:
    """The prompt text, layer, head and token as the figures will use them (clamped to the run's
    shape and the prompt's length; the last token when none is given), so names and the
    manifest say what a figure shows."""
    from workbench.views import model_shared as ms

    prompt = args.prompt if args.prompt else workspace.probes.default_prompt(run)
    n_tokens = len(workspace.probes.encode(prompt)[0])
    n_layer, n_head = ms.shape_of(workspace, run)
    token = n_tokens - 1 if args.token is None else args.token
    return {"prompt": prompt, "layer": ms.clamp_index(args.layer, n_layer), "head": ms.clamp_index(args.head, n_head),
            "token": ms.clamp_index(token, n_tokens)}


def collect_figures(workspace: Workspace, state: dict, log=lambda message: None) -> tuple[dict, dict, dict]:
    """(figures by file stem, manifest entry of each, skipped card -> reason) for every page's cards."""
    from workbench.views import cards, pages_with_data

    figures, entries, skipped = {}, {}, {}
    for module in pages_with_data(workspace):
        path = module.__name__
        t0, count = time.perf_counter(), 0
        for made in cards.page_recipes(module.PAGE["id"]):
            if not made.in_batch:
                continue
            values = cards.batch_values(made, workspace, state)
            try:
                outputs = made.outputs(workspace, values)
            except PreventUpdate:
                skipped.update({card: "nothing selected" for card in made.cards})
                continue
            for card, fig in zip(made.cards, outputs):
                if cards.is_placeholder(fig):
                    skipped[card] = cards.placeholder_text(fig)
                    log(f"skipped {card}: {skipped[card]}")
                    continue
                stem = cards.file_stem(card, values)
                if stem in figures:
                    raise TauformerError(f"two cards export a figure named {stem!r} "
                                         f"({entries[stem]['page']} and {path})")
                figures[stem] = fig
                entries[stem] = {"card": card, "page": path, "title": cards.export_title(card, fig, values),
                                 "keys": {k: v for k, v in values.items() if k != "prompt" and _jsonable(v)}}
                count += 1
        log(f"{path}: {count} figure(s) in {time.perf_counter() - t0:.1f} s")
    return figures, entries, skipped


def _jsonable(value) -> bool:
    try:
        json.dumps(value)
        return True
    except TypeError:
        return False


def package_versions() -> dict:
    from workbench.data.version import TAUFORMER_VERSION

    versions = {"python": platform.python_version(), "tauformer": TAUFORMER_VERSION}
    for name in EXTRA_PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def code_version() -> dict:
    """The package version and, in a git checkout, the commit and whether files differ from it."""
    from workbench.data.version import TAUFORMER_VERSION

    record = {"tauformer": TAUFORMER_VERSION, "git_commit": None, "git_dirty": None}
    try:
        commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True,
                                text=True, timeout=10)
        if commit.returncode == 0:
            record["git_commit"] = commit.stdout.strip()
            status = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                                    capture_output=True, text=True, timeout=20)
            record["git_dirty"] = bool(status.stdout.strip()) if status.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        pass  # no git, or not a checkout: the package version alone
    return record


def manifest(workspace: Workspace, state: dict, args, entries: dict, skipped: dict) -> dict:
    """What the figures show and how they were made (export_figures adds versions and files)."""
    checkpoint = None
    if state["run"]:
        checkpoint = {"run": state["run"], "step": state["step"],
                      "compared_with": None if str(state["compare"]).startswith("__") else state["compare"],
                      "path": str(workspace.runs.checkpoint_path(state["run"], state["step"]))}
    domain = None
    if state["domain"]:
        memory = workspace.domains.load(state["domain"])
        domain = {"name": state["domain"], "path": str(workspace.domains.path(state["domain"])),
                  "fingerprint": memory.fingerprint, "dim": memory.dim, "params": memory.params}
    return {
        "checkpoint": checkpoint,
        "domain": domain,
        "laplacian": state.get("_laplacian_record"),
        "prompt": state["prompt"],
        "prompt_source": "--prompt" if args.prompt else "validation text",
        "parameters": {"layer": state["layer"], "head": state["head"], "token": state["token"],
                       "eig": state["eig"], "color": state["color"], "formats": args.formats,
                       "columns": args.columns, "scale": args.scale},
        "figures": entries,
        "skipped": skipped,
        "code": code_version(),
        "packages": package_versions(),
    }


def main(argv=None) -> int:
    """``python -m workbench export ARGV`` (argv None: the command line)."""
    return cli.run_one(register, COMMAND, argv)


def run(args: argparse.Namespace) -> int:
    """Export every page's figures for the parsed arguments: 0, or 2 after a one-line error."""
    from workbench.export import ExportError, export_figures

    def log(message):
        if not args.quiet:
            print(message, file=sys.stderr, flush=True)

    def warn(message):
        print(message, file=sys.stderr, flush=True)

    formats = [f.strip().lower() for f in args.formats.split(",") if f.strip()]
    try:
        from workbench.data import open_workspace
        from workbench.views import cards

        # --domain alone exports that domain memory's figures only (the app keeps the demo runs)
        runs = [args.run] if args.run is not None else ([] if args.domain is not None else None)
        workspace = open_workspace(runs, None if args.domain is None else [args.domain], cache_dir=args.cache_dir)
        if workspace.problems:
            raise TauformerError("; ".join(workspace.problems))
        state = build_state(workspace, args, warn)
        log(f"exporting run {state['run']} step {state['step']}, domain {state['domain']} to {args.out}")
        figures, entries, skipped = collect_figures(workspace, state, log)
        if not figures:
            raise TauformerError("no page had a figure to export for this run / domain")
        titles = {name: entry["title"] for name, entry in entries.items()}
        tables = {name: cards.RECIPES[entry["card"]].table(entry["card"]) for name, entry in entries.items()}
        written = export_figures(figures, args.out, formats, manifest=manifest(workspace, state, args, entries, skipped),
                                 progress=False if args.quiet else None, columns=args.columns, scale=args.scale,
                                 titles=titles, tables=tables)
    except (TauformerError, ExportError, KeyError) as err:
        print(f"error: {err.args[0] if isinstance(err, KeyError) and err.args else err}", file=sys.stderr)
        return 2
    log(f"wrote {len(written)} files to {Path(args.out)}")
    return 0
