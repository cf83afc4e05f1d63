"""The checkpoint format: round trip, and a clear CheckpointError for anything else."""

import json

import pytest
import torch

from tauformer.checkpoint import (
    WEIGHTS_FILE,
    list_checkpoints,
    load_checkpoint,
    read_meta,
    resolve_checkpoint,
    save_checkpoint,
)
from tauformer.config import TrainConfig
from tauformer.errors import CheckpointError
from tauformer.laplacian import chain_laplacian

from conftest import tiny_model


@pytest.mark.parametrize("attention", ["tau", "dot"])
def test_round_trip_gives_identical_logits(tmp_path, attention, tokens):
    model = tiny_model(attention, seed=11)
    if attention == "tau":  # make buffers non-default so their round trip is checked too
        model.laplacian.copy_(chain_laplacian(8) * 3)
        for block in model.transformer.h:
            block.attn.taumode.tau_running.fill_(0.37)
    history = [{"step": 5, "val_loss": 1.0}]
    save_checkpoint(tmp_path / "ckpt-5", model, step=5, train_config=TrainConfig(steps=5), history=history,
                    domain={"laplacian": "chain"})
    loaded, meta = load_checkpoint(tmp_path)
    assert meta.step == 5 and meta.history == history and meta.model_config == model.config
    assert meta.train_config.steps == 5 and meta.domain == {"laplacian": "chain"}
    assert torch.equal(loaded(tokens)[0], model(tokens)[0])


def test_half_precision_weights_load_back_as_float32(tmp_path, tokens):
    model = tiny_model("tau")
    save_checkpoint(tmp_path / "ckpt-1", model, step=1, save_dtype="float16")
    size16 = (tmp_path / "ckpt-1" / WEIGHTS_FILE).stat().st_size
    save_checkpoint(tmp_path / "ckpt-2", model, step=2)
    assert size16 < 0.6 * (tmp_path / "ckpt-2" / WEIGHTS_FILE).stat().st_size
    loaded, _ = load_checkpoint(tmp_path / "ckpt-1")
    assert loaded.transformer.wte.weight.dtype == torch.float32
    assert torch.allclose(loaded(tokens)[0], model(tokens)[0], atol=0.05)


def test_run_directory_resolves_to_latest_and_lists_in_step_order(tmp_path):
    model = tiny_model("dot")
    for step in (10, 2, 100):
        save_checkpoint(tmp_path / f"ckpt-{step}", model, step=step)
    assert [s for s, _ in list_checkpoints(tmp_path)] == [2, 10, 100]
    assert resolve_checkpoint(tmp_path).name == "ckpt-100"


def test_failed_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    model = tiny_model("tau")
    path = tmp_path / "ckpt-3"
    save_checkpoint(path, model, step=3, history=[{"step": 3}])
    import tauformer.checkpoint as ck

    def explode(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(ck, "atomic_write_json", explode)
    with pytest.raises(OSError):
        save_checkpoint(path, model, step=3, history=[{"step": 99}])
    assert read_meta(path).history == [{"step": 3}]
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt-3"]  # no temporary leftovers


@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "ckpt-1"
    save_checkpoint(path, tiny_model("tau"), step=1)
    return path


def test_missing_path(tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "nope")


def test_empty_run_directory(tmp_path):
    with pytest.raises(CheckpointError, match="holds no ckpt"):
        load_checkpoint(tmp_path)


def test_truncated_weights(saved):
    weights = saved / WEIGHTS_FILE
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match=r"model\.safetensors.*truncated"):
        load_checkpoint(saved)


def test_garbage_weights(saved):
    (saved / WEIGHTS_FILE).write_bytes(b"\x80\x04 this is a pickle, not safetensors")
    with pytest.raises(CheckpointError, match="not a safetensors file"):
        load_checkpoint(saved)


def test_foreign_config(saved):
    (saved / "config.json").write_text(json.dumps({"_name_or_path": "gpt2", "n_layer": 12}))
    with pytest.raises(CheckpointError, match="not a tauformer checkpoint"):
        load_checkpoint(saved)


def test_corrupt_config(saved):
    (saved / "config.json").write_text('{"format": "tauformer-checkpoint", ')
    with pytest.raises(CheckpointError, match="config.json: not valid JSON"):
        load_checkpoint(saved)


def test_newer_format_version(saved):
    config = json.loads((saved / "config.json").read_text())
    config["format_version"] = 99
    (saved / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="format version 99"):
        load_checkpoint(saved)


def test_weights_that_do_not_fit_the_config(saved):
    config = json.loads((saved / "config.json").read_text())
    config["model"]["n_layer"] = 3
    (saved / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="do not match"):
        load_checkpoint(saved)


def test_nan_weights(tmp_path):
    model = tiny_model("dot")
    with torch.no_grad():
        model.lm_head.weight[0, 0] = float("nan")
    save_checkpoint(tmp_path / "ckpt-1", model, step=1)
    with pytest.raises(CheckpointError, match="lm_head.weight contains NaN"):
        load_checkpoint(tmp_path)


def test_pickle_file_is_never_executed(tmp_path):
    import pickle

    class Boom:
        def __reduce__(self):
            return (open, (str(tmp_path / "pwned"), "w"))

    ckpt = tmp_path / "ckpt-1"
    save_checkpoint(ckpt, tiny_model("dot"), step=1)
    (ckpt / WEIGHTS_FILE).write_bytes(pickle.dumps({"w": Boom()}))
    with pytest.raises(CheckpointError):
        load_checkpoint(ckpt)
    assert not (tmp_path / "pwned").exists()
