"""Property-based fuzzing of the readers of untrusted input: whatever the bytes, they either load
or raise the project's error type (TauformerError), never anything else."""

from __future__ import annotations

import json
import math
import struct
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tauformer.config import ModelConfig, TrainConfig
from tauformer.domain import load_embedding
from tauformer.domain.stfile import read_tensors
from tauformer.errors import TauformerError
from tauformer.safefile import SAFETENSORS_ITEMSIZE, read_safetensors_header

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def _scratch(data: bytes, suffix: str) -> Path:
    fh = tempfile.NamedTemporaryFile(suffix=suffix, delete=False)
    fh.write(data)
    fh.close()
    return Path(fh.name)


def _entry():
    dtypes = st.sampled_from(sorted(SAFETENSORS_ITEMSIZE) + ["Q7", "F16 ", ""])
    small = st.integers(-3, 40)
    return st.fixed_dictionaries({"dtype": dtypes, "shape": st.lists(small, max_size=3),
                                  "data_offsets": st.lists(small, min_size=0, max_size=3)}) | json_values


@st.composite
def safetensors_files(draw) -> bytes:
    header = draw(st.dictionaries(st.text(min_size=1, max_size=6), _entry(), max_size=4))
    if draw(st.booleans()):
        header["__metadata__"] = draw(json_values)
    raw = json.dumps(header).encode()
    length = draw(st.sampled_from([len(raw), len(raw) + 3, 0, 2**63, max(0, len(raw) - 2)]))
    body = draw(st.binary(max_size=64))
    data = struct.pack("<Q", length) + raw + body
    cut = draw(st.integers(0, len(data)))
    return data[:cut] if draw(st.booleans()) else data


@FUZZ
@given(safetensors_files())
def test_safetensors_header_reader_loads_or_refuses(data):
    path = _scratch(data, ".safetensors")
    try:
        try:
            header, _ = read_safetensors_header(path)
        except TauformerError:
            return
        try:
            read_tensors(path, header=(header, {}))
        except TauformerError:
            pass
    finally:
        path.unlink()


@FUZZ
@given(st.binary(max_size=200))
def test_safetensors_header_reader_on_raw_bytes(data):
    path = _scratch(data, ".safetensors")
    try:
        read_safetensors_header(path)
    except TauformerError:
        pass
    finally:
        path.unlink()


MODEL_KEYS = [f for f in ModelConfig.__dataclass_fields__]
TRAIN_KEYS = [f for f in TrainConfig.__dataclass_fields__]


@FUZZ
@given(st.dictionaries(st.sampled_from(MODEL_KEYS + ["n_kv_heads", "attn", "bogus"]), json_values, max_size=6) | json_values)
def test_model_config_from_dict_loads_or_refuses(data):
    try:
        cfg = ModelConfig.from_dict(data)
    except TauformerError:
        return
    assert isinstance(cfg.n_layer, int) and 1 <= cfg.n_layer <= 1024 and math.isfinite(cfg.tau)


@FUZZ
@given(st.dictionaries(st.sampled_from(TRAIN_KEYS + ["max_steps", "bogus"]), json_values, max_size=6) | json_values)
def test_train_config_from_dict_loads_or_refuses(data):
    try:
        TrainConfig.from_dict(data)
    except TauformerError:
        pass


csv_cells = st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(repr), st.integers().map(str),
                      st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=6), st.just(""))


@st.composite
def csv_texts(draw) -> bytes:
    if draw(st.booleans()):
        return draw(st.binary(max_size=120))
    n_cols = draw(st.integers(1, 4))
    rows = draw(st.lists(st.lists(csv_cells, min_size=n_cols, max_size=n_cols + 1), max_size=8))
    lines = [",".join(f"c{i}" for i in range(n_cols))] + [",".join(r) for r in rows]
    return "\n".join(lines).encode("utf-8", "surrogatepass")


@FUZZ
@given(csv_texts())
def test_csv_reader_loads_or_refuses(data):
    path = _scratch(data, ".csv")
    try:
        emb = load_embedding(path, embedder="tfidf")
    except TauformerError:
        return
    finally:
        path.unlink()
    assert emb.X.dtype == np.float32 and np.isfinite(emb.X).all()
