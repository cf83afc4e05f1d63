"""Domain-memory files: save / load round trips, the reference parquet import, bad files."""

import json

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from tauformer.domain import (
    DomainMemory,
    build_domain_memory,
    import_reference_manifold,
    load_domain_memory,
    save_domain_memory,
)
from tauformer.domain.stfile import write_tensors
from tauformer.errors import DomainError


@pytest.fixture(scope="module")
def memory():
    rng = np.random.default_rng(4)
    X = rng.standard_normal((600, 20)).astype(np.float32)
    mem = build_domain_memory(X, dim=12, eps=1.5, topk=4, seed=1, keep_items=True)
    mem.texts = [f"doc {i}" for i in range(600)]
    mem.labels = [str(i % 3) for i in range(600)]
    return mem


def assert_same(a: DomainMemory, b: DomainMemory):
    for part in ("indptr", "indices", "data"):
        np.testing.assert_array_equal(getattr(a.laplacian, part), getattr(b.laplacian, part))
    assert a.laplacian.shape == b.laplacian.shape
    assert a.fingerprint == b.fingerprint
    assert a.params == b.params and a.name == b.name
    assert a.source["n_items"] == b.source["n_items"]


def test_single_file_round_trip(memory, tmp_path):
    out = save_domain_memory(memory, tmp_path / "dom.safetensors", keep_items=False)
    loaded = load_domain_memory(out)
    assert_same(memory, loaded)
    assert not loaded.has_items
    assert loaded.laplacian.dtype == np.float64 and sp.isspmatrix_csr(loaded.laplacian)
    dense = loaded.laplacian_tensor()
    assert tuple(dense.shape) == (12, 12) and str(dense.dtype) == "torch.float32"


@pytest.mark.parametrize("target", ["dom_dir", "with_items.safetensors"])
def test_round_trip_with_items(memory, tmp_path, target):
    save_domain_memory(memory, tmp_path / target, keep_items=True)
    loaded = load_domain_memory(tmp_path / target)
    assert_same(memory, loaded)
    np.testing.assert_allclose(loaded.items, memory.items, rtol=1e-3, atol=1e-3)  # stored as float16
    assert loaded.texts == memory.texts and loaded.labels == memory.labels
    np.testing.assert_array_equal(loaded.clusters, memory.clusters)
    if target == "dom_dir":
        assert sorted(p.name for p in (tmp_path / target).iterdir()) == ["domain.safetensors", "items.json", "items.safetensors"]


def test_resaving_a_directory_without_items_drops_stale_item_files(memory, tmp_path):
    save_domain_memory(memory, tmp_path / "d", keep_items=True)
    save_domain_memory(memory, tmp_path / "d", keep_items=False)
    assert [p.name for p in (tmp_path / "d").iterdir()] == ["domain.safetensors"]
    assert not load_domain_memory(tmp_path / "d").has_items


def test_no_temporary_files_left(memory, tmp_path):
    save_domain_memory(memory, tmp_path / "a.safetensors")
    assert [p.name for p in tmp_path.iterdir()] == ["a.safetensors"]


def write_reference_parquet(path, L, name="manifold"):
    coo = sp.coo_matrix(L)
    n = L.shape[0]
    pd.DataFrame(
        {
            "name_id": name,
            "n_rows": n,
            "n_cols": n,
            "nnz": coo.nnz,
            "row": coo.row.astype(np.uint64),
            "col": coo.col.astype(np.uint64),
            "value": coo.data,
        }
    ).to_parquet(path)


def small_laplacian():
    W = np.zeros((5, 5))
    for i, j, w in [(0, 1, 0.3), (1, 2, 0.25), (2, 3, 0.31), (3, 4, 0.28), (0, 4, 0.2)]:
        W[i, j] = W[j, i] = w
    return np.diag(W.sum(axis=1)) - W


def test_reference_parquet_import_round_trip(tmp_path):
    L = small_laplacian()
    write_reference_parquet(tmp_path / "m.parquet", L)
    side = {
        "name_id": "m",
        "builder_config": {"lambda_eps": {"F64": 1.31}, "lambda_k": {"Usize": 25}, "lambda_topk": {"Usize": 15},
                           "lambda_p": {"F64": 1.8}, "lambda_sigma": {"OptionF64": 0.535}, "normalise": {"Bool": False},
                           "nitems": {"Usize": 1000}, "sampling": {"OptionSamplerType": {"Simple": 0.6}}},
    }
    (tmp_path / "m.json").write_text(json.dumps(side))
    mem = import_reference_manifold(tmp_path / "m.parquet", tmp_path / "m.json")
    np.testing.assert_array_equal(mem.laplacian.toarray(), L)
    assert mem.params["eps"] == 1.31 and mem.params["k"] == 25 and mem.params["topk"] == 15
    assert mem.params["sigma"] == 0.535 and mem.params["normalised"] is False
    assert mem.params["reference"]["sampling"] == {"Simple": 0.6}
    assert mem.source["n_items"] == 1000
    summary = mem.summary()
    assert summary["components"] == 1 and summary["nnz"] == 15 and summary["zero_eigenvalues"] == 1
    # the sidecar is found next to the parquet by load_domain_memory, and saving keeps everything
    via_load = load_domain_memory(tmp_path / "m.parquet")
    assert via_load.fingerprint == mem.fingerprint
    save_domain_memory(mem, tmp_path / "m.safetensors")
    assert load_domain_memory(tmp_path / "m.safetensors").fingerprint == mem.fingerprint


def test_reference_parquet_problems(tmp_path):
    L = small_laplacian()
    L[0, 1] -= 0.1  # no longer symmetric
    write_reference_parquet(tmp_path / "asym.parquet", L)
    with pytest.raises(DomainError, match=r"asym\.parquet.*not symmetric"):
        import_reference_manifold(tmp_path / "asym.parquet")
    pd.DataFrame({"a": [1, 2]}).to_parquet(tmp_path / "other.parquet")
    with pytest.raises(DomainError, match=r"other\.parquet.*missing column"):
        import_reference_manifold(tmp_path / "other.parquet")
    good = tmp_path / "good.parquet"
    write_reference_parquet(good, small_laplacian())
    (tmp_path / "cut.parquet").write_bytes(good.read_bytes()[:-40])
    with pytest.raises(DomainError, match=r"cut\.parquet.*unreadable"):
        import_reference_manifold(tmp_path / "cut.parquet")


def test_truncated_file(memory, tmp_path):
    out = save_domain_memory(memory, tmp_path / "t.safetensors")
    data = out.read_bytes()
    for cut in (5, 100, len(data) - 10):
        (tmp_path / "cut.safetensors").write_bytes(data[:cut])
        with pytest.raises(DomainError, match=r"cut\.safetensors.*(truncated|not a safetensors)"):
            load_domain_memory(tmp_path / "cut.safetensors")


def test_foreign_and_broken_files(memory, tmp_path):
    write_tensors(tmp_path / "weights.safetensors", {"w": np.ones((2, 2), np.float32)}, {"format": "pt"})
    with pytest.raises(DomainError, match=r"weights\.safetensors.*not a domain-memory file"):
        load_domain_memory(tmp_path / "weights.safetensors")
    meta = {"format": "tauformer-domain-memory", "format_version": "1", "params": "{}", "source": "{}"}
    write_tensors(tmp_path / "nokeys.safetensors", {"laplacian.data": np.ones(3)}, meta)
    with pytest.raises(DomainError, match=r"nokeys\.safetensors.*missing tensor"):
        load_domain_memory(tmp_path / "nokeys.safetensors")
    (tmp_path / "text.safetensors").write_text("hello, not a tensor file at all")
    with pytest.raises(DomainError, match=r"text\.safetensors"):
        load_domain_memory(tmp_path / "text.safetensors")
    (tmp_path / "x.bin").write_bytes(b"\0" * 16)
    with pytest.raises(DomainError, match=r"x\.bin.*unknown domain-memory format"):
        load_domain_memory(tmp_path / "x.bin")
    with pytest.raises(DomainError, match=r"missing\.safetensors.*not found"):
        load_domain_memory(tmp_path / "missing.safetensors")


def tampered(memory, tmp_path, name, **changes):
    L = memory.laplacian
    parts = {"laplacian.indptr": L.indptr, "laplacian.indices": L.indices, "laplacian.data": L.data.copy(),
             "laplacian.shape": np.array(L.shape, dtype=np.int64)}
    parts.update(changes)
    meta = {"format": "tauformer-domain-memory", "format_version": "1", "params": json.dumps(memory.params),
            "source": "{}", "fingerprint": memory.fingerprint, "name": "x"}
    write_tensors(tmp_path / name, parts, meta)
    return tmp_path / name


def test_inconsistent_contents(memory, tmp_path):
    L = memory.laplacian
    data = L.data.copy()
    data[0] += 1.0
    with pytest.raises(DomainError, match=r"edited\.safetensors.*(fingerprint mismatch|not symmetric)"):
        load_domain_memory(tampered(memory, tmp_path, "edited.safetensors", **{"laplacian.data": data}))
    bad = L.indices.copy()
    bad[-1] = 99
    with pytest.raises(DomainError, match=r"range\.safetensors.*out of range"):
        load_domain_memory(tampered(memory, tmp_path, "range.safetensors", **{"laplacian.indices": bad}))
    with pytest.raises(DomainError, match=r"ptr\.safetensors.*indptr"):
        load_domain_memory(tampered(memory, tmp_path, "ptr.safetensors", **{"laplacian.indptr": L.indptr[:-1]}))
    nan = L.data.copy()
    nan[1] = np.nan
    with pytest.raises(DomainError, match=r"nan\.safetensors.*NaN"):
        load_domain_memory(tampered(memory, tmp_path, "nan.safetensors", **{"laplacian.data": nan}))
    with pytest.raises(DomainError, match=r"shape\.safetensors.*square"):
        load_domain_memory(tampered(memory, tmp_path, "shape.safetensors", **{"laplacian.shape": np.array([12, 11])}))
