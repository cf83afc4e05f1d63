"""Presets: the demo preset is the bundled demo's shape; paper-30m has head dim 384 and ~30M parameters."""

import json
from pathlib import Path

import pytest

from tauformer.config import ModelConfig
from tauformer.flops import flops_per_token, peak_flops
from tauformer.model import GPT
from tauformer.presets import PAPER_30M_VOCAB, PRESETS, parameter_count, preset_shape

DEMO = Path(__file__).resolve().parent.parent / "assets" / "demo"


def test_demo_preset_is_the_bundled_demos_shape():
    configs = sorted(DEMO.glob("*/ckpt-*/config.json"))
    assert configs
    for path in configs:
        model = json.loads(path.read_text())["model"]
        assert {k: model[k] for k in PRESETS["demo"]} == PRESETS["demo"], path


def test_every_preset_is_a_valid_config_and_the_count_formula_holds():
    for name, shape in PRESETS.items():
        cfg = ModelConfig(vocab_size=256, **shape)  # validates head dims (even, whole)
        if name in ("tiny", "demo", "paper-30m"):
            for attention in ("tau", "dot"):
                model = GPT(ModelConfig(vocab_size=300, attention=attention, **shape))
                expected = parameter_count(vocab_size=300, **shape) - (0 if attention == "tau" else shape["n_layer"] * shape["n_head"])
                assert model.num_parameters() == expected, (name, attention)
        assert cfg.head_dim % 2 == 0


def test_paper_30m_has_head_dim_384_and_about_30m_parameters():
    shape = preset_shape("paper-30m")
    assert shape["n_embd"] // shape["n_head"] == 384
    assert 28e6 < parameter_count(vocab_size=PAPER_30M_VOCAB, **shape) < 32e6
    with pytest.raises(Exception, match="unknown preset"):
        preset_shape("huge")


def test_flops_estimate_and_no_peak_on_cpu():
    import torch

    model = GPT(ModelConfig(vocab_size=256, **PRESETS["tiny"]))
    n = model.num_parameters() - 256 * 32  # the embedding lookup does no matmul
    assert flops_per_token(model) == 6 * n + 12 * 2 * 32 * 64
    assert peak_flops(torch.device("cpu")) is None and peak_flops(torch.device("cpu"), 100.0) == 100e12
