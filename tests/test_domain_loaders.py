"""Every embedding loader on small files made here, and every kind of bad input."""

import hashlib

import numpy as np
import pandas as pd
import pytest
from safetensors.numpy import save_file

from tauformer.domain import load_embedding
from tauformer.domain.loaders import split_documents
from tauformer.errors import DomainError

X = np.arange(24, dtype=np.float32).reshape(6, 4) / 10.0


def test_npy(tmp_path):
    np.save(tmp_path / "e.npy", X)
    emb = load_embedding(tmp_path / "e.npy")
    np.testing.assert_array_equal(emb.X, X)
    assert emb.X.dtype == np.float32 and emb.embedder == "precomputed"
    assert emb.fingerprint == hashlib.sha256((tmp_path / "e.npy").read_bytes()).hexdigest()
    assert emb.source()["n_items"] == 6 and emb.source()["n_features"] == 4


def test_npz_first_named_and_labels(tmp_path):
    np.savez(tmp_path / "e.npz", first=X, second=X * 2, names=np.array([f"n{i}" for i in range(6)]))
    np.testing.assert_array_equal(load_embedding(tmp_path / "e.npz").X, X)
    emb = load_embedding(tmp_path / "e.npz", key="second", label_column="names")
    np.testing.assert_array_equal(emb.X, X * 2)
    assert emb.labels == [f"n{i}" for i in range(6)]
    with pytest.raises(DomainError, match=r"e\.npz.*no array 'third'"):
        load_embedding(tmp_path / "e.npz", key="third")


@pytest.mark.parametrize("column", ["text_column", "label_column"])
def test_npz_missing_text_or_label_array_is_named(tmp_path, column):
    np.savez(tmp_path / "e.npz", first=X, names=np.array([f"n{i}" for i in range(6)]))
    with pytest.raises(DomainError, match=r"e\.npz: no array 'missing' \(arrays: first, names\)"):
        load_embedding(tmp_path / "e.npz", **{column: "missing"})


def test_safetensors_first_and_named(tmp_path):
    save_file({"a": X, "b": X[:, :3].copy()}, str(tmp_path / "e.safetensors"))
    assert load_embedding(tmp_path / "e.safetensors").X.shape == (6, 4)
    assert load_embedding(tmp_path / "e.safetensors", key="b").X.shape == (6, 3)


def test_parquet_and_csv_tables(tmp_path):
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(4)])
    df["text"] = [f"item {i}" for i in range(6)]
    df["label"] = [i % 2 for i in range(6)]
    df.to_parquet(tmp_path / "e.parquet")
    df.to_csv(tmp_path / "e.csv", index=False)
    for name in ("e.parquet", "e.csv"):
        emb = load_embedding(tmp_path / name, text_column="text", label_column="label")
        np.testing.assert_allclose(emb.X, X, rtol=1e-6)
        assert emb.texts[2] == "item 2" and emb.labels[:2] == ["0", "1"]
        assert emb.feature_names == ["f0", "f1", "f2", "f3"]


def test_parquet_vector_column(tmp_path):
    pd.DataFrame({"embedding": list(X), "t": list("abcdef")}).to_parquet(tmp_path / "v.parquet")
    emb = load_embedding(tmp_path / "v.parquet", text_column="t")
    np.testing.assert_array_equal(emb.X, X)
    pd.DataFrame({"embedding": [[1.0, 2.0], [1.0, 2.0, 3.0]]}).to_parquet(tmp_path / "ragged.parquet")
    with pytest.raises(DomainError, match=r"ragged\.parquet.*different lengths.*mismatched dims"):
        load_embedding(tmp_path / "ragged.parquet")


CORPUS = """Graph Laplacians measure how smooth a signal is over a graph.

Attention compares queries and keys.
Tau attention compares one scalar per head instead.

The domain memory is built from an embedding of a corpus.

Eigenvalues of the Laplacian are non-negative.

Sparse matrices store only the non-zero entries.
"""


def test_text_corpus_paragraphs_and_lines(tmp_path):
    (tmp_path / "c.md").write_text(CORPUS, encoding="utf-8")
    emb = load_embedding(tmp_path / "c.md", embedder="tfidf", embed_dims=8)
    assert emb.n_items == 5 and emb.texts[1].startswith("Attention compares")
    assert emb.embedder.startswith("tfidf-svd:") and emb.n_features == 4  # capped at documents - 1
    lines = load_embedding(tmp_path / "c.md", embedder="tfidf", per_line=True)
    assert lines.n_items == 6
    assert split_documents("a\n\n\n  \nb\nc", per_line=False) == ["a", "b\nc"]


def test_csv_text_only_is_embedded(tmp_path):
    docs = [p for p in CORPUS.split("\n\n") if p.strip()]
    pd.DataFrame({"body": docs}).to_csv(tmp_path / "docs.csv", index=False)
    emb = load_embedding(tmp_path / "docs.csv", text_column="body", embedder="tfidf")
    assert emb.n_items == len(docs) and emb.embedder.startswith("tfidf-svd")


def test_nan_and_inf_rows_are_counted(tmp_path):
    bad = X.copy()
    bad[2, 1] = np.nan
    bad[4, 0] = np.inf
    np.save(tmp_path / "bad.npy", bad)
    with pytest.raises(DomainError, match=r"bad\.npy: 2 row\(s\) contain NaN or inf \(first at row 2\)"):
        load_embedding(tmp_path / "bad.npy")


@pytest.mark.parametrize(
    "array,pattern",
    [
        (np.arange(5.0), r"expected a 2-D array.*1-D"),
        (np.zeros((0, 4)), r"no items"),
        (np.zeros((5, 1)), r"at least 2 features"),
        (np.zeros((2, 3, 4)), r"3-D"),
        (np.array([["a", "b"], ["c", "d"]]), r"must be numeric"),
    ],
)
def test_bad_shapes(tmp_path, array, pattern):
    np.save(tmp_path / "shape.npy", array)
    with pytest.raises(DomainError, match=r"shape\.npy: .*" + pattern):
        load_embedding(tmp_path / "shape.npy")


def test_mismatched_lengths_and_csv_rows(tmp_path):
    np.savez(tmp_path / "m.npz", x=X, names=np.array(["a", "b"]))
    with pytest.raises(DomainError, match=r"m\.npz.*2 entries but there are 6 items"):
        load_embedding(tmp_path / "m.npz", label_column="names")
    (tmp_path / "r.csv").write_text("a,b\n1,2\n3,4,5\n")
    with pytest.raises(DomainError, match=r"r\.csv"):
        load_embedding(tmp_path / "r.csv")


def test_unreadable_truncated_and_unknown(tmp_path):
    np.save(tmp_path / "full.npy", X)
    (tmp_path / "cut.npy").write_bytes((tmp_path / "full.npy").read_bytes()[:-9])
    with pytest.raises(DomainError, match=r"cut\.npy.*(unreadable|truncated)"):
        load_embedding(tmp_path / "cut.npy")
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(DomainError, match=r"obj\.npy"):
        load_embedding(tmp_path / "obj.npy")  # never unpickled
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(DomainError, match=r"junk\.npz"):
        load_embedding(tmp_path / "junk.npz")
    (tmp_path / "junk.parquet").write_bytes(b"PAR1 nothing")
    with pytest.raises(DomainError, match=r"junk\.parquet"):
        load_embedding(tmp_path / "junk.parquet")
    (tmp_path / "junk.safetensors").write_bytes(b"\xff" * 20)
    with pytest.raises(DomainError, match=r"junk\.safetensors"):
        load_embedding(tmp_path / "junk.safetensors")
    (tmp_path / "e.xyz").write_text("1,2")
    with pytest.raises(DomainError, match=r"e\.xyz: unknown format"):
        load_embedding(tmp_path / "e.xyz")
    with pytest.raises(DomainError, match=r"absent\.npy: file not found"):
        load_embedding(tmp_path / "absent.npy")
    (tmp_path / "latin.txt").write_bytes("caf\xe9\n\nthe".encode("latin-1"))
    with pytest.raises(DomainError, match=r"latin\.txt: not UTF-8"):
        load_embedding(tmp_path / "latin.txt")
    (tmp_path / "empty.txt").write_text("\n\n  \n")
    with pytest.raises(DomainError, match=r"empty\.txt: no items"):
        load_embedding(tmp_path / "empty.txt")
