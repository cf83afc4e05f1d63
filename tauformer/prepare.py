"""`python -m tauformer prepare INPUT... --out DIR`: a folder of text -> tokenizer + token shards.

Two streaming passes over the documents (sources.py): the first trains the BPE tokenizer (on at
most --tokenizer-sample-mb of text; skipped for bytes), the second encodes every document and
appends it to train.bin or val.bin (shards.py). Memory stays flat: one batch of documents, the
BPE trainer's word counts and, with --domain-out, a fixed-size sample of paragraphs for the
domain memory.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import re
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from .errors import ConfigError
from .fsutil import atomic_write_bytes
from .shards import DTYPES, META_FILE, SPLIT_FILES, ShardWriter
from .sources import DOC_BYTES, CorpusStats, check_readable, iter_documents, resolve_inputs, total_bytes
from .tokenizer import MAX_UINT16_VOCAB, TOKENIZER_FILE, ByteTokenizer, train_bpe

ENCODE_BATCH_BYTES = 1 << 18  # documents are encoded in batches of about this much text
PARAGRAPH_MIN_CHARS = 40
PARAGRAPH_MAX_CHARS = 2000
DEFAULT_VOCAB_SIZE = 8192
PREPARED_FILES = (TOKENIZER_FILE, *SPLIT_FILES.values(), META_FILE)  # what a preparation writes into --out


def register(subparsers) -> None:
    p = subparsers.add_parser("prepare", help="text files / folders / globs -> tokenizer and token shards",
                              formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help=".txt .md .jsonl .parquet files, folders or globs (or pydoc_data.topics, the bundled corpus)")
    p.add_argument("--out", required=True, type=Path,
                   help="output directory (train.bin, val.bin, meta.json, tokenizer.json)")
    p.add_argument("--tokenizer", choices=("bpe", "byte"), default="bpe")
    p.add_argument("--vocab-size", type=int, default=argparse.SUPPRESS,  # absent unless given: bytes refuse it
                   help=f"BPE vocabulary size, 256 byte tokens included (default {DEFAULT_VOCAB_SIZE:,}; not for byte)")
    p.add_argument("--dtype", choices=DTYPES, default="uint16", help="token id type on disk (uint32 for vocab > 65,536)")
    p.add_argument("--text-column", default="text", help="field / column holding the text in .jsonl / .parquet")
    p.add_argument("--val-fraction", type=float, default=0.1, help="share of documents for validation")
    p.add_argument("--tokenizer-sample-mb", type=float, default=512.0, help="train BPE on at most this much text")
    p.add_argument("--min-frequency", type=int, default=2, help="BPE: merge only pairs seen this often")
    p.add_argument("--domain-out", type=Path, default=None, help="also build the corpus's domain memory into FILE")
    p.add_argument("--dim", type=int, default=None, help="domain memory size D (the model's head dim)")
    p.add_argument("--domain-items", type=int, default=4000, help="paragraphs sampled for the domain memory")
    p.add_argument("--embedder", default="auto", help="auto, tfidf or sentence (for the domain memory)")
    p.add_argument("--force", action="store_true", help="overwrite a corpus already prepared in --out")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run_prepare)


def run_prepare(args: argparse.Namespace) -> int:
    summary = prepare(args.inputs, args.out, tokenizer=args.tokenizer, vocab_size=getattr(args, "vocab_size", None),
                      dtype=args.dtype,
                      text_column=args.text_column, val_fraction=args.val_fraction,
                      tokenizer_sample_mb=args.tokenizer_sample_mb, min_frequency=args.min_frequency,
                      domain_out=args.domain_out, dim=args.dim, domain_items=args.domain_items,
                      embedder=args.embedder, progress=not args.no_progress, force=args.force)
    print(format_summary(summary))
    return 0


def check_options(tokenizer: str, vocab_size: int | None, dtype: str, val_fraction: float, domain_out, dim) -> int:
    """The vocabulary size the shards will hold; ConfigError on any inconsistent option."""
    if not 0 < val_fraction < 1:
        raise ConfigError(f"--val-fraction {val_fraction}: must be in (0, 1)")
    if tokenizer == "byte" and vocab_size is not None:
        raise ConfigError(f"--vocab-size {vocab_size}: has no meaning with --tokenizer byte "
                          "(its vocabulary is the 256 byte values)")
    vocab = 256 if tokenizer == "byte" else vocab_size
    if tokenizer == "bpe" and vocab_size < 257:
        raise ConfigError(f"--vocab-size {vocab_size}: a BPE vocabulary needs more than the 256 byte tokens")
    if dtype == "uint16" and vocab > MAX_UINT16_VOCAB:
        raise ConfigError(f"--vocab-size {vocab_size:,} does not fit uint16 token ids (at most {MAX_UINT16_VOCAB:,}); "
                          "pass --dtype uint32")
    if domain_out is not None and (dim is None or dim < 2):
        raise ConfigError("--domain-out needs --dim D (the model's head dim, e.g. 32 for the demo preset)")
    return vocab


def check_overwrite(out: Path, domain_out, force: bool) -> list[str]:
    """Refuse (ConfigError) to overwrite an earlier preparation unless `force`.

    With `force`, returns the other entries of `out` that this preparation will not write
    (a stale domain memory, notes...), so that they can be named; else an empty list.
    """
    held = [name for name in PREPARED_FILES if (out / name).exists()]
    domain_exists = domain_out is not None and Path(domain_out).exists()
    if not force:
        if held:
            raise ConfigError(f"{out}: already holds a prepared corpus ({', '.join(held)}); "
                              "pass --force to overwrite it or choose another --out")
        if domain_exists:
            raise ConfigError(f"{domain_out}: already exists; pass --force to overwrite it or choose another --domain-out")
        return []
    if not held or not out.is_dir():
        return []
    written = {Path(domain_out).resolve()} if domain_out is not None else set()
    return sorted(p.name for p in out.iterdir()
                  if p.name not in PREPARED_FILES and not p.name.startswith(".") and p.resolve() not in written)


def prepare(inputs: list[str], out, *, tokenizer: str = "bpe", vocab_size: int | None = None, dtype: str = "uint16",
            text_column: str = "text", val_fraction: float = 0.1, tokenizer_sample_mb: float = 512.0,
            min_frequency: int = 2, domain_out=None, dim: int | None = None, domain_items: int = 4000,
            embedder: str = "auto", progress: bool = True, force: bool = False, log=print) -> dict:
    """Prepare a corpus into `out`; returns meta.json's content plus timings.

    An `out` that already holds a prepared corpus (or an existing `domain_out`) is refused
    unless `force`: a new preparation must not silently mix with an old one's files.
    """
    if tokenizer == "bpe" and vocab_size is None:
        vocab_size = DEFAULT_VOCAB_SIZE
    check_options(tokenizer, vocab_size, dtype, val_fraction, domain_out, dim)
    out = Path(out)
    left = check_overwrite(out, domain_out, force)
    files = resolve_inputs(list(inputs))
    check_readable(files)
    size = total_bytes(files)
    started = time.perf_counter()
    if tokenizer == "bpe":
        sample = _limited(iter_documents(files, text_column=text_column), int(tokenizer_sample_mb * 2**20))
        with _bar(progress, min(size, int(tokenizer_sample_mb * 2**20)), "tokenizer") as bar:
            tok = train_bpe(_counted(sample, bar), vocab_size, min_frequency=min_frequency)
        if tok.vocab_size <= 256:
            raise ConfigError(f"{inputs[0]}: the corpus is empty (no text in {len(files)} file(s))")
        if tok.vocab_size < vocab_size:
            log(f"note: vocabulary {tok.vocab_size:,} of the {vocab_size:,} asked: the corpus has no more merges "
                f"at min frequency {min_frequency}")
    else:
        tok = ByteTokenizer()
    tokenizer_s = time.perf_counter() - started

    stats = CorpusStats()
    source_hash = hashlib.sha256()
    paragraphs = _Reservoir(domain_items if domain_out is not None else 0)
    out.mkdir(parents=True, exist_ok=True)
    with ShardWriter(out, dtype, val_fraction) as writer, _bar(progress, size, "encode") as bar:
        docs = iter_documents(files, text_column=text_column, stats=stats, on_bytes=bar.update)
        for batch in _batches(docs):
            texts = [_terminated(d) for d in batch]
            for text, ids in zip(texts, _encode(tok, texts)):
                data = text.encode("utf-8")
                source_hash.update(data)
                writer.add(ids, len(data))
                paragraphs.offer_text(text)
        counts = writer.counts
        if stats.documents == 0:
            raise ConfigError(f"{inputs[0]}: the corpus is empty (no text in {len(files)} file(s))")
        if counts["val"]["documents"] == 0:
            raise ConfigError(f"{inputs[0]}: only {stats.documents} document(s), none falls in the validation split "
                              f"(every {round(1 / val_fraction)}th document); add text or raise --val-fraction")
        if tok.to_json() is not None:
            atomic_write_bytes(out / TOKENIZER_FILE, tok.to_json().encode("utf-8"))
        else:  # byte tokens: no file (and none left over from an earlier BPE preparation)
            (out / TOKENIZER_FILE).unlink(missing_ok=True)
        seconds = time.perf_counter() - started
        meta = {
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "tokenizer": tok.record(),
            "source": {"inputs": [str(i) for i in inputs], "files": stats.files, "documents": stats.documents,
                       "fingerprint": source_hash.hexdigest(), "replaced_bytes": stats.replaced_bytes,
                       "text_column": text_column, "doc_bytes": DOC_BYTES},
            "timings": {"tokenizer_s": round(tokenizer_s, 3), "total_s": round(seconds, 3)},
        }
        writer.finish(meta)
    summary = {**meta, **counts, "out": str(out), "dtype": dtype, "input_bytes": size,
               "mb_per_s": size / 2**20 / max(seconds, 1e-9)}
    if left:
        log(f"note: {out} still holds files from before that this preparation did not write: {', '.join(left)}")
    if stats.replaced_bytes:
        log(f"note: {stats.replaced_bytes:,} bytes that were not UTF-8 were replaced by U+FFFD")
    if domain_out is not None:
        summary["domain"] = str(build_corpus_domain(paragraphs.items, Path(domain_out), dim, embedder=embedder,
                                                    fingerprint=source_hash.hexdigest(), name=out.name,
                                                    progress=progress, log=log))
    return summary


def format_summary(s: dict) -> str:
    tr, va = s["train"], s["val"]
    lines = [
        f"prepared {s['source']['documents']:,} documents from {s['source']['files']} file(s): "
        f"{s['tokenizer']['kind']} tokenizer, vocab {s['tokenizer']['vocab_size']:,}, {s['dtype']} ids",
        f"  train {tr['tokens']:,} tokens ({tr['bytes']:,} bytes, {tr['bytes'] / max(1, tr['tokens']):.2f} bytes/token, "
        f"{tr['documents']:,} documents)",
        f"  val   {va['tokens']:,} tokens ({va['bytes']:,} bytes, {va['documents']:,} documents)",
        f"  {s['input_bytes'] / 2**20:.1f} MiB in {s['timings']['total_s']:.1f} s ({s['mb_per_s']:.1f} MiB/s) -> {s['out']}",
    ]
    if s.get("domain"):
        lines.append(f"  domain memory -> {s['domain']}")
    return "\n".join(lines)


def build_corpus_domain(paragraphs: list[str], out: Path, dim: int, *, embedder: str, fingerprint: str,
                        name: str, progress: bool, log=print) -> Path:
    """The domain memory of a sample of the corpus's paragraphs (the demo's graph settings)."""
    from .demo import DEMO_DOMAIN_PARAMS
    from .domain import EmbeddingSet, build_domain_memory, embed_texts, save_domain_memory

    if len(paragraphs) < 2 * dim:
        raise ConfigError(f"{out}: only {len(paragraphs)} paragraphs of {PARAGRAPH_MIN_CHARS}+ characters; "
                          f"a {dim}-dimensional domain memory needs at least {2 * dim}")
    log(f"embedding {len(paragraphs):,} paragraphs for the domain memory ({embedder} embedder)...")
    X, used = embed_texts(paragraphs, embedder=embedder)
    items = EmbeddingSet(X=X, texts=paragraphs, labels=None, path=name, fingerprint=fingerprint, embedder=used)
    memory = build_domain_memory(items, dim=dim, keep_items=True, progress=progress or None, name=name,
                                 **DEMO_DOMAIN_PARAMS)
    return save_domain_memory(memory, out, keep_items=True)


class _Reservoir:
    """A uniform sample of at most `size` paragraphs from a stream (seeded: the same every run)."""

    def __init__(self, size: int):
        self.size, self.items, self.seen = size, [], 0
        self._rng = random.Random(0)

    def offer_text(self, text: str) -> None:
        if self.size <= 0:
            return
        for raw in re.split(r"\n\s*\n", text):
            p = re.sub(r"\s+", " ", raw).strip()
            if len(p) < PARAGRAPH_MIN_CHARS:
                continue
            p = p[:PARAGRAPH_MAX_CHARS]
            self.seen += 1
            if len(self.items) < self.size:
                self.items.append(p)
            else:
                j = self._rng.randrange(self.seen)
                if j < self.size:
                    self.items[j] = p


def _terminated(doc: str) -> str:
    """A document ending in one blank line, so documents stay apart when concatenated."""
    if doc.endswith("\n\n"):
        return doc
    return doc + ("\n" if doc.endswith("\n") else "\n\n")


def _encode(tok, texts: list[str]):
    if isinstance(tok, ByteTokenizer):
        return [np.frombuffer(t.encode("utf-8"), dtype=np.uint8) for t in texts]
    return tok.encode_batch(texts)


def _batches(docs, limit: int = ENCODE_BATCH_BYTES):
    batch, size = [], 0
    for doc in docs:
        batch.append(doc)
        size += len(doc)
        if size >= limit:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _limited(docs, limit_bytes: int):
    seen = 0
    for doc in docs:
        if seen >= limit_bytes:
            return
        seen += len(doc.encode("utf-8"))
        yield doc


def _counted(docs, bar):
    for doc in docs:
        bar.update(len(doc.encode("utf-8")))
        yield doc


def _bar(progress: bool, total: int, desc: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, disable=not progress, desc=desc, unit="B", unit_scale=True, unit_divisor=1024,
                file=sys.stderr, dynamic_ncols=True)
