"""`python -m tauformer domain {build, info, import}`: build, inspect and import domain memories."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ..errors import DomainError
from ..build_defaults import BUILD_DEFAULTS
from .embed import EMBEDDERS


def register(subparsers) -> None:
    """Add the `domain` command with its build / info / import sub-commands."""
    domain = subparsers.add_parser("domain", help="build, inspect and import domain memories (Laplacians)")
    sub = domain.add_subparsers(dest="domain_command", metavar="ACTION", required=True)

    b = sub.add_parser("build", help="embedding or text corpus -> domain memory file")
    b.add_argument("input", help=".npy .npz .safetensors .parquet .csv, or a .txt / .md corpus")
    b.add_argument("--out", required=True, help="output: NAME.safetensors, or a directory")
    b.add_argument("--dim", type=int, default=None, help="Laplacian size D (the model's head dim); default: F")
    d = BUILD_DEFAULTS
    b.add_argument("--reduction", choices=["random", "pca", "none"], default=d["reduction"] or "none")
    b.add_argument("--n-clusters", type=int, default=None, help="K centroids (default max(2, ceil(sqrt(N/10))))")
    b.add_argument("--eps", type=float, default=d["eps"], help="keep a neighbour when cosine distance <= eps")
    b.add_argument("--k", type=int, default=d["k"], help="cap on neighbours per feature")
    b.add_argument("--topk", type=int, default=d["topk"], help="nearest features queried per feature")
    b.add_argument("--p", type=float, default=d["p"], help="kernel exponent")
    b.add_argument("--sigma", type=float, default=d["sigma"], help="kernel scale")
    b.add_argument("--allow-disconnected", action="store_true",
                   help="write the memory even when its graph has no edges or more than D/4 components")
    b.add_argument("--no-sparsify", dest="sparsify", action="store_false", help="never halve dense neighbourhoods")
    b.add_argument("--normalised", action="store_true", help="normalised Laplacian I - D^-1/2 W D^-1/2")
    b.add_argument("--compat", choices=["arrowspace"], default=None,
                   help="build as arrowspace 0.30 does: topk + 1 neighbours per feature, no sparsification")
    b.add_argument("--seed", type=int, default=d["seed"])
    b.add_argument("--embedder", choices=EMBEDDERS, default="auto", help="for text input")
    b.add_argument("--embed-dims", type=int, default=384, help="TF-IDF dimensions for text input")
    b.add_argument("--per-line", action="store_true", help="text input: one document per line")
    b.add_argument("--key", default=None, help="array / tensor / column to read (default: the first)")
    b.add_argument("--text-column", default=None)
    b.add_argument("--label-column", default=None)
    b.add_argument("--keep-items", action="store_true", help="also store the reduced items, texts, labels")
    b.add_argument("--name", default=None, help="name recorded in the file (default: input file stem)")
    b.add_argument("--quiet", action="store_true", help="no progress bars")
    b.set_defaults(func=_build)

    i = sub.add_parser("info", help="print the summary of a domain memory (also a reference .parquet)")
    i.add_argument("path")
    i.add_argument("--allow-large", action="store_true", help="load a Laplacian above 65,536 x 65,536")
    i.set_defaults(func=_info)

    m = sub.add_parser("import", help="convert the reference implementation's parquet manifold")
    m.add_argument("parquet")
    m.add_argument("--json", default=None,
                   help="the JSON sidecar with the builder parameters (default: NAME.json beside NAME.parquet)")
    m.add_argument("--out", required=True)
    m.add_argument("--allow-large", action="store_true", help="import a Laplacian above 65,536 x 65,536")
    m.set_defaults(func=_import)


def format_summary(s: dict) -> str:
    """Human-readable lines for a DomainMemory.summary() dict."""
    n_items = s.get("n_items")
    lines = [
        f"domain memory  {s['name']}  ({s['fingerprint'][:16]})",
        f"  items        {n_items if n_items is not None else '?'}  (embedder: {s.get('embedder')})",
        f"  features     {s.get('n_features')} -> D = {s['dim']}",
        f"  nnz          {s['nnz']}  ({s['edges']} edges, density {s['density']:.4f})",
        f"  components   {s['components']}",
        _spectrum_line(s),
        f"  degree       min {s['degree_min']:.4g}  mean {s['degree_mean']:.4g}  max {s['degree_max']:.4g}"
        f"  (neighbours {s['neighbours_min']}..{s['neighbours_max']}, {s['isolated']} isolated)",
    ]
    timings = s.get("timings") or {}
    if timings:
        parts = "  ".join(f"{k} {v:.3f}s" for k, v in timings.items())
        lines.append(f"  time         {parts}  (total {sum(timings.values()):.3f}s)")
    if s["components"] > 1:
        lines.append(f"  note: the graph has {s['components']} components; a larger --eps or --topk connects it")
    return "\n".join(lines)


def structure_line(memory) -> str:
    """The feature graph's hubs and degrees in one line (tauformer.domain.structure)."""
    from .structure import graph_structure

    return f"  structure    {graph_structure(memory).describe()}"


def _spectrum_line(s: dict) -> str:
    if s.get("spectral_gap") is None:
        return (f"  spectral gap not computed (D = {s['dim']:,} is too large for eigenvalues); "
                f"eigenvalues in [0, {s['eigenvalue_max']:.6g}] (bound)")
    return f"  spectral gap {s['spectral_gap']:.6g}   eigenvalues [{s['eigenvalue_min']:.3g}, {s['eigenvalue_max']:.6g}]"


def _check_dim(path, dim: int | None, n_features: int) -> None:
    """Refuse a --dim the embedding cannot give, naming the file and the flag (the reducer's own
    message speaks of `dim` only, for API callers)."""
    if dim is None or 2 <= dim <= n_features:
        return
    if dim < 2:
        raise DomainError(f"{path}: --dim {dim} is less than 2 (2..{n_features})")
    raise DomainError(f"{path}: --dim {dim} is more than its {n_features} features (2..{n_features})")


def _build(args: argparse.Namespace) -> int:
    from .builder import build_domain_memory, connectivity_problem
    from .io import save_domain_memory
    from .loaders import load_embedding

    start = time.perf_counter()
    emb = load_embedding(
        args.input, text_column=args.text_column, label_column=args.label_column, key=args.key,
        embedder=args.embedder, embed_dims=args.embed_dims, per_line=args.per_line, seed=args.seed,
    )
    load_s = time.perf_counter() - start
    _check_dim(args.input, args.dim, emb.n_features)
    memory = build_domain_memory(
        emb, dim=args.dim, reduction=None if args.reduction == "none" else args.reduction,
        n_clusters=args.n_clusters, eps=args.eps, k=args.k, topk=args.topk, p=args.p, sigma=args.sigma,
        sparsify=args.sparsify, normalised=args.normalised, seed=args.seed, compat=args.compat,
        progress=None if args.quiet else True, keep_items=args.keep_items,
        name=args.name or Path(args.input).stem,
    )
    memory.timings = {"load": load_s, **memory.timings}
    problem = connectivity_problem(memory)
    if problem and not args.allow_disconnected:
        raise DomainError(f"{args.input}: {problem}; nothing written")
    summary = memory.summary()
    out = save_domain_memory(memory, args.out, keep_items=args.keep_items)
    print(format_summary(summary))
    print(structure_line(memory))
    print(f"wrote {out}")
    return 0


def _info(args: argparse.Namespace) -> int:
    from .io import load_domain_memory

    memory = load_domain_memory(args.path, allow_large=args.allow_large)
    print(format_summary(memory.summary()))
    print(structure_line(memory))
    print(f"  params       {memory.params}")
    if memory.has_items:
        print(f"  items kept   {memory.items.shape[0]} x {memory.items.shape[1]}")
    return 0


def _import(args: argparse.Namespace) -> int:
    from .io import save_domain_memory
    from .reference import import_reference_manifold

    memory = import_reference_manifold(args.parquet, args.json, allow_large=args.allow_large)
    out = save_domain_memory(memory, args.out)
    print(format_summary(memory.summary()))
    print(structure_line(memory))
    print(f"wrote {out}", file=sys.stdout)
    return 0
