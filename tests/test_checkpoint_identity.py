"""A checkpoint rewritten in place (a run still training) is served from its new weights."""

import os
import shutil

import numpy as np
import pytest
from safetensors.torch import load_file, save_file

from workbench.data import DEMO_DIR, CheckpointRef, Workspace

PROMPT = "The spectrum of a graph tells how it is connected."


@pytest.fixture
def run_dir(tmp_path):
    """A copy of the demo's tau run with one checkpoint (the files may be rewritten)."""
    run = tmp_path / "tau"
    shutil.copytree(DEMO_DIR / "tau" / "ckpt-1000", run / "ckpt-1000")
    return run


def rewrite_weights(checkpoint, scale: float) -> None:
    """Overwrite model.safetensors in place (same size: same tensors) with every c_q and c_k
    scaled, and give it a modification time 10 s later, whatever the clock's granularity."""
    weights = checkpoint / "model.safetensors"
    before = weights.stat()
    tensors = load_file(str(weights))
    for name in tensors:
        if name.endswith(("attn.c_q.weight", "attn.c_k.weight")):
            tensors[name] = tensors[name] * scale
    save_file(tensors, str(weights), metadata={"format": "tauformer-checkpoint"})
    os.utime(weights, ns=(before.st_atime_ns, before.st_mtime_ns + 10_000_000_000))


def test_the_ref_changes_with_the_weights_file(run_dir):
    ws = Workspace(runs=[run_dir])
    ref = ws.runs.ref("tau")
    assert ref == CheckpointRef.of(run_dir / "ckpt-1000") and ref.weights_size > 0
    rewrite_weights(run_dir / "ckpt-1000", 1.5)
    new = ws.runs.ref("tau")
    assert new.path == ref.path and new.weights_mtime_ns == ref.weights_mtime_ns + 10_000_000_000
    assert new != ref


def test_a_checkpoint_rewritten_in_place_is_probed_with_its_new_weights(run_dir):
    ws = Workspace(runs=[run_dir])
    old_model = ws.runs.load("tau")[0]
    old = ws.probes.probe("tau", None, PROMPT)
    old_sample = ws.probes.lambda_sample("tau", None, "validation", None)
    assert ws.probes.probe("tau", None, PROMPT) is old  # cached while the file is unchanged

    rewrite_weights(run_dir / "ckpt-1000", 1.5)
    new_model = ws.runs.load("tau")[0]
    new = ws.probes.probe("tau", None, PROMPT)
    new_sample = ws.probes.lambda_sample("tau", None, "validation", None)
    fresh = Workspace(runs=[run_dir])  # nothing cached: loads the file as it is now
    reference = fresh.probes.probe("tau", None, PROMPT)

    assert new_model is not old_model
    scaled = new_model.transformer.h[0].attn.c_q.weight
    assert np.allclose(scaled.detach().numpy(), 1.5 * old_model.transformer.h[0].attn.c_q.weight.detach().numpy(),
                       rtol=1e-2, atol=1e-3)
    assert not np.allclose(new.weights, old.weights) and not np.allclose(new.lambda_q, old.lambda_q)
    np.testing.assert_array_equal(new.weights, reference.weights)
    np.testing.assert_array_equal(new.lambda_q, reference.lambda_q)
    np.testing.assert_array_equal(new.token_loss, reference.token_loss)
    assert not np.allclose(new_sample["lambda_q"], old_sample["lambda_q"])
    np.testing.assert_array_equal(new_sample["lambda_q"],
                                  fresh.probes.lambda_sample("tau", None, "validation", None)["lambda_q"])


def test_a_rewritten_checkpoints_what_if_and_loss_are_recomputed(run_dir):
    ws = Workspace(runs=[run_dir])
    old_loss = ws.probes.validation_loss("tau", None)
    old = ws.probes.whatif("tau", None, PROMPT, temperature_scale=0.5)
    rewrite_weights(run_dir / "ckpt-1000", 0.5)
    fresh = Workspace(runs=[run_dir])
    assert ws.probes.validation_loss("tau", None) == fresh.probes.validation_loss("tau", None) != old_loss
    new = ws.probes.whatif("tau", None, PROMPT, temperature_scale=0.5)
    assert new is not old
    np.testing.assert_array_equal(new["after"].weights,
                                  fresh.probes.whatif("tau", None, PROMPT, temperature_scale=0.5)["after"].weights)


def test_run_infos_carry_the_typed_configs(run_dir):
    from tauformer.config import ModelConfig, TrainConfig

    info = Workspace(runs=[run_dir]).runs.info("tau")
    assert isinstance(info.model, ModelConfig) and isinstance(info.train, TrainConfig)
    assert f"D={info.model.n_embd // info.model.n_head})" in info.label
