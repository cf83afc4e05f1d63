"""Bad input at its roots: config values, weights that lie about their dtype, oversized Laplacians,
every kind of failure in the CLI, leftovers of a killed save, builds that make no graph."""

from __future__ import annotations

import errno
import json
import time

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from hostile import edit_header, good_run
from tauformer.__main__ import build_parser, main
from tauformer.build_defaults import BUILD_DEFAULTS
from tauformer.checkpoint import checkpoint_dir, load_checkpoint, save_checkpoint
from tauformer.config import ModelConfig, TrainConfig
from tauformer.domain import DomainMemory, load_domain_memory, save_domain_memory
from tauformer.errors import CheckpointError, ConfigError, DomainError


@pytest.mark.parametrize("key, value, words", [
    ("n_layer", "4", "must be int"), ("n_layer", 4.5, "must be int"), ("n_layer", True, "must be int"),
    ("n_layer", 10 ** 7, "between 1 and 1,024"), ("n_embd", 2 ** 40, "between 1 and"),
    ("tau", float("nan"), "finite"), ("temperature", float("inf"), "finite"), ("tau", "1", "must be float"),
    ("learn_temperature", 1, "must be bool"), ("softcap", -1.0, "softcap"), ("vocab_size", 0, ">= 1"),
])
def test_model_config_refuses_wrong_types_and_ranges(key, value, words):
    start = time.perf_counter()
    with pytest.raises(ConfigError, match=words):
        ModelConfig.from_dict({key: value})
    assert time.perf_counter() - start < 0.5  # refused from the numbers, nothing allocated


def test_train_config_refuses_wrong_types():
    with pytest.raises(ConfigError, match="steps must be int"):
        TrainConfig.from_dict({"steps": "100"})
    with pytest.raises(ConfigError, match="lr must be finite"):
        TrainConfig.from_dict({"lr": float("nan")})
    assert TrainConfig.from_dict({"lr": 1, "steps": 3}).lr == 1  # an int is a fine float


def test_float16_weights_relabelled_as_int16_are_refused(tmp_path):
    from tauformer.model import GPT

    cfg = ModelConfig(vocab_size=256, block_size=16, n_layer=1, n_head=2, n_kv_head=1, n_embd=16)
    path = save_checkpoint(checkpoint_dir(tmp_path / "run", 1), GPT(cfg), step=1, save_dtype="float16")
    load_checkpoint(path)  # the untouched float16 checkpoint loads
    edit_header(path / "model.safetensors", lambda h: [v.update(dtype="I16") for k, v in h.items()
                                                       if k != "__metadata__" and v["dtype"] == "F16"])
    with pytest.raises(CheckpointError, match=r"model\.safetensors: .* is stored as I16, the model needs torch.float32"):
        load_checkpoint(path)


def test_a_killed_save_leaves_nothing_behind_after_the_next_save(tmp_path):
    run = good_run(tmp_path, "run")
    leftover = run / ".ckpt-2.abc123.tmp"
    (leftover / "half").mkdir(parents=True)
    old = run / ".ckpt-1.old-999"
    old.mkdir()
    model, _ = load_checkpoint(run)
    save_checkpoint(checkpoint_dir(run, 3), model, step=3)
    assert not leftover.exists() and not old.exists()
    assert sorted(p.name for p in run.iterdir()) == ["ckpt-1", "ckpt-3"]


def chain_memory(D: int) -> DomainMemory:
    main_diag = np.full(D, 2.0)
    main_diag[[0, -1]] = 1.0
    L = sp.diags([-np.ones(D - 1), main_diag, -np.ones(D - 1)], [-1, 0, 1], format="csr")
    return DomainMemory(laplacian=L, params={"dim": D}, source={}, name=f"chain{D}")


def test_a_300000_chain_is_refused_by_default_and_summarised_in_seconds_when_allowed(tmp_path, capsys):
    path = save_domain_memory(chain_memory(300_000), tmp_path / "chain.safetensors")
    assert main(["domain", "info", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "chain.safetensors" in err and "65,536" in err and "--allow-large" in err
    with pytest.raises(DomainError, match="above the 65,536 limit"):
        load_domain_memory(path)
    start = time.perf_counter()
    assert main(["domain", "info", str(path), "--allow-large"]) == 0
    seconds = time.perf_counter() - start
    out = capsys.readouterr().out
    assert "components   1" in out and "spectral gap not computed" in out and seconds < 30


FAILURES = [
    (MemoryError(), 2, "out of memory"),
    (OSError(errno.ENOSPC, "No space left on device", "/tmp/out.safetensors"), 2, "/tmp/out.safetensors: no space left"),
    (RecursionError("maximum recursion depth exceeded"), 2, "nested too deeply"),
    (ValueError("cannot reshape array\nof size 3"), 2, "invalid value: cannot reshape array of size 3"),
    (RuntimeError("something deep"), 1, "internal error: RuntimeError: something deep (--debug shows the traceback)"),
    (DomainError("x.npy: bad"), 2, "error: x.npy: bad"),
]


@pytest.mark.parametrize("failure, code, words", FAILURES, ids=[type(f[0]).__name__ for f in FAILURES])
def test_cli_turns_every_failure_into_one_line(monkeypatch, capsys, failure, code, words):
    import tauformer.domain.cli as domain_cli

    def fail(args):
        raise failure

    monkeypatch.setattr(domain_cli, "_info", fail)
    assert main(["domain", "info", "whatever"]) == code
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: ") and words in err
    assert "Traceback" not in err
    assert main(["--debug", "domain", "info", "whatever"]) == code
    assert "Traceback" in capsys.readouterr().err


def clustered_embedding(path):
    rng = np.random.default_rng(0)
    centres = 3 * rng.normal(size=(8, 64))
    X = centres[rng.integers(8, size=2000)] + rng.normal(size=(2000, 64))
    np.save(path, X.astype(np.float32))


def test_default_build_of_a_clustered_embedding_has_a_connected_graph(tmp_path, capsys):
    clustered_embedding(tmp_path / "emb.npy")
    out = tmp_path / "d.safetensors"
    assert main(["domain", "build", str(tmp_path / "emb.npy"), "--dim", "32", "--out", str(out), "--quiet"]) == 0
    memory = load_domain_memory(out)
    summary = memory.summary()
    assert summary["edges"] > 0 and summary["components"] <= 32 / 4
    assert {k: memory.params[k] for k in ("eps", "topk", "k", "p", "sigma")} == \
        {k: BUILD_DEFAULTS[k] for k in ("eps", "topk", "k", "p", "sigma")}


def test_a_build_without_a_graph_exits_non_zero_naming_the_parameters(tmp_path, capsys):
    clustered_embedding(tmp_path / "emb.npy")
    out = tmp_path / "d.safetensors"
    argv = ["domain", "build", str(tmp_path / "emb.npy"), "--dim", "32", "--out", str(out), "--quiet",
            "--eps", "1e-3", "--topk", "3"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "emb.npy" in err and "no edges" in err
    assert "--eps" in err and "--topk" in err and not out.exists()
    assert main(argv + ["--allow-disconnected"]) == 0 and out.exists()


def test_cli_and_uploads_share_one_set_of_build_defaults():
    from workbench.data import uploads

    args = build_parser().parse_args(["domain", "build", "x.npy", "--out", "o"])
    assert {k: getattr(args, k) for k in BUILD_DEFAULTS} == dict(BUILD_DEFAULTS)
    assert uploads.BUILD_PARAMS == dict(BUILD_DEFAULTS)


def test_domain_import_reads_the_sidecar_beside_the_parquet(tmp_path, capsys):
    coo = pd.DataFrame({"row": [0, 0, 1, 1], "col": [0, 1, 0, 1], "value": [0.5, -0.5, -0.5, 0.5]})
    coo = coo.assign(name_id="m", n_rows=2, n_cols=2, nnz=4)
    coo.to_parquet(tmp_path / "manifold.parquet")
    (tmp_path / "manifold.json").write_text(json.dumps({"builder_config": {"lambda_eps": {"F64": 1.31},
                                                                           "lambda_topk": {"Usize": 15}}}))
    out = tmp_path / "m.safetensors"
    assert main(["domain", "import", str(tmp_path / "manifold.parquet"), "--out", str(out)]) == 0
    params = load_domain_memory(out).params
    assert params["eps"] == 1.31 and params["topk"] == 15
