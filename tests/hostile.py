"""A corpus of hostile files, built on the spot: each case is a run, checkpoint or domain path
that must be refused with one line naming the file, without running code, hanging or a traceback.

Every pickle here, if unpickled, creates the file ``MARKER`` in the corpus root: the tests assert
that it never appears.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import shutil
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MARKER = "UNPICKLED-CODE-RAN"


@dataclass
class Case:
    """One hostile input: ``kind`` is "run" (a run directory), "domain" (a domain-memory path)
    or "embedding" (input of ``domain build``); ``names`` is what the refusal must mention."""

    label: str
    kind: str
    path: Path
    names: str
    hangs: bool = False  # a FIFO: only safe to try in a subprocess with a timeout


class _Payload:
    """Unpickling this creates the marker file (``open(marker, "w")``)."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def pickle_bytes(root: Path) -> bytes:
    return pickle.dumps({"weights": _Payload(root / MARKER)})


# ------------------------------------------------------------------ good inputs to spoil
def tiny_model_config() -> dict:
    return dict(vocab_size=256, block_size=16, n_layer=1, n_head=2, n_kv_head=1, n_embd=16)


def good_run(root: Path, name: str = "good", attention: str = "tau") -> Path:
    """A run directory with one small checkpoint, ckpt-1/."""
    from tauformer.checkpoint import checkpoint_dir, save_checkpoint
    from tauformer.config import ModelConfig
    from tauformer.model import GPT

    model = GPT(ModelConfig(attention=attention, **tiny_model_config()))
    run = root / name
    save_checkpoint(checkpoint_dir(run, 1), model, step=1, history=[{"step": 1, "val_loss": 5.0}],
                    optimizer_state={"state": {}, "param_groups": [{"lr": 0.1}]}, trainer_state={"step": 1})
    return run


def good_domain(path: Path, D: int = 8) -> Path:
    """A chain-Laplacian domain memory with items, as a file or directory (by ``path``'s suffix)."""
    import scipy.sparse as sp

    from tauformer.domain import DomainMemory, save_domain_memory

    main = np.full(D, 2.0)
    main[[0, -1]] = 1.0
    L = sp.diags([-np.ones(D - 1), main, -np.ones(D - 1)], [-1, 0, 1], format="csr")
    rng = np.random.default_rng(0)
    memory = DomainMemory(laplacian=L, params={"dim": D}, source={"n_items": 6}, name="chain",
                          items=rng.normal(size=(6, D)).astype(np.float32), texts=[f"t{i}" for i in range(6)],
                          clusters=np.zeros(6, dtype=np.int64))
    save_domain_memory(memory, path, keep_items=True)
    return path


# ------------------------------------------------------------------ safetensors surgery
def split_safetensors(data: bytes) -> tuple[dict, bytes]:
    (n,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8:8 + n]), data[8 + n:]


def join_safetensors(header: dict, body: bytes, pad: bool = True) -> bytes:
    raw = json.dumps(header).encode()
    if pad:
        raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw + body


def edit_header(path: Path, edit) -> None:
    header, body = split_safetensors(path.read_bytes())
    edit(header)
    path.write_bytes(join_safetensors(header, body))


def first_tensor(header: dict, dtype: str | None = None) -> str:
    names = [k for k, v in header.items() if k != "__metadata__" and (dtype is None or v["dtype"] == dtype)]
    return sorted(names, key=lambda k: header[k]["data_offsets"][0])[0]


def _offsets_past_eof(h):
    name = first_tensor(h)
    h[name]["data_offsets"][1] += 10 ** 9


def _overlap(h):
    names = sorted((k for k in h if k != "__metadata__"), key=lambda k: h[k]["data_offsets"][0])
    a, b = names[-2], names[-1]
    h[b]["data_offsets"] = list(h[a]["data_offsets"])
    h[b]["shape"], h[b]["dtype"] = list(h[a]["shape"]), h[a]["dtype"]


def _huge_shape(h):
    name = first_tensor(h)
    h[name]["shape"] = [2 ** 40, 2 ** 30]


def _relabel_float_as_int(h):
    for v in h.values():
        if isinstance(v, dict) and v.get("dtype") in ("F16", "F32", "F64"):
            v["dtype"] = {"F16": "I16", "F32": "I32", "F64": "I64"}[v["dtype"]]


def _unknown_dtype(h):
    h[first_tensor(h)]["dtype"] = "Q7"


def _negative_offset(h):
    h[first_tensor(h)]["data_offsets"] = [-8, 0]


HEADER_LIES = {
    "offsets past EOF": _offsets_past_eof,
    "overlapping tensors": _overlap,
    "huge shape": _huge_shape,
    "float relabelled as int": _relabel_float_as_int,
    "unknown dtype": _unknown_dtype,
    "negative offset": _negative_offset,
}


def huge_header_length(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(struct.pack("<Q", 2 ** 62) + data[8:])


# ------------------------------------------------------------------ the corpus
def build_corpus(root: Path, *, fifos: bool = True) -> list[Case]:
    """Build every hostile case under ``root``; returns them in a fixed order."""
    root.mkdir(parents=True, exist_ok=True)
    cases: list[Case] = []
    template = good_run(root / "_templates", "run")
    outside = root / "_outside"
    outside.mkdir(exist_ok=True)
    shutil.copy(template / "ckpt-1" / "config.json", outside / "config.json")
    dom_template = good_domain(root / "_templates" / "dom")

    def run_case(label, spoil, names):
        run = root / "runs" / label.replace(" ", "_")
        shutil.copytree(template, run)
        spoil(run / "ckpt-1")
        cases.append(Case(label, "run", run, names))

    def dom_case(label, spoil, names, layout="dir"):
        base = root / "domains" / label.replace(" ", "_")
        if layout == "dir":
            shutil.copytree(dom_template, base)
            spoil(base)
        else:
            base.mkdir(parents=True)
            path = base / "d.safetensors"
            shutil.copy(dom_template / "domain.safetensors", path)
            spoil(path)
            base = path
        cases.append(Case(label, "domain", base, names))

    payload = pickle_bytes(root)
    for fname in ("model.safetensors", "config.json", "history.json", "optimizer.safetensors", "trainer.json"):
        run_case(f"pickle as {fname}", lambda c, f=fname: (c / f).write_bytes(payload), fname)
    for fname in ("domain.safetensors", "items.safetensors", "items.json"):
        dom_case(f"pickle as {fname}", lambda d, f=fname: (d / f).write_bytes(payload), fname)

    for label, lie in HEADER_LIES.items():
        run_case(f"weights: {label}", lambda c, lie=lie: edit_header(c / "model.safetensors", lie), "model.safetensors")
        dom_case(f"domain: {label}", lambda d, lie=lie: edit_header(d / "domain.safetensors", lie), "domain.safetensors")
    run_case("weights: huge header length", lambda c: huge_header_length(c / "model.safetensors"), "model.safetensors")
    dom_case("items: huge header length", lambda d: huge_header_length(d / "items.safetensors"), "items.safetensors")

    size = (template / "ckpt-1" / "model.safetensors").stat().st_size
    for cut in (0, 5, 8, 40, size // 2, size - 1):
        run_case(f"weights truncated at {cut}", lambda c, cut=cut: _truncate(c / "model.safetensors", cut), "model.safetensors")
    dsize = (dom_template / "domain.safetensors").stat().st_size
    for cut in (3, 16, dsize // 2, dsize - 1):
        dom_case(f"domain truncated at {cut}", lambda d, cut=cut: _truncate(d / "domain.safetensors", cut), "domain.safetensors")
    run_case("config truncated", lambda c: _truncate(c / "config.json", 30), "config.json")
    run_case("history truncated", lambda c: _truncate(c / "history.json", 5), "history.json")

    for label, edit in ABSURD_CONFIGS.items():
        names = "model.safetensors" if "weights" in label else "config.json"
        run_case(f"config: {label}", lambda c, edit=edit: _edit_config(c / "config.json", edit), names)
    run_case("config nested 100k deep", lambda c: (c / "config.json").write_text("[" * 100_000 + "]" * 100_000), "config.json")
    run_case("history with a text step", lambda c: (c / "history.json").write_text('[{"step": "ten"}]'), "history.json")
    run_case("history nested 100k deep", lambda c: (c / "history.json").write_text("[" * 100_000 + "]" * 100_000), "history.json")
    run_case("config symlink out of the run", lambda c: _symlink(c / "config.json", outside / "config.json"), "config.json")
    run_case("checkpoint symlinked out of the run", lambda c: _move_out(c, outside / "ckpt-elsewhere"), "config.json")
    run_case("weights from a foreign model", lambda c: _foreign_weights(c, root), "model.safetensors")

    for label, edit in BROKEN_CSR.items():
        dom_case(f"csr: {label}", lambda d, edit=edit: _edit_csr(d, edit), "d.safetensors", layout="file")
    dom_case("items symlink out of the domain", lambda d: _symlink(d / "items.safetensors", dom_template / "items.safetensors"),
             "items.safetensors")
    dom_case("items.json nested 100k deep", lambda d: (d / "items.json").write_text("[" * 100_000 + "]" * 100_000), "items.json")
    dom_case("items as int8", lambda d: _items_dtype(d), "items.safetensors")

    emb = root / "embeddings"
    emb.mkdir()
    np.save(emb / "objects.npy", np.array([_Payload(root / MARKER)], dtype=object), allow_pickle=True)
    (emb / "pickle.npy").write_bytes(payload)
    _npz_with(emb / "pickle.npz", {"x.npy": _npy_bytes_of(np.array([_Payload(root / MARKER)], dtype=object))})
    _npz_with(emb / "bomb.npz", {"x.npy": _npy_bytes_of(np.zeros((4096, 4096), np.float32))}, deflate=True)
    _npz_with(emb / "liar.npz", {"x.npy": _npy_header((1 << 20, 1 << 12), "<f8")})
    (emb / "liar.npy").write_bytes(_npy_header((1 << 20, 1 << 12), "<f8"))
    (emb / "pickle.npz").with_name("zip_pickle.npz").write_bytes(payload)
    for f in sorted(emb.iterdir()):
        cases.append(Case(f"embedding {f.name}", "embedding", f, f.name))
    cases.append(Case("parquet that is a pickle", "domain", _write(emb / "m.parquet", payload), "m.parquet"))

    if fifos:
        for fname in ("config.json", "model.safetensors", "history.json"):
            run_case(f"FIFO as {fname}", lambda c, f=fname: _fifo(c / f), fname)
            cases[-1].hangs = True
        dom_case("FIFO as domain.safetensors", lambda d: _fifo(d / "domain.safetensors"), "domain.safetensors")
        cases[-1].hangs = True
        dom_case("FIFO as items.json", lambda d: _fifo(d / "items.json"), "items.json")
        cases[-1].hangs = True
        os.mkfifo(emb / "fifo.npy")
        cases.append(Case("FIFO as an embedding", "embedding", emb / "fifo.npy", "fifo.npy", hangs=True))
    return cases


ABSURD_CONFIGS = {
    "n_layer 10^7": lambda m: m.update(n_layer=10 ** 7),
    "n_layer as text": lambda m: m.update(n_layer="4"),
    "n_layer 4.5": lambda m: m.update(n_layer=4.5),
    "n_layer true": lambda m: m.update(n_layer=True),
    "n_head not dividing n_embd": lambda m: m.update(n_head=3, n_kv_head=3),
    "n_kv_head not dividing n_head": lambda m: m.update(n_kv_head=3),
    "negative vocabulary": lambda m: m.update(vocab_size=-5),
    "tau NaN": lambda m: m.update(tau=float("nan")),
    "temperature infinite": lambda m: m.update(temperature=float("inf")),
    "n_embd 2^40": lambda m: m.update(n_embd=2 ** 40, n_head=2),
    "model a list": lambda m: (m.clear(), m.setdefault("__list__", True)),
    "unknown key": lambda m: m.update(bogus=1),
    "more layers than the weights": lambda m: m.update(n_layer=40),  # refused naming the weights
}


def _edit_config(path: Path, edit) -> None:
    config = json.loads(path.read_text())
    edit(config["model"])
    if config["model"].get("__list__"):
        config["model"] = [1, 2, 3]
    path.write_text(json.dumps(config))


BROKEN_CSR = {
    "indptr not from 0": lambda t: t["laplacian.indptr"].__setitem__(0, 1),
    "indptr decreasing": lambda t: t["laplacian.indptr"].__setitem__(2, 0),
    "indptr not ending at nnz": lambda t: t["laplacian.indptr"].__setitem__(-1, 3),
    "index out of range": lambda t: t["laplacian.indices"].__setitem__(0, 10 ** 6),
    "negative index": lambda t: t["laplacian.indices"].__setitem__(0, -1),
    "not symmetric": lambda t: t["laplacian.data"].__setitem__(1, 7.0),
    "NaN value": lambda t: t["laplacian.data"].__setitem__(0, np.nan),
    "not square": lambda t: t.__setitem__("laplacian.shape", np.array([8, 9], np.int64)),
    "float indices": lambda t: t.__setitem__("laplacian.indices", t["laplacian.indices"].astype(np.float64)),
    "D = 300,000 claimed": lambda t: t.__setitem__("laplacian.shape", np.array([300_000, 300_000], np.int64)),
    "3-D shape": lambda t: t.__setitem__("laplacian.shape", np.array([8, 8, 8], np.int64)),
}


def _edit_csr(path: Path, edit) -> None:
    from safetensors.numpy import load_file, save_file

    from tauformer.domain.stfile import read_header

    _, meta = read_header(path)
    tensors = {k: v.copy() for k, v in load_file(str(path)).items()}
    edit(tensors)
    save_file(tensors, str(path), metadata=meta)


def _items_dtype(d: Path) -> None:
    from safetensors.numpy import load_file, save_file

    tensors = load_file(str(d / "items.safetensors"))
    tensors["items"] = (tensors["items"] * 10).astype(np.int8)
    save_file(tensors, str(d / "items.safetensors"), metadata={"format": "tauformer-domain-memory-items"})


def _foreign_weights(ckpt: Path, root: Path) -> None:
    """Weights of a dot model of the same shape under a tau model's config (keys differ)."""
    other = good_run(root / "_templates", f"dot-{ckpt.parent.name}", attention="dot")
    shutil.copy(other / "ckpt-1" / "model.safetensors", ckpt / "model.safetensors")
    # and a tau config whose model needs 4x the layers: the header check must catch it first
    _edit_config(ckpt / "config.json", lambda m: m.update(n_layer=2))


def _truncate(path: Path, size: int) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:size])


def _symlink(path: Path, target: Path) -> None:
    path.unlink()
    path.symlink_to(target)


def _move_out(path: Path, target: Path) -> None:
    """Move a directory out and leave a symlink to it in its place."""
    shutil.move(str(path), str(target))
    path.symlink_to(target, target_is_directory=True)


def _fifo(path: Path) -> None:
    path.unlink()
    os.mkfifo(path)


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _npy_bytes_of(array) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=True)
    return buf.getvalue()


def _npy_header(shape, descr: str) -> bytes:
    """Only the header of an .npy announcing ``shape`` -- no data behind it."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": shape})
    return buf.getvalue()


def _npz_with(path: Path, members: dict, deflate: bool = False) -> None:
    mode = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
    with zipfile.ZipFile(path, "w", compression=mode) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
