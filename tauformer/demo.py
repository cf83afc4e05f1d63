"""`python -m tauformer demo`: (re)build the bundled demo in assets/demo/.

Three runs trained alike -- same corpus, seed, shape and steps -- so the workbench can compare
them: `dot` (the baseline), `tau` (this project's defaults: calibrated tau, learnable per-head
temperature) and `tau-reference` (the published settings: tau fixed 1.0, temperature 1.0).
Both tau runs measure their heads against the demo's domain memory: a Laplacian built from the
corpus's own paragraphs (embedded with the sentence model when the `embed` extra is installed,
else TF-IDF + SVD; the choice is recorded in the domain file), reduced to the head dim.
Weights are stored in float16 without optimizer state to keep the committed files small.
"""

from __future__ import annotations

import argparse
import shutil
import time
from dataclasses import replace
from pathlib import Path

from .checkpoint import list_checkpoints
from .config import ModelConfig, TrainConfig

DEMO_DIR = Path(__file__).resolve().parent.parent / "assets" / "demo"
DEMO_SHAPE = dict(vocab_size=256, block_size=256, n_layer=4, n_head=3, n_kv_head=3, n_embd=96)  # head_dim 32
DEMO_RUNS = {
    "dot": dict(attention="dot"),
    "tau": dict(attention="tau", tau_mode="calibrated", learn_temperature=True),
    "tau-reference": dict(attention="tau", tau_mode="fixed", tau=1.0, temperature=1.0, learn_temperature=False),
}


# Graph settings for a 32-feature domain memory of ~2k paragraphs: PCA features, a connected
# graph of each feature's 6 nearest features (the reference default eps 1e-3 leaves it empty).
DEMO_DOMAIN_PARAMS = dict(reduction="pca", eps=1.0, k=6, topk=6, sigma=0.5, p=2.0, seed=0)


def build_demo_domain(out: Path, head_dim: int, *, embedder: str = "auto", progress: bool = True) -> Path:
    """Embed the corpus paragraphs, build their domain memory at head_dim, save it with its items."""
    from .data import DEFAULT_CORPUS, load_paragraphs
    from .domain import EmbeddingSet, build_domain_memory, embed_texts, save_domain_memory
    import hashlib

    paragraphs = load_paragraphs()
    print(f"embedding {len(paragraphs)} paragraphs of the corpus ({embedder} embedder)...")
    X, used = embed_texts(paragraphs, embedder=embedder)
    items = EmbeddingSet(X=X, texts=paragraphs, labels=None, path=DEFAULT_CORPUS,
                         fingerprint=hashlib.sha256("\n\n".join(paragraphs).encode("utf-8")).hexdigest(),
                         embedder=used)
    memory = build_domain_memory(items, dim=head_dim, keep_items=True, progress=progress,
                                 name="pydoc-topics", **DEMO_DOMAIN_PARAMS)
    path = save_domain_memory(memory, out / "domain", keep_items=True)
    print(f"domain memory {memory.dim} x {memory.dim} from {len(paragraphs)} paragraphs ({used}) -> {out / 'domain'}")
    return path


def demo_train_config(steps: int, checkpoints: int) -> TrainConfig:
    """The shared training settings: `checkpoints` evenly spaced checkpoints, float16 weights."""
    return TrainConfig(steps=steps, batch_size=16, lr=3e-3, warmup_steps=min(100, steps // 10),
                       eval_every=max(1, steps // 40), eval_batches=8, ckpt_every=max(1, steps // checkpoints),
                       seed=1337, device="cpu", save_dtype="float16", save_optimizer=False)


def register(subparsers) -> None:
    p = subparsers.add_parser("demo", help="retrain the bundled demo runs (dot, tau, tau-reference)",
                              formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--out", type=Path, default=DEMO_DIR, help="demo directory")
    p.add_argument("--steps", type=int, default=None, help="training steps per run (default 1500; 600 with --study)")
    p.add_argument("--checkpoints", type=int, default=3, help="checkpoints kept per run")
    p.add_argument("--runs", default=",".join(DEMO_RUNS), help="comma-separated subset of " + ", ".join(DEMO_RUNS))
    p.add_argument("--embedder", default="auto", help="auto, tfidf or sentence (for the domain memory)")
    p.add_argument("--reuse-domain", action="store_true", help="keep the existing assets/demo/domain")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--study", action="store_true", help="instead: train the demo study (every variant, 3 seeds; "
                   "tauformer/study/demo.py) into OUT/study, keeping histories and summaries only")
    p.add_argument("--study-work", type=Path, default=None, help="where the demo study trains (reuse to resume)")
    p.set_defaults(func=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    from .train import train

    if args.study:
        from .study.demo import run_demo_study

        run_demo_study(Path(args.out), steps=args.steps or 600, work_dir=args.study_work, progress=not args.no_progress)
        return 0
    args.steps = args.steps or 1500

    names = [n.strip() for n in args.runs.split(",") if n.strip()]
    unknown = sorted(set(names) - set(DEMO_RUNS))
    if unknown:
        from .errors import ConfigError

        raise ConfigError(f"unknown demo runs {unknown}; choose from {sorted(DEMO_RUNS)}")
    out = Path(args.out)
    head_dim = DEMO_SHAPE["n_embd"] // DEMO_SHAPE["n_head"]
    domain_dir = out / "domain"
    if not (args.reuse_domain and domain_dir.exists()):
        build_demo_domain(out, head_dim, embedder=args.embedder, progress=not args.no_progress)
    train_cfg = demo_train_config(args.steps, args.checkpoints)
    rows = []
    for name in names:
        model_cfg = ModelConfig(**DEMO_SHAPE, **DEMO_RUNS[name])
        staging = out / f".{name}.training"
        shutil.rmtree(staging, ignore_errors=True)
        print(f"== {name}: {args.steps} steps -> {out / name}")
        start = time.perf_counter()
        domain = str(domain_dir) if model_cfg.attention == "tau" else None
        result = train(model_cfg, replace(train_cfg, domain=domain), staging, progress=not args.no_progress)
        minutes = (time.perf_counter() - start) / 60
        final = out / name
        shutil.rmtree(final, ignore_errors=True)  # the new run is complete: replace the old one
        staging.rename(final)
        last = result.history[-1]
        size = sum(f.stat().st_size for f in final.rglob("*") if f.is_file())
        rows.append((name, last["val_loss"], last["val_bpb"], sum(r["tokens_per_s"] for r in result.history) / len(result.history),
                     minutes, len(list_checkpoints(final)), size / 2**20))
    print(f"\n{'run':<14}{'val loss':>9}{'bits/byte':>10}{'tok/s':>9}{'minutes':>9}{'ckpts':>6}{'MiB':>7}")
    for row in rows:
        print(f"{row[0]:<14}{row[1]:>9.4f}{row[2]:>10.3f}{row[3]:>9,.0f}{row[4]:>9.1f}{row[5]:>6}{row[6]:>7.2f}")
    return 0
