"""Uploads: checking and storing files, building their domain memories, the card's callbacks."""

from __future__ import annotations

import base64
import io
import re

import numpy as np
import pytest
from dash import no_update
from dash.exceptions import PreventUpdate

from tauformer.domain import load_domain_memory
from tauformer.errors import DomainError
from workbench.data import Workspace, uploads
from workbench.views import upload


def data_url(payload: bytes) -> str:
    return "data:application/octet-stream;base64," + base64.b64encode(payload).decode()


def npy_bytes(array) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def clustered(n=90, f=16, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(4, f))
    return (centres[rng.integers(4, size=n)] + 0.3 * rng.normal(size=(n, f))).astype(np.float32)


def text_of(component) -> str:
    if isinstance(component, (list, tuple)):
        return " ".join(text_of(c) for c in component)
    if hasattr(component, "children"):
        return text_of(component.children)
    return "" if component is None else str(component)


@pytest.fixture
def ws(tmp_path):
    return Workspace(cache_dir=tmp_path / "cache", max_upload_mb=1)


@pytest.mark.parametrize("filename, payload, problem", [
    ("emb.exe", b"MZ", "unknown format '.exe'"),
    ("emb", b"123", "unknown format '(no suffix)'"),
    ("emb.npy", b"", "nothing was uploaded"),
    ("big.npy", b"x" * (2 * 1024 * 1024), "over the upload limit of 1 MB"),
])
def test_bad_uploads_are_refused_with_the_file_named(filename, payload, problem):
    contents = data_url(payload) if payload else None
    with pytest.raises(DomainError, match=re.escape(problem)) as info:
        uploads.decode_upload(contents, filename, max_mb=1)
    assert filename in str(info.value) or filename == "emb.npy"


def test_empty_and_damaged_files():
    with pytest.raises(DomainError, match="empty.csv: the file is empty"):
        uploads.decode_upload("data:text/csv;base64,", "empty.csv")
    with pytest.raises(DomainError, match="arrived damaged"):
        uploads.decode_upload("data:x;base64,@@@@", "emb.npy")


def test_uploads_are_stored_by_content_under_the_cache_dir(tmp_path):
    data, suffix = uploads.decode_upload(data_url(b"abc,def\n1,2\n"), "../../etc/Evil Name.CSV")
    assert suffix == ".csv"
    sha, path = uploads.store_upload(tmp_path, data, suffix)
    assert path.parent == tmp_path / "uploads" and path.name == f"{sha}.csv"
    assert uploads.store_upload(tmp_path, data, suffix) == (sha, path)
    assert uploads.display_name("../../etc/Evil Name.CSV") == "Evil-Name"


def test_dim_parsing_and_resolution():
    assert uploads.parse_dim("") is None and uploads.parse_dim(None) is None
    assert uploads.parse_dim("16") == 16 and uploads.parse_dim(24.0) == 24
    for bad in ("1", "2.5", "x", -4):
        with pytest.raises(DomainError, match="dim must be a whole number"):
            uploads.parse_dim(bad)
    assert uploads.resolve_dim(None, 32, 384) == 32  # the run's head dim fits
    assert uploads.resolve_dim(None, 64, 40) == 32  # it does not: min(F, 32)
    assert uploads.resolve_dim(None, None, 10) == 10
    assert uploads.resolve_dim(8, 32, 384) == 8
    with pytest.raises(DomainError, match="larger than the embedding's 10 features"):
        uploads.resolve_dim(16, None, 10)


def test_build_an_upload_then_find_it_built(ws):
    job = uploads.receive_upload(ws.cache_dir, data_url(npy_bytes(clustered())), "topics.npy", head_dim=8)
    steps = []
    path = uploads.build_upload(ws.cache_dir, job, progress=lambda s, t, text: steps.append((s, t, text)))
    assert (path / "domain.safetensors").is_file() and (path / "items.safetensors").is_file()
    assert steps[0][0] == 0 and steps[-1][:2] == (len(uploads.BUILD_PHASES),) * 2
    assert uploads.upload_record(path)["resolved_dim"] == 8
    memory = load_domain_memory(path)
    assert memory.dim == 8 and memory.summary()["edges"] > 0  # a graph, not 8 isolated features
    assert memory.params["eps"] == uploads.BUILD_PARAMS["eps"] and memory.has_items
    again = uploads.receive_upload(ws.cache_dir, data_url(npy_bytes(clustered())), "copy.npy", head_dim=8)
    assert again.key == job.key and uploads.finished(ws.cache_dir, again) == path
    other_dim = uploads.receive_upload(ws.cache_dir, data_url(npy_bytes(clustered())), "topics.npy", dim=4,
                                       head_dim=8)
    assert other_dim.key != job.key and uploads.finished(ws.cache_dir, other_dim) is None


@pytest.mark.parametrize("array, problem", [
    (np.array([[1.0, 2.0], [np.nan, 1.0], [3.0, 4.0]]), "row(s) contain NaN or inf"),
    (np.arange(10.0), "expected a 2-D array"),
    (np.ones((1, 8)), "need at least 2 items"),
])
def test_bad_content_is_a_clear_error_naming_the_upload(ws, array, problem):
    job = uploads.receive_upload(ws.cache_dir, data_url(npy_bytes(array)), "bad.npy")
    with pytest.raises(DomainError, match=re.escape(problem)) as info:
        uploads.build_upload(ws.cache_dir, job)
    assert "bad.npy" in str(info.value) and str(ws.cache_dir) not in str(info.value)


def test_a_pickled_npy_is_never_loaded(ws):
    buffer = io.BytesIO()
    np.save(buffer, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    job = uploads.receive_upload(ws.cache_dir, data_url(buffer.getvalue()), "pickle.npy")
    with pytest.raises(DomainError, match="pickle.npy"):
        uploads.build_upload(ws.cache_dir, job)


def test_the_card_callbacks_receive_build_and_select(ws):
    contents = data_url(npy_bytes(clustered(seed=3)))
    job, result, message, last = upload.receive(ws, contents, "mine.npy", None, None)
    assert result is no_update and job["filename"] == "mine.npy" and "building" in text_of(message)
    progress = []
    built = upload.build(ws.cache_dir, progress.append, job)
    assert "error" not in built and progress[-1][2] == "done"
    options, value, message = upload.register(ws, built)
    assert value == "mine" and {"label": "mine", "value": "mine"} in options
    assert "selected in the domain picker" in text_of(message)
    assert ws.domains.load("mine").has_items
    # the same file again: no build, straight to the result
    job2, result2, message2, _ = upload.receive(ws, contents, "mine.npy", None, None)
    assert job2 is no_update and result2["cached"] and result2["path"] == built["path"]
    # a rebuild with another D re-uses the stored file
    job3, *_ = upload.receive(ws, None, None, "4", None, last, rebuild=True)
    assert job3["dim"] == 4 and job3["sha"] == last["sha"]


def test_the_card_shows_errors_and_keeps_going(ws):
    job, result, message, last = upload.receive(ws, data_url(b"\x00" * 10), "x.bin", None, None)
    assert job is no_update and "unknown format" in text_of(message)
    bad = upload.receive(ws, data_url(npy_bytes(np.arange(5.0))), "flat.npy", None, None)[0]
    built = upload.build(ws.cache_dir, lambda p: None, bad)
    assert "expected a 2-D array" in built["error"]
    options, value, message = upload.register(ws, built)
    assert options is no_update and "flat.npy" in text_of(message)
    with pytest.raises(PreventUpdate):
        upload.receive(ws, None, None, None, None)
    assert "Files up to 1 MB." in text_of(upload.upload_card(ws))


def test_an_upload_whose_graph_falls_apart_is_refused_naming_eps_and_topk(ws, monkeypatch):
    # the reference's tiny eps leaves a clustered embedding's graph in pieces (or without edges)
    monkeypatch.setattr(uploads, "BUILD_PARAMS", {**uploads.BUILD_PARAMS, "eps": 1e-3, "topk": 3})
    job = uploads.receive_upload(ws.cache_dir, data_url(npy_bytes(clustered())), "sparse.npy", head_dim=8)
    with pytest.raises(DomainError) as info:
        uploads.build_upload(ws.cache_dir, job)
    text = str(info.value)
    assert text.startswith("sparse.npy: the feature graph ") and len(text.splitlines()) == 1
    assert "no edges" in text or "falls apart" in text
    assert "eps=0.001" in text and "topk=3" in text and "--allow-disconnected" not in text
    assert uploads.finished(ws.cache_dir, job) is None and not uploads.domain_dir(ws.cache_dir, job.key).exists()
    built = upload.build(ws.cache_dir, lambda p: None, job.to_dict())  # the card reports it, no crash
    assert built == {"error": text}


def test_the_connectivity_check_refuses_a_graph_in_pieces():
    import scipy.sparse as sp

    from tauformer.domain.builder import CLI_REMEDY, connectivity_problem
    from tauformer.domain.graph import laplacian_from_adjacency
    from tauformer.domain.memory import DomainMemory

    pair = sp.csr_matrix(np.array([[0.0, 1.0], [1.0, 0.0]]))
    params = {"eps": 0.5, "topk": 1, "k": 1}
    pieces = DomainMemory(laplacian_from_adjacency(sp.block_diag([pair] * 4).tocsr()), params)  # 4 parts, D 8
    problem = connectivity_problem(pieces, "try again")
    assert problem == "the feature graph falls apart into 4 components for D = 8 (eps=0.5, topk=1, k=1); try again"
    whole = sp.csr_matrix(np.ones((8, 8)) - np.eye(8))
    assert connectivity_problem(DomainMemory(laplacian_from_adjacency(whole), params)) is None
    two = DomainMemory(laplacian_from_adjacency(sp.block_diag([whole[:4, :4]] * 2).tocsr()), params)
    assert connectivity_problem(two) is None  # 2 components <= D/4
    assert connectivity_problem(pieces).endswith(CLI_REMEDY)


def table_bytes(kind: str, n=60, seed=0) -> bytes:
    import pandas as pd

    rng = np.random.default_rng(seed)
    X = clustered(n, 6, seed)
    topics = np.array(["sports", "politics", "science"])[rng.integers(3, size=n)]
    df = pd.DataFrame({"text": [f"document {i} about {t}" for i, t in enumerate(topics)], "label": topics,
                       **{f"f{j}": X[:, j] for j in range(X.shape[1])}})
    if kind == "csv":
        return df.to_csv(index=False).encode()
    buffer = io.BytesIO()
    df.rename(columns={"text": "Sentence", "label": "topic"}).to_parquet(buffer)
    return buffer.getvalue()


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_table_uploads_keep_their_text_and_label_columns(ws, kind):
    from workbench.data import domain_views as dv

    contents = data_url(table_bytes(kind))
    job, result, message, last = upload.receive(ws, contents, f"topics.{kind}", None, None)
    built = upload.build(ws.cache_dir, lambda p: None, job)
    assert "error" not in built, built
    upload.register(ws, built)
    memory = ws.domains.load("topics")
    assert memory.items.shape == (60, 6)  # the text and label columns are not features
    assert memory.texts[0] == "document 0 about " + memory.labels[0]
    assert set(memory.labels) == {"sports", "politics", "science"}
    data = dv.item_data(ws, "topics")
    assert {"label": "label", "value": "label"} in dv.color_options(data)
    record = uploads.upload_record(built["path"])
    assert record["label_column"] == ("label" if kind == "csv" else "topic")


def test_table_columns_are_detected_by_name_or_content():
    import pandas as pd

    from workbench.data.table_columns import pick_columns

    n = 40
    df = pd.DataFrame({"a": np.arange(n), "b": np.arange(n) * 2.0,
                       "kind": ["x", "y"] * (n // 2), "words": [f"a long free text number {i}" for i in range(n)]})
    assert pick_columns(df) == {"text_column": "words", "label_column": "kind"}
    assert pick_columns(df[["a", "b"]]) == {"text_column": None, "label_column": None}
    numeric_label = pd.DataFrame({"x": np.arange(n) * 1.5, "y2": np.ones(n), "label": np.arange(n) % 3})
    assert pick_columns(numeric_label) == {"text_column": None, "label_column": "label"}
