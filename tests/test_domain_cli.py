"""`python -m tauformer domain ...` through tauformer.__main__.main."""

import numpy as np
import pandas as pd

from tauformer.__main__ import main
from tauformer.domain import load_domain_memory


def make_embedding(path):
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((5, 24))
    X = centres[rng.integers(5, size=500)] + 0.5 * rng.standard_normal((500, 24))
    np.save(path, X.astype(np.float32))


def test_build_then_info(tmp_path, capsys):
    make_embedding(tmp_path / "emb.npy")
    out = tmp_path / "dom.safetensors"
    code = main(["domain", "build", str(tmp_path / "emb.npy"), "--dim", "16", "--out", str(out),
                 "--eps", "1.5", "--topk", "4", "--seed", "2", "--quiet"])
    printed = capsys.readouterr().out
    assert code == 0
    for field in ("items        500", "features     24 -> D = 16", "nnz", "density", "components",
                  "spectral gap", "reduce", "cluster", "graph", "laplacian", "load"):
        assert field in printed
    memory = load_domain_memory(out)
    assert memory.laplacian.shape == (16, 16) and memory.params["topk"] == 4 and memory.params["seed"] == 2
    assert memory.source["n_items"] == 500 and memory.name == "emb"

    assert main(["domain", "info", str(out)]) == 0
    info = capsys.readouterr().out
    assert memory.fingerprint[:16] in info and "components" in info


def test_build_text_corpus_with_items(tmp_path, capsys):
    docs = [f"document number {i} talks about topic {i % 4} and graph {i % 3}" for i in range(40)]
    (tmp_path / "corpus.txt").write_text("\n\n".join(docs))
    code = main(["domain", "build", str(tmp_path / "corpus.txt"), "--embedder", "tfidf", "--embed-dims", "12",
                 "--out", str(tmp_path / "dom"), "--keep-items", "--eps", "2", "--quiet"])
    assert code == 0
    assert "tfidf-svd:12" in capsys.readouterr().out
    memory = load_domain_memory(tmp_path / "dom")
    assert memory.items.shape == (40, 12) and memory.texts[3] == docs[3]


def test_import_and_info_of_reference_parquet(tmp_path, capsys):
    W = np.zeros((4, 4))
    W[0, 1] = W[1, 0] = W[2, 3] = W[3, 2] = 0.5
    coo = pd.DataFrame(np.argwhere(np.ones((4, 4))), columns=["row", "col"])
    L = np.diag(W.sum(1)) - W
    coo["value"] = L[coo.row, coo.col]
    coo = coo[coo.value != 0]
    coo = coo.assign(name_id="m", n_rows=4, n_cols=4, nnz=len(coo))
    coo.to_parquet(tmp_path / "m.parquet")
    assert main(["domain", "info", str(tmp_path / "m.parquet")]) == 0
    assert "components   2" in capsys.readouterr().out
    assert main(["domain", "import", str(tmp_path / "m.parquet"), "--out", str(tmp_path / "m.safetensors")]) == 0
    assert load_domain_memory(tmp_path / "m.safetensors").laplacian.nnz == 8


def test_bad_input_returns_2_with_one_line(tmp_path, capsys):
    bad = np.ones((10, 4))
    bad[3, 2] = np.nan
    np.save(tmp_path / "bad.npy", bad)
    code = main(["domain", "build", str(tmp_path / "bad.npy"), "--out", str(tmp_path / "o.safetensors"), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and "bad.npy" in err and "NaN" in err
    assert not (tmp_path / "o.safetensors").exists()
    (tmp_path / "junk.safetensors").write_bytes(b"junk")
    assert main(["domain", "info", str(tmp_path / "junk.safetensors")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "junk.safetensors" in err


def test_bad_parameter_returns_2(tmp_path, capsys):
    make_embedding(tmp_path / "emb.npy")
    code = main(["domain", "build", str(tmp_path / "emb.npy"), "--dim", "99", "--out", str(tmp_path / "o"), "--quiet"])
    assert code == 2 and "dim" in capsys.readouterr().err


def test_a_dim_above_the_feature_count_names_the_file_and_the_flag(tmp_path, capsys):
    np.save(tmp_path / "rand.npy", np.random.default_rng(0).standard_normal((40, 16)).astype(np.float32))
    for dim, words in (("32", "--dim 32 is more than its 16 features (2..16)"), ("1", "--dim 1 is less than 2")):
        code = main(["domain", "build", str(tmp_path / "rand.npy"), "--dim", dim, "--out", str(tmp_path / "o"),
                     "--quiet"])
        err = capsys.readouterr().err.strip()
        assert code == 2 and len(err.splitlines()) == 1
        assert "rand.npy: " in err and words in err
    assert not (tmp_path / "o").exists()
