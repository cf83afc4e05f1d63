"""prepare: inputs -> tokenizer + shards; counts, deterministic document split, memory maps, bad input."""

import json
import random
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from tauformer.__main__ import main
from tauformer.data import ShardBatches
from tauformer.shards import is_validation, open_shards, read_shards_meta
from tauformer.sources import iter_documents, resolve_inputs
from tauformer.tokenizer import ByteTokenizer


def write_corpus(path, n_paragraphs, seed=0):
    """Paragraphs of words drawn from a fixed vocabulary (so BPE has something to merge)."""
    rng = random.Random(seed)
    words = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyzé") for _ in range(rng.randint(2, 8))) for _ in range(300)]
    with open(path, "w", encoding="utf-8") as f:
        for _ in range(n_paragraphs):
            f.write(" ".join(rng.choice(words) for _ in range(rng.randint(10, 60))) + ".\n\n")
    return path


@pytest.fixture
def corpus(tmp_path):
    root = tmp_path / "texts"
    (root / "sub").mkdir(parents=True)
    write_corpus(root / "a.txt", 150, seed=1)
    write_corpus(root / "sub" / "b.md", 80, seed=2)
    rows = [{"id": i, "text": f"row {i}: " + "lorem ipsum dolor " * (i % 7 + 1)} for i in range(40)]
    (root / "c.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    (root / "ignored.bin").write_bytes(b"\x00\x01")  # not a supported suffix inside a folder: skipped
    return root


def documents(root):
    return list(iter_documents(resolve_inputs([str(root)])))


def test_prepare_bpe_counts_tokens_and_bytes_of_every_document(tmp_path, corpus, capsys):
    out = tmp_path / "data"
    assert main(["prepare", str(corpus), "--tokenizer", "bpe", "--vocab-size", "400", "--out", str(out),
                 "--no-progress"]) == 0
    assert "prepared" in capsys.readouterr().out
    meta = read_shards_meta(out)
    shards = open_shards(out)
    tok = shards.tokenizer
    assert meta["tokenizer"]["kind"] == "bpe" and meta["tokenizer"]["sha256"] == tok.fingerprint
    assert isinstance(shards.train, np.memmap) and shards.train.dtype == np.uint16
    docs = documents(corpus)
    assert meta["source"]["documents"] == len(docs) and meta["source"]["files"] == 3
    train_docs = [d for i, d in enumerate(docs) if not is_validation(i, 0.1)]
    val_docs = [d for i, d in enumerate(docs) if is_validation(i, 0.1)]
    assert meta["val"]["documents"] == len(val_docs) >= 1
    for split, part in (("train", train_docs), ("val", val_docs)):
        text = tok.decode(np.asarray(getattr(shards, split)).tolist())
        joined = "".join(d if d.endswith("\n\n") else d.rstrip("\n") + "\n\n" for d in part)
        assert text == joined  # every document, in order, losslessly
        assert meta[split]["bytes"] == len(joined.encode("utf-8"))
        assert meta[split]["tokens"] == len(getattr(shards, split)) < meta[split]["bytes"]


def test_split_is_deterministic_and_by_document(tmp_path, corpus):
    runs = []
    for name in ("one", "two"):
        assert main(["prepare", str(corpus), "--tokenizer", "byte", "--out", str(tmp_path / name), "--no-progress"]) == 0
        runs.append(tmp_path / name)
    for f in ("train.bin", "val.bin"):
        assert (runs[0] / f).read_bytes() == (runs[1] / f).read_bytes()
    a, b = (read_shards_meta(r) for r in runs)
    assert a["source"]["fingerprint"] == b["source"]["fingerprint"] and a["train"] == b["train"]
    assert [i for i in range(30) if is_validation(i, 0.1)] == [9, 19, 29]
    assert a["tokenizer"]["kind"] == "bytes" and not (runs[0] / "tokenizer.json").exists()


def test_shard_batches_slice_the_memory_maps(tmp_path, corpus):
    out = tmp_path / "data"
    assert main(["prepare", str(corpus), "--tokenizer", "byte", "--out", str(out), "--no-progress"]) == 0
    raw = np.fromfile(out / "train.bin", dtype="<u2")
    import torch

    batches = ShardBatches(out, block_size=16)
    starts = batches.starts("train", 5, torch.Generator().manual_seed(0))
    x, y = batches.windows("train", starts, None)
    assert x.shape == y.shape == (5, 16) and x.dtype == torch.int64
    for row, s in zip(x, starts.tolist()):
        assert row.tolist() == raw[s:s + 16].tolist()
    assert torch.equal(x[:, 1:], y[:, :-1])
    assert batches.target_bytes(y) == y.numel()  # bytes: one byte per token
    assert isinstance(batches.tokenizer, ByteTokenizer)


def test_jsonl_and_parquet_text_columns(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    texts = [f"document number {i} " * 5 for i in range(30)]
    pq.write_table(pa.table({"body": texts, "n": list(range(30))}), tmp_path / "t.parquet")
    out = tmp_path / "pq"
    assert main(["prepare", str(tmp_path / "*.parquet"), "--tokenizer", "byte", "--text-column", "body",
                 "--out", str(out), "--no-progress"]) == 0
    meta = read_shards_meta(out)
    assert meta["source"]["documents"] == 30 and meta["val"]["documents"] == 3
    assert meta["train"]["bytes"] + meta["val"]["bytes"] == sum(len(t.encode()) + 2 for t in texts)


def one_line_error(capsys, argv):
    code = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error:"), err
    return err[0]


def test_bad_input_is_one_line(tmp_path, capsys):
    binary = tmp_path / "blob.txt"
    binary.write_bytes(b"text\x00\x01\x02")
    assert "blob.txt: looks binary" in one_line_error(capsys, ["prepare", str(binary), "--out", str(tmp_path / "o")])
    empty = tmp_path / "empty.md"
    empty.write_text("\n\n   \n")
    assert "empty" in one_line_error(capsys, ["prepare", str(empty), "--tokenizer", "byte", "--out", str(tmp_path / "o"),
                                              "--no-progress"])
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"body": "x"}\n')
    line = one_line_error(capsys, ["prepare", str(rows), "--out", str(tmp_path / "o"), "--no-progress"])
    assert "rows.jsonl:1: no 'text' field" in line and "body" in line
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"body": ["x"]}), tmp_path / "t.parquet")
    line = one_line_error(capsys, ["prepare", str(tmp_path / "t.parquet"), "--text-column", "content", "--out", str(tmp_path / "o"),
                                   "--no-progress"])
    assert "no column 'content'" in line and "body" in line
    line = one_line_error(capsys, ["prepare", str(rows), "--vocab-size", "70000", "--out", str(tmp_path / "o")])
    assert "does not fit uint16" in line and "--dtype uint32" in line
    assert "no such file" in one_line_error(capsys, ["prepare", str(tmp_path / "nope"), "--out", str(tmp_path / "o")])
    assert not (tmp_path / "o" / "meta.json").exists()


def test_invalid_utf8_is_replaced_and_counted(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes(("café au lait. " * 20 + "\n\n").encode("latin-1") * 200)
    from tauformer.prepare import prepare

    notes = []
    summary = prepare([str(path)], tmp_path / "o", tokenizer="byte", progress=False, log=notes.append)
    assert summary["source"]["replaced_bytes"] == 20 * 200 and "U+FFFD" in notes[0]
    text = ByteTokenizer().decode(np.fromfile(tmp_path / "o" / "train.bin", dtype="<u2").tolist())
    assert "caf\ufffd au lait" in text


PEAK_RSS = textwrap.dedent("""
    import resource, sys
    from tauformer.prepare import prepare
    prepare([sys.argv[1]], sys.argv[2], tokenizer=sys.argv[3], vocab_size=300 if sys.argv[3] == "bpe" else None,
            tokenizer_sample_mb=0.25,
            progress=False, log=lambda *a: None)
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)  # KiB on Linux
""")


@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss is in KiB on Linux")
@pytest.mark.parametrize("tokenizer, paragraphs", [
    ("byte", (10_000, 40_000)),  # ~2 MB and ~8 MB
    pytest.param("bpe", (40_000, 160_000), marks=pytest.mark.slow),  # ~8 MB and ~32 MB: about a minute of BPE
])
def test_peak_memory_does_not_grow_with_the_corpus(tmp_path, tokenizer, paragraphs):
    """Two corpora, the second four times the first, prepared in fresh processes: the peak resident
    size stays flat (it is bounded by one encoding batch, not by the corpus)."""
    sizes, peaks = [], []
    for name, n in zip(("small", "large"), paragraphs):
        path = write_corpus(tmp_path / f"{name}.txt", n, seed=3)
        sizes.append(path.stat().st_size)
        proc = subprocess.run([sys.executable, "-c", PEAK_RSS, str(path), str(tmp_path / name), tokenizer],
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-1000:]
        peaks.append(int(proc.stdout.split()[-1]) * 1024)
    extra_corpus, extra_memory = sizes[1] - sizes[0], peaks[1] - peaks[0]
    assert extra_corpus > 4_000_000
    assert extra_memory < 0.1 * extra_corpus, (sizes, peaks)


def test_prepare_builds_the_corpus_domain_memory(tmp_path, corpus):
    from tauformer.domain import load_domain_memory
    from tauformer.prepare import prepare

    out = tmp_path / "data"
    summary = prepare([str(corpus)], out, tokenizer="byte", domain_out=tmp_path / "domain.safetensors", dim=8,
                      domain_items=120, embedder="tfidf", progress=False, log=lambda *a: None)
    memory = load_domain_memory(summary["domain"])
    assert memory.laplacian.shape == (8, 8)
    assert memory.source["n_items"] == 120 and memory.source["fingerprint"] == summary["source"]["fingerprint"]
    with pytest.raises(Exception, match="--dim"):
        prepare([str(corpus)], out, tokenizer="byte", domain_out=tmp_path / "d2.safetensors", progress=False)


def test_prepare_refuses_an_earlier_preparation_unless_forced(tmp_path, corpus, capsys):
    out = tmp_path / "data"
    assert main(["prepare", str(corpus), "--tokenizer", "byte", "--out", str(out), "--no-progress"]) == 0
    (out / "domain.safetensors").write_bytes(b"stale")
    before = (out / "meta.json").read_bytes()
    capsys.readouterr()
    line = one_line_error(capsys, ["prepare", str(corpus), "--tokenizer", "byte", "--val-fraction", "0.5",
                                   "--out", str(out), "--no-progress"])
    assert str(out) in line and "train.bin" in line and "meta.json" in line and "--force" in line
    assert (out / "meta.json").read_bytes() == before  # nothing was touched
    assert main(["prepare", str(corpus), "--tokenizer", "byte", "--val-fraction", "0.5", "--out", str(out),
                 "--no-progress", "--force"]) == 0
    notes = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("note:")]
    assert len(notes) == 1 and "domain.safetensors" in notes[0] and "meta.json" not in notes[0]
    assert read_shards_meta(out)["val_fraction"] == 0.5
    assert (out / "domain.safetensors").read_bytes() == b"stale"  # left, and named, not removed


def test_prepare_refuses_an_existing_domain_out_unless_forced(tmp_path, corpus, capsys):
    domain = tmp_path / "domain.safetensors"
    domain.write_bytes(b"old")
    line = one_line_error(capsys, ["prepare", str(corpus), "--tokenizer", "byte", "--out", str(tmp_path / "data"),
                                   "--domain-out", str(domain), "--dim", "8", "--no-progress"])
    assert str(domain) in line and "--force" in line
    assert not (tmp_path / "data" / "meta.json").exists()


def test_a_small_corpus_notes_the_vocabulary_it_could_reach(tmp_path, capsys):
    text = tmp_path / "tiny"
    text.mkdir()
    for name in ("a.txt", "b.txt"):
        (text / name).write_text("abc abd abe.\n\n" * 30, encoding="utf-8")
    assert main(["prepare", str(text), "--vocab-size", "8192", "--val-fraction", "0.5", "--out", str(tmp_path / "o"),
                 "--no-progress"]) == 0
    reached = read_shards_meta(tmp_path / "o")["tokenizer"]["vocab_size"]
    notes = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("note: vocabulary")]
    assert 256 < reached < 8192
    assert notes == [f"note: vocabulary {reached:,} of the 8,192 asked: the corpus has no more merges at min frequency 2"]


def test_byte_tokenizer_refuses_a_vocab_size(tmp_path, corpus, capsys):
    line = one_line_error(capsys, ["prepare", str(corpus), "--tokenizer", "byte", "--vocab-size", "400",
                                   "--out", str(tmp_path / "o"), "--no-progress"])
    assert "--vocab-size 400" in line and "byte" in line
    assert not (tmp_path / "o").exists()


def test_every_prepared_file_gets_the_umask_mode(tmp_path, corpus):
    """Atomically written files (tokenizer, meta, domain memory) end with the same mode as the
    shards: 0o666 less the umask, not the temporary file's 0o600."""
    import os
    import stat

    from tauformer.prepare import prepare

    old = os.umask(0o027)
    try:
        out = tmp_path / "data"
        prepare([str(corpus)], out, tokenizer="bpe", vocab_size=300, domain_out=out / "domain.safetensors", dim=8,
                domain_items=120, embedder="tfidf", progress=False, log=lambda *a: None)
    finally:
        os.umask(old)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in out.iterdir()}
    assert set(modes) == {"tokenizer.json", "train.bin", "val.bin", "meta.json", "domain.safetensors"}
    assert set(modes.values()) == {0o640}, {k: oct(v) for k, v in modes.items()}
