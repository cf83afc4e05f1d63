"""Upload bounds: declared sizes checked before inflating, memory estimates, PCA without F x F,
one build / one layout worker at a time, the cache size cap."""

from __future__ import annotations

import base64
import io
import os
import struct
import threading
import time
import tracemalloc
import zipfile
import zlib

import numpy as np
import pytest
from numpy.lib import format as npformat

from tauformer.domain.reduce import pca_basis
from tauformer.errors import DomainError
from workbench.data import Workspace, cache_size, item_layout, upload_checks, uploads
from workbench.data.jobs import JobRegistry


def data_url(payload: bytes) -> str:
    return "data:application/octet-stream;base64," + base64.b64encode(payload).decode()


def npy_header(shape, descr="<f4") -> bytes:
    buffer = io.BytesIO()
    npformat.write_array_header_1_0(buffer, {"descr": descr, "fortran_order": False, "shape": shape})
    return buffer.getvalue()


def zip_bomb(shape=(1_000_000, 1_000)) -> bytes:
    """An .npz whose X.npy inflates to 4 GB of zeros: one deflated 16 MiB block of zeros
    (full flush, so blocks can be repeated) 238 times. The CRC is not computed (never read)."""
    header = npy_header(shape)
    size = len(header) + int(np.prod(shape)) * 4
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = comp.compress(header) + comp.flush(zlib.Z_FULL_FLUSH)
    block = comp.compress(bytes(16 << 20)) + comp.flush(zlib.Z_FULL_FLUSH)
    n_blocks, rest = divmod(size - len(header), 16 << 20)
    tail = comp.compress(bytes(rest)) + comp.flush()
    body = head + block * n_blocks + tail
    name = b"X.npy"
    local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0, 0, len(body), size, len(name), 0) + name
    central = struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 8, 0, 0, 0, len(body), size,
                          len(name), 0, 0, 0, 0, 0, 0) + name
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, len(central), len(local) + len(body), 0)
    return local + body + central + end


@pytest.fixture
def ws(tmp_path):
    return Workspace(cache_dir=tmp_path / "cache", max_upload_mb=8)


def test_a_zip_bomb_npz_is_refused_from_its_headers_without_inflating(ws):
    bomb = zip_bomb()
    assert 3 * 2**20 < len(bomb) < 4.5 * 2**20
    with zipfile.ZipFile(io.BytesIO(bomb)) as zf:
        assert zf.infolist()[0].file_size > 3.9e9  # what it would inflate to
    tracemalloc.start()
    t0 = time.perf_counter()
    with pytest.raises(DomainError, match=r"bomb\.npz: .*declares .*uploads may have at most 250,000 items") as info:
        uploads.receive_upload(ws.cache_dir, data_url(bomb), "bomb.npz")
    seconds, peak = time.perf_counter() - t0, tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert seconds < 5 and peak < 200 * 2**20, (seconds, peak)
    assert "\n" not in str(info.value)
    assert not list((ws.cache_dir / "uploads").iterdir())  # a refused upload is not kept


def test_an_npz_member_whose_npy_header_declares_a_huge_array_is_refused(ws):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:  # small member, header says 1,000,000 x 1,000
        zf.writestr("X.npy", npy_header((1_000_000, 1_000)) + bytes(64))
    with pytest.raises(DomainError, match=r"small\.npz: array 'X' declares 1,000,000 items x 1,000 features"):
        uploads.receive_upload(ws.cache_dir, data_url(buffer.getvalue()), "small.npz")


@pytest.mark.parametrize("shape, problem", [((300_000, 4), "300,000 items"), ((10, 5000), "5,000 features")])
def test_npy_headers_bound_items_and_features(ws, shape, problem):
    with pytest.raises(DomainError, match=problem):
        uploads.receive_upload(ws.cache_dir, data_url(npy_header(shape) + bytes(16)), "wide.npy")


def test_parquet_and_csv_are_bounded_too(ws, monkeypatch):
    import pandas as pd

    monkeypatch.setattr(upload_checks, "MAX_ITEMS", 50)
    table = pd.DataFrame({"a": np.arange(80.0), "b": np.arange(80.0)})
    parquet = io.BytesIO()
    table.to_parquet(parquet)
    with pytest.raises(DomainError, match=r"t\.parquet: declares 80 items"):
        uploads.receive_upload(ws.cache_dir, data_url(parquet.getvalue()), "t.parquet")
    with pytest.raises(DomainError, match=r"t\.csv: declares 80 items"):
        uploads.receive_upload(ws.cache_dir, data_url(table.to_csv(index=False).encode()), "t.csv")
    fine = table.head(40).to_csv(index=False).encode()
    assert uploads.receive_upload(ws.cache_dir, data_url(fine), "ok.csv").size == len(fine)


def test_an_upload_needing_more_memory_than_is_available_is_refused(ws, monkeypatch):
    import psutil

    class Low:
        available = 100 * 2**20

    monkeypatch.setattr(psutil, "virtual_memory", lambda: Low())
    payload = npy_header((1000, 64)) + bytes(1000 * 64 * 4)
    with pytest.raises(DomainError, match=r"mem\.npy: needs about .* of memory and 100\.0 MiB is available"):
        uploads.receive_upload(ws.cache_dir, data_url(payload), "mem.npy")


def test_pca_never_forms_a_features_by_features_matrix():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((400, 4000)).astype(np.float32)
    tracemalloc.start()
    mean, V = pca_basis(X, 8)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert V.shape == (4000, 8) and peak < 4000 * 4000 * 8 / 3, peak / 2**20  # F x F float64: 122 MiB
    np.testing.assert_allclose(V.T @ V, np.eye(8), atol=1e-10)


def test_randomized_pca_finds_the_exact_principal_directions():
    rng = np.random.default_rng(1)
    F = 48
    basis = np.linalg.qr(rng.standard_normal((F, F)))[0]
    X = (rng.standard_normal((2000, F)) * np.geomspace(10, 0.1, F)) @ basis.T
    _, V = pca_basis(X, 12)
    S = X - X.mean(axis=0)
    exact = np.linalg.eigh(S.T @ S)[1][:, ::-1][:, :12]
    np.testing.assert_allclose(np.abs((exact * V).sum(axis=0)), 1.0, atol=1e-6)
    _, again = pca_basis(X, 12)
    np.testing.assert_allclose(V, again, atol=1e-12)  # seeded: reproducible (up to BLAS rounding)
    _, few = pca_basis(X[:5], 8)  # fewer rows than directions: still an orthonormal basis
    np.testing.assert_allclose(few.T @ few, np.eye(8), atol=1e-10)


def test_the_job_registry_runs_one_job_at_a_time_and_says_who_is_queued():
    registry = JobRegistry()
    gate, running = threading.Event(), []

    def job(name):
        def run(progress):
            running.append(name)
            progress(1, 2, f"{name} half")
            gate.wait(10)
            return name
        return run

    registry.submit("a", job("a"))
    second = registry.submit("b", job("b"))
    deadline = time.time() + 5
    while registry.poll("a").state != "running" and time.time() < deadline:
        time.sleep(0.01)
    state_b = registry.poll("b")
    assert state_b.state == "queued" and state_b.position == 1 and second.state == "queued"
    assert running == ["a"] and registry.poll("a").text == "a half"
    gate.set()
    while registry.poll("b").state != "done" and time.time() < deadline:
        time.sleep(0.01)
    assert registry.poll("a").result == "a" and registry.poll("b").result == "b"
    registry.submit("boom", lambda progress: 1 / 0)
    while registry.poll("boom").state not in ("done", "failed") and time.time() < deadline:
        time.sleep(0.01)
    assert registry.poll("boom").state == "failed" and isinstance(registry.poll("boom").result, ZeroDivisionError)


class FakeProc:
    def __init__(self):
        self.code = None

    def poll(self):
        return self.code

    def terminate(self):
        self.code = -15


def test_one_layout_worker_at_a_time_others_queued_and_memory_checked(tmp_path, monkeypatch):
    started = []

    def fake_start(self, key, X, clusters):
        proc = FakeProc()
        started.append((key, proc))
        self._running[key] = (proc, time.time(), self.directory / f"{key}.log")

    monkeypatch.setattr(item_layout.LayoutJobs, "_start", fake_start)
    jobs = item_layout.LayoutJobs(tmp_path / "layouts", available_bytes=lambda: 8 * 2**30)
    X = np.zeros((100, 8), np.float32)
    assert jobs.request("k1", X).status == "running"
    second = jobs.request("k2", X)
    assert second.status == "queued" and "queued behind 1" in second.message
    assert [k for k, _ in started] == ["k1"]
    # the first worker finishes (writes its layout): the queued one starts
    item_layout.save_layout({"xy": np.zeros((100, 2)), "edges": np.zeros((0, 2)), "distances": np.zeros(0),
                             "seconds": {}, "params": {}}, str(jobs.path("k1")))
    started[0][1].code = 0
    assert jobs.request("k1", X).status == "ready"
    assert jobs.request("k2", X).status == "running" and [k for k, _ in started] == ["k1", "k2"]
    # too big for the memory left: refused with the figures, never started
    small = item_layout.LayoutJobs(tmp_path / "small", available_bytes=lambda: 600 * 2**20)
    refused = small.request("big", np.zeros((4000, 8), np.float32))
    assert refused.status == "failed" and "GiB is available" in refused.message
    assert [k for k, _ in started] == ["k1", "k2"]


def test_the_cache_is_trimmed_to_its_cap_oldest_first(tmp_path):
    ws = Workspace(cache_dir=tmp_path / "cache", cache_max_mb=1.5)
    cache = ws.cache_dir
    files = []
    for i, sub in enumerate(["uploads/a.npy", "layouts/k1.npz", "uploads/b.npy", "layouts/k2.npz"]):
        path = cache / sub
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(bytes(512 * 1024))
        os.utime(path, (1000 + i, 1000 + i))
        files.append(path)
    (cache / "layouts" / "k1.log").write_text("log")
    os.utime(cache / "layouts" / "k1.log", (1001, 1001))
    built = cache / "domains" / "d1"
    built.mkdir(parents=True)
    (built / "domain.safetensors").write_bytes(bytes(256 * 1024))
    os.utime(built / "domain.safetensors", (999, 999))
    ws.domains.add(built, name="d1")  # in use: never evicted
    assert cache_size.cache_size(cache) > 1.5 * 2**20
    removed = cache_size.trim_workspace_cache(ws)
    assert {p.name for p in removed} == {"a.npy", "k1.npz", "k1.log"}
    assert built.exists() and files[2].exists() and files[3].exists()
    assert cache_size.cache_size(cache) <= 1.5 * 2**20


def test_a_forged_job_or_result_from_the_browser_is_refused(ws):
    job = uploads.make_job("ab" * 32, ".npy", "x.npy", 10, None, None).to_dict()
    assert uploads.UploadJob.from_dict(job).sha == "ab" * 32
    for forged in ({**job, "sha": "../../etc/passwd"}, {**job, "suffix": ".pkl"}, {"sha": "ab" * 32}):
        with pytest.raises(DomainError):
            uploads.UploadJob.from_dict(forged)
    from dash import no_update

    from workbench.views import upload

    for path in ("/etc", str(ws.cache_dir / "domains" / ".." / ".." / "x"), str(ws.cache_dir / "domains" / "abc")):
        options, value, message = upload.register(ws, {"path": path, "name": "x"})
        assert options is no_update and value is no_update and "no upload of this app" in str(message.children)
    assert ws.domains.names() == []


def test_a_text_corpus_with_too_many_paragraphs_is_refused_before_embedding(ws, monkeypatch):
    monkeypatch.setattr(upload_checks, "MAX_ITEMS", 10)
    text = "\n\n".join(f"paragraph {i} about something" for i in range(12)).encode()
    with pytest.raises(DomainError, match=r"notes\.md: declares 12 items"):
        uploads.receive_upload(ws.cache_dir, data_url(text), "notes.md")
    fine = "\n\n".join(f"paragraph {i}" for i in range(10)).encode()
    assert uploads.receive_upload(ws.cache_dir, data_url(fine), "ok.txt").suffix == ".txt"


def test_the_card_polls_its_build_to_the_end_then_registers_it(ws):
    from workbench.views import upload

    npy = io.BytesIO()
    rng = np.random.default_rng(0)
    np.save(npy, rng.normal(size=(50, 10)).astype(np.float32), allow_pickle=False)
    job = upload.receive(ws, data_url(npy.getvalue()), "polled.npy", None, None)[0]
    registry = JobRegistry()
    deadline = time.time() + 60
    while True:
        value, total, label, style, upload_off, poll_off, result = upload.poll(ws, registry, job)
        if poll_off:
            break
        assert upload_off and style == {"display": "flex"} and time.time() < deadline
        time.sleep(0.05)
    assert value == total == str(len(uploads.BUILD_PHASES)) and not upload_off and "error" not in result
    options, name, message = upload.register(ws, result)
    assert name == "polled" and ws.domains.load("polled").has_items
