"""The cache directory is private, and nothing the app reads back from it can run code."""

from __future__ import annotations

import base64
import io
import os
import pickle
import stat
from pathlib import Path

import numpy as np
import pytest

import app as app_main
from tauformer.errors import TauformerError
from workbench.data import CacheDirError, Workspace, default_cache_dir, ensure_private_dir, item_layout, uploads
from workbench.data import domain_views as dv
from workbench.data import layout_compute


class Plant:
    """Unpickling this creates ``marker``: proof that a planted pickle ran."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def planted_forms(marker: Path) -> dict[str, bytes]:
    """A raw pickle, an .npy holding a pickled object array and an .npz of such members."""
    raw = pickle.dumps(Plant(marker))
    npy = io.BytesIO()
    np.save(npy, np.array([Plant(marker)], dtype=object), allow_pickle=True)
    npz = io.BytesIO()
    np.savez(npz, X=np.array([Plant(marker)], dtype=object), xy=np.array([Plant(marker)], dtype=object),
             edges=np.array([Plant(marker)], dtype=object), meta=np.array([Plant(marker)], dtype=object))
    return {"pickle": raw, "npy": npy.getvalue(), "npz": npz.getvalue()}


def test_the_planted_pickle_really_runs_when_unpickled(tmp_path):
    marker = tmp_path / "ran"
    pickle.loads(planted_forms(marker)["pickle"])
    assert marker.exists()  # so its absence below means "never unpickled"


def data_url(payload: bytes) -> str:
    return "data:application/octet-stream;base64," + base64.b64encode(payload).decode()


def clustered(n=60, f=12, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(3, f))
    return (centres[rng.integers(3, size=n)] + 0.3 * rng.normal(size=(n, f))).astype(np.float32)


def use_the_cache(cache: Path) -> None:
    """Everything the app reads from its cache dir: uploads and their builds, built domain
    memories, item layouts (the server's read and the worker's), the app's pages."""
    from workbench.app import create_app

    item_layout._JOBS.clear()
    ws = Workspace(cache_dir=cache)
    npy = io.BytesIO()
    np.save(npy, clustered(), allow_pickle=False)
    csv = "text,label,a,b,c\n" + "".join(f"item {i},{'ab'[i % 2]},{i},{i * i % 7},{i % 3}\n" for i in range(30))
    for payload, name in ((npy.getvalue(), "emb.npy"), (csv.encode(), "table.csv")):
        try:
            job = uploads.receive_upload(cache, data_url(payload), name)
            path = uploads.build_upload(cache, job)
            added = ws.domains.add(path, name=Path(name).stem)
            memory = dv.load(ws, added)
            item_layout.request(ws, memory)
        except (TauformerError, ValueError, OSError, KeyError):
            pass
    for items in (cache / "layouts").glob("*.items.npz"):
        try:  # the worker's read of its input
            layout_compute.read_inputs(items)
        except (ValueError, OSError, KeyError):
            pass
    for layout in (cache / "layouts").glob("*.npz"):
        try:
            layout_compute.load_layout(layout)
        except (ValueError, OSError, KeyError):
            pass
    dash_app = create_app(ws)
    assert getattr(dash_app, "_background_manager", None) is None  # no disk-backed callback store
    client = dash_app.server.test_client()
    assert client.get("/_dash-layout").status_code == 200
    item_layout._stop_all()


def test_a_planted_pickle_under_every_cache_file_name_never_runs(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setattr(item_layout.LayoutJobs, "_start", _fake_start)
    use_the_cache(cache)
    names = sorted(p.relative_to(cache) for p in cache.rglob("*") if p.is_file())
    assert any(str(n).startswith("uploads/") for n in names) and any(str(n).startswith("domains/") for n in names)
    assert any(str(n).startswith("layouts/") and str(n).endswith(".items.npz") for n in names)
    assert not (cache / "background").exists()
    marker = tmp_path / "ran"
    for form, payload in planted_forms(marker).items():
        for name in names:
            (cache / name).write_bytes(payload)
        use_the_cache(cache)
        assert not marker.exists(), f"a planted {form} ran"


def _fake_start(self, key, X, clusters):
    """Record the worker's input like the real start, without running UMAP (kept fast)."""
    np.savez(self.directory / f"{key}.items.npz", X=np.asarray(X, np.float32))


def test_the_default_cache_dir_is_per_user_and_private(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "tauformer-workbench"
    path = ensure_private_dir()
    assert path == tmp_path / "xdg" / "tauformer-workbench"
    assert stat.S_IMODE(path.stat().st_mode) == 0o700
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "tauformer-workbench"
    assert Workspace().cache_dir == tmp_path / "home" / ".cache" / "tauformer-workbench"


@pytest.mark.parametrize("mode", [0o777, 0o775, 0o1777, 0o722])
def test_a_cache_dir_others_can_write_is_refused(tmp_path, mode):
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, mode)
    with pytest.raises(CacheDirError, match=r"shared: writable by other users"):
        Workspace(cache_dir=shared)


def test_a_cache_dir_of_another_user_is_refused(tmp_path, monkeypatch):
    mine = tmp_path / "mine"
    mine.mkdir(mode=0o700)
    Workspace(cache_dir=mine)  # accepted while it is ours
    monkeypatch.setattr(os, "getuid", lambda: mine.stat().st_uid + 1)
    with pytest.raises(CacheDirError, match="owned by another user"):
        Workspace(cache_dir=mine)


def test_app_py_refuses_a_shared_cache_dir_with_exit_code_2(tmp_path, capsys):
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o777)
    assert app_main.main(["--cache-dir", str(shared), "--port", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(shared) in err[0] and "writable by other users" in err[0]
