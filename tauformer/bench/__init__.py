"""Benchmarks that run the compared things side by side in one process and print ratios.

Each benchmark module exposes ``add_arguments(parser)`` and ``run(args, log) -> dict``; the
result dict has a ``rows`` list (one dict per measured case) that `tauformer.bench.cli` prints as
a table or as JSON. Register new modules in ``BENCHMARKS``.
"""

BENCHMARKS = {
    # name -> module path (imported lazily so one benchmark's imports never slow another)
    "attention": "tauformer.bench.attention",
    "cache": "tauformer.bench.cache",
    "decode": "tauformer.bench.decode",
    "domain": "tauformer.bench.domain",
    "train": "tauformer.bench.train",
}
