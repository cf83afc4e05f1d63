"""Batch export of every page's figures, for a paper: ``python -m workbench.export``.

    python -m workbench.export --run DIR --domain FILE --out DIR [--formats pdf,svg,png]
                               [--prompt TEXT] [--step N] [--eig 1] [--columns 1] [--scale 2]

Each view module in PAGE_MODULES may define ``export_figures(workspace, state) -> dict[name,
Figure]``; this collects them all (page order), renders them in the paper theme and writes
``manifest.json`` with the checkpoint, the domain fingerprint, the prompt, the parameters and
the package versions. Without --run and --domain it exports the bundled demo.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import platform
import sys
import time
from pathlib import Path

from tauformer.errors import TauformerError

EXTRA_PACKAGES = ("scipy", "networkx", "umap-learn", "torch")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m workbench.export",
                                description="Write the workbench's figures as paper-ready files with a manifest.")
    p.add_argument("--run", default=None, metavar="DIR", help="a run directory (or a folder of runs)")
    p.add_argument("--domain", default=None, metavar="FILE", help="a domain-memory file or directory")
    p.add_argument("--out", required=True, metavar="DIR", help="where the figures and manifest.json go")
    p.add_argument("--formats", default="pdf", help="comma-separated: pdf, svg, png (default pdf)")
    p.add_argument("--prompt", default=None, help="the prompt the model pages analyse")
    p.add_argument("--step", type=int, default=None, help="checkpoint step (default: the latest)")
    p.add_argument("--eig", type=int, default=1, help="eigenvector painted on the feature graph (default 1, Fiedler)")
    p.add_argument("--color", default="lambda", help="item-map colour: lambda, energy, cluster or label")
    p.add_argument("--columns", type=int, choices=(1, 2), default=1, help="paper width in columns")
    p.add_argument("--scale", type=float, default=2, help="PNG pixel density, 1-4 (default 2)")
    p.add_argument("--cache-dir", default=None, help="cache for item layouts (default: the app's temp folder)")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    return p.parse_args(argv)


def build_state(workspace, args) -> dict:
    """The selection every page exports: run, step, compared run, domain and page parameters."""
    runs = workspace.runs
    run = None
    if runs.names():
        tau, dot = runs.default_pair()
        run = tau or dot or runs.names()[0]
    step = runs.nearest_step(run, args.step) if run else None
    compare = runs.pair_for(run) if run else None
    domains = workspace.domains.names()
    return {"run": run, "step": step, "compare": compare, "domain": domains[0] if domains else None,
            "prompt": args.prompt, "eig": args.eig, "color": args.color, "vs": "chain", "log": False}


def collect_figures(workspace, state: dict, log=lambda message: None) -> tuple[dict, dict]:
    """(figures by name, page module of each name) from every page's ``export_figures``."""
    from workbench.views import PAGE_MODULES, page_has_data

    figures, origin = {}, {}
    for path in PAGE_MODULES:
        module = importlib.import_module(path)
        if not hasattr(module, "export_figures") or not page_has_data(getattr(module, "PAGE", {}), workspace):
            continue
        t0 = time.perf_counter()
        found = module.export_figures(workspace, state) or {}
        for name, fig in found.items():
            if name in figures:
                raise TauformerError(f"two pages export a figure named {name!r} ({origin[name]} and {path})")
            figures[name], origin[name] = fig, path
        log(f"{path}: {len(found)} figure(s) in {time.perf_counter() - t0:.1f} s")
    return figures, origin


def package_versions() -> dict:
    import tauformer

    versions = {"python": platform.python_version(), "tauformer": tauformer.__version__}
    for name in EXTRA_PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def manifest(workspace, state: dict, args, origin: dict) -> dict:
    """What the figures show and how they were made (export_figures adds versions and files)."""
    checkpoint = None
    if state["run"]:
        checkpoint = {"run": state["run"], "step": state["step"], "compared_with": state["compare"],
                      "path": str(workspace.runs.checkpoint_path(state["run"], state["step"]))}
    domain = None
    if state["domain"]:
        memory = workspace.domains.load(state["domain"])
        domain = {"name": state["domain"], "path": str(workspace.domains.path(state["domain"])),
                  "fingerprint": memory.fingerprint, "dim": memory.dim, "params": memory.params}
    return {
        "checkpoint": checkpoint,
        "domain": domain,
        "prompt": state["prompt"],
        "parameters": {**{k: v for k, v in state.items() if k not in ("run", "step", "compare", "domain", "prompt")},
                       "formats": args.formats, "columns": args.columns, "scale": args.scale},
        "figures": origin,
        "packages": package_versions(),
    }


def main(argv=None) -> int:
    args = parse_args(argv)
    from workbench.export import ExportError, export_figures

    def log(message):
        if not args.quiet:
            print(message, file=sys.stderr, flush=True)

    formats = [f.strip().lower() for f in args.formats.split(",") if f.strip()]
    try:
        from workbench.data import open_workspace

        # --domain alone exports that domain memory's figures only (the app keeps the demo runs)
        runs = [args.run] if args.run is not None else ([] if args.domain is not None else None)
        workspace = open_workspace(runs, None if args.domain is None else [args.domain], cache_dir=args.cache_dir)
        if workspace.problems:
            raise TauformerError("; ".join(workspace.problems))
        state = build_state(workspace, args)
        log(f"exporting run {state['run']} step {state['step']}, domain {state['domain']} to {args.out}")
        figures, origin = collect_figures(workspace, state, log)
        if not figures:
            raise TauformerError("no page had a figure to export for this run / domain")
        written = export_figures(figures, args.out, formats, manifest=manifest(workspace, state, args, origin),
                                 progress=False if args.quiet else None, columns=args.columns, scale=args.scale)
    except (TauformerError, ExportError, KeyError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    log(f"wrote {len(written)} files to {Path(args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
