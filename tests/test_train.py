"""Training: the loss falls, history carries the workbench's signals, runs resume and survive."""

import json

import pytest
import torch

from tauformer.__main__ import main
from tauformer.checkpoint import list_checkpoints, load_checkpoint
from tauformer.config import TrainConfig
from tauformer.data import load_batches
from tauformer.probe import head_energies
from tauformer.train import lr_at, train

from conftest import tiny_config


def short_run(tmp_path, attention="tau", steps=40, resume=False, **overrides):
    cfg = dict(steps=steps, batch_size=8, lr=3e-3, warmup_steps=5, eval_every=20, eval_batches=2,
               ckpt_every=20, seed=3, device="cpu")
    cfg.update(overrides)
    return train(tiny_config(attention), TrainConfig(**cfg), tmp_path / attention, resume=resume,
                 progress=False, log=lambda *a: None)


@pytest.mark.parametrize("attention", ["tau", "dot"])
def test_short_training_lowers_the_loss_and_records_history(tmp_path, attention):
    result = short_run(tmp_path, attention)
    first, last = result.history[0], result.history[-1]
    assert [r["step"] for r in result.history] == [20, 40]
    assert last["val_loss"] < 5.0 < 5.55  # untrained byte model: ln(256) = 5.55
    assert last["train_loss"] < first["train_loss"]
    L, H = 2, 4
    entropy = torch.tensor(last["entropy"])
    assert entropy.shape == (L, H) and ((entropy > 0) & (entropy <= 1.0001)).all()
    assert last["tokens_per_s"] > 0 and last["lr"] > 0
    if attention == "tau":
        for name in ("lambda_q", "lambda_k"):
            stats = {k: torch.tensor(v) for k, v in last[name].items()}
            assert set(stats) == {"mean", "std", "p05", "p95"}
            assert all(s.shape == (L, H) for s in stats.values())
            assert ((stats["p05"] <= stats["mean"]) & (stats["mean"] <= stats["p95"])).all()
            assert ((stats["p05"] >= 0) & (stats["p95"] < 1)).all()
        assert len(last["temperature"]) == L and len(last["tau"]) == L
    run_history = json.loads((tmp_path / attention / "history.json").read_text())
    assert run_history == json.loads(json.dumps(result.history))
    assert [s for s, _ in list_checkpoints(tmp_path / attention)] == [20, 40]


def test_history_records_the_mean_energy_of_every_head_and_the_elapsed_time(tmp_path):
    result = short_run(tmp_path, "tau")
    L, H = 2, 4
    elapsed = [r["elapsed_s"] for r in result.history]
    assert 0 < elapsed[0] < elapsed[1]
    last = result.history[-1]
    energy_q, energy_k = torch.tensor(last["energy_q"]), torch.tensor(last["energy_k"])
    assert energy_q.shape == energy_k.shape == (L, H) and (energy_q > 0).all() and (energy_k > 0).all()
    assert (energy_q <= 4.0).all()  # the chain Laplacian's eigenvalues lie in [0, 4]
    # the last evaluation ran on the saved model: its energies are those of the checkpoint on the same batches
    model, meta = load_checkpoint(tmp_path / "tau")
    cfg = meta.train_config
    batches = load_batches(cfg.data, block_size=model.config.block_size, val_fraction=cfg.val_fraction)
    again = head_energies(model, batches.eval_batches(cfg.eval_batches, cfg.batch_size, seed=cfg.seed))
    torch.testing.assert_close(torch.tensor(again["energy_q"]), energy_q, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(torch.tensor(again["energy_k"]), energy_k, rtol=1e-5, atol=1e-6)


def test_a_dot_history_has_elapsed_time_but_no_energy(tmp_path):
    last = short_run(tmp_path, "dot", steps=20).history[-1]
    assert last["elapsed_s"] > 0 and "energy_q" not in last and "energy_k" not in last


def test_calibrated_tau_is_trained_and_saved(tmp_path):
    short_run(tmp_path, "tau", steps=20)
    model, _ = load_checkpoint(tmp_path / "tau")
    taus = [float(b.attn.taumode.tau_running) for b in model.transformer.h]
    assert all(t != 1.0 and t > 0 for t in taus)
    assert all(int(b.attn.taumode.tau_updates) == 20 for b in model.transformer.h)


def interrupt_at(monkeypatch, stop_step):
    """Make the training loop raise KeyboardInterrupt when it reaches stop_step."""
    import tauformer.train as tr

    real = tr.lr_at

    def lr_or_interrupt(step, cfg):
        if step == stop_step:
            raise KeyboardInterrupt
        return real(step, cfg)

    monkeypatch.setattr(tr, "lr_at", lr_or_interrupt)
    return lambda: monkeypatch.setattr(tr, "lr_at", real)


def test_resume_after_interruption_matches_an_uninterrupted_run(tmp_path, monkeypatch):
    straight = short_run(tmp_path / "a", steps=40)
    restore = interrupt_at(monkeypatch, 27)
    with pytest.raises(KeyboardInterrupt):
        short_run(tmp_path / "b", steps=40)
    assert [s for s, _ in list_checkpoints(tmp_path / "b" / "tau")] == [20, 27]  # saved where it stopped
    restore()
    resumed = short_run(tmp_path / "b", steps=40, resume=True)
    assert resumed.step == 40 and [r["step"] for r in resumed.history] == [20, 40]
    a, _ = load_checkpoint(tmp_path / "a" / "tau")
    b, _ = load_checkpoint(tmp_path / "b" / "tau")
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.allclose(pa, pb, atol=1e-5), name
    assert straight.history[-1]["val_loss"] == pytest.approx(resumed.history[-1]["val_loss"], abs=1e-5)
    # the wall clock runs on across the interruption: step 40 was reached after step 20
    assert resumed.history[1]["elapsed_s"] > resumed.history[0]["elapsed_s"] > 0


def test_existing_run_is_not_overwritten_without_resume(tmp_path):
    short_run(tmp_path, "dot", steps=20)
    assert main(["train", "--preset", "tiny", "--attention", "dot", "--steps", "5",
                 "--out", str(tmp_path / "dot"), "--no-progress"]) == 2


def test_warmup_then_cosine_schedule():
    cfg = TrainConfig(steps=100, lr=1.0, warmup_steps=10, min_lr_ratio=0.1)
    assert lr_at(0, cfg) == pytest.approx(0.1)
    assert lr_at(9, cfg) == pytest.approx(1.0)
    assert lr_at(100, cfg) == pytest.approx(0.1)
    lrs = [lr_at(s, cfg) for s in range(10, 101)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))


def test_cli_train_then_generate(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--preset", "tiny", "--steps", "6", "--eval-every", "3", "--ckpt-every", "3",
                 "--batch-size", "4", "--out", str(out), "--no-progress", "--save-dtype", "float16"]) == 0
    capsys.readouterr()
    assert main(["generate", str(out), "--prompt", "def f", "--max-new-tokens", "12", "--temperature", "0"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("def f") and "step 6" in printed


def test_cli_reports_bad_input_in_one_line(tmp_path, capsys):
    assert main(["generate", str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "nothing" in err[0]
    assert main(["train", "--preset", "tiny", "--steps", "2", "--data", str(tmp_path / "none.txt"),
                 "--out", str(tmp_path / "r"), "--no-progress"]) == 2
    assert "none.txt: no such data file" in capsys.readouterr().err


def small_domain_file(tmp_path, dim):
    import numpy as np

    from tauformer.domain import build_domain_memory, save_domain_memory

    X = np.random.default_rng(1).normal(size=(200, 24)).astype(np.float32)
    memory = build_domain_memory(X, dim=dim, eps=1.0, topk=3, seed=0)
    return save_domain_memory(memory, tmp_path / f"domain-{dim}.safetensors"), memory


def test_training_with_a_domain_memory_makes_a_self_contained_checkpoint(tmp_path):
    path, memory = small_domain_file(tmp_path, 8)  # tiny_config: head_dim = 32 / 4 = 8
    short_run(tmp_path, "tau", steps=4, eval_every=4, ckpt_every=4, domain=str(path))
    path.unlink()  # the checkpoint must not need the file any more
    model, meta = load_checkpoint(tmp_path / "tau")
    assert meta.domain["fingerprint"] == memory.fingerprint and meta.domain["laplacian"] == "domain"
    assert torch.allclose(model.laplacian, torch.from_numpy(memory.laplacian.toarray()).float())


def test_a_domain_memory_of_the_wrong_size_is_refused_with_both_sizes_and_the_fix(tmp_path, capsys):
    path, _ = small_domain_file(tmp_path, 6)
    code = main(["train", "--preset", "tiny", "--steps", "2", "--domain", str(path),
                 "--out", str(tmp_path / "r"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and str(path) in err and "6 x 6" in err and "head_dim is 16" in err and "--dim 16" in err
    assert not (tmp_path / "r").exists() or not list((tmp_path / "r").iterdir())


def resume_cli(out, *extra):
    return ["train", "--resume", "--steps", "6", "--eval-every", "6", "--ckpt-every", "6", "--batch-size", "4",
            "--eval-batches", "1", "--device", "cpu", "--out", str(out), "--no-progress", *extra]


def test_resume_with_another_domain_memory_is_refused_and_the_same_one_accepted(tmp_path, capsys):
    import shutil

    import numpy as np

    from tauformer.domain import build_domain_memory, save_domain_memory

    path, memory = small_domain_file(tmp_path, 8)
    short_run(tmp_path, "tau", steps=4, eval_every=4, ckpt_every=4, batch_size=4, eval_batches=1, domain=str(path))
    run = tmp_path / "tau"
    X = np.random.default_rng(7).normal(size=(200, 24)).astype(np.float32)
    other = build_domain_memory(X, dim=8, eps=1.0, topk=3, seed=0)
    other_path = save_domain_memory(other, tmp_path / "other.safetensors")
    assert other.fingerprint[:12] != memory.fingerprint[:12]
    config_before = (run / "ckpt-4" / "config.json").read_text()
    assert main(resume_cli(run, "--domain", str(other_path))) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(other_path) in err[0]
    assert other.fingerprint[:12] in err[0] and memory.fingerprint[:12] in err[0]
    assert [s for s, _ in list_checkpoints(run)] == [4] and (run / "ckpt-4" / "config.json").read_text() == config_before

    same = tmp_path / "same.safetensors"
    shutil.copy(path, same)
    assert main(resume_cli(run, "--domain", str(same))) == 0
    model, meta = load_checkpoint(run)
    assert meta.step == 6 and meta.domain["fingerprint"] == memory.fingerprint
    assert torch.allclose(model.laplacian, torch.from_numpy(memory.laplacian.toarray()).float())


def test_resuming_a_chain_run_with_a_domain_memory_is_refused(tmp_path, capsys):
    path, memory = small_domain_file(tmp_path, 8)
    short_run(tmp_path, "tau", steps=2, eval_every=2, ckpt_every=2, batch_size=4, eval_batches=1)
    assert main(resume_cli(tmp_path / "tau", "--domain", str(path))) == 2
    err = capsys.readouterr().err
    assert memory.fingerprint[:12] in err and "chain Laplacian" in err
    assert [s for s, _ in list_checkpoints(tmp_path / "tau")] == [2]


@pytest.mark.parametrize("under", [False, True])
def test_an_out_that_is_a_file_is_refused_before_training(tmp_path, capsys, monkeypatch, under):
    import tauformer.train as tr

    afile = tmp_path / "afile.txt"
    afile.write_text("notes\n")
    monkeypatch.setattr(tr, "_train", lambda *a, **k: pytest.fail("training started"))
    out = afile / "run" if under else afile
    code = main(["train", "--preset", "tiny", "--steps", "2", "--device", "cpu", "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    if under:
        assert err[0] == f"error: --out {out}: {afile} is a file, not a directory"
    else:
        assert err[0] == f"error: --out {afile} is a file, not a run directory"
    assert afile.read_text() == "notes\n"


@pytest.mark.parametrize("attention", ["tau", "dot"])
def test_a_tau_run_without_a_domain_says_it_uses_the_chain_laplacian(tmp_path, attention):
    lines = []
    cfg = TrainConfig(steps=1, batch_size=2, eval_every=1, eval_batches=1, ckpt_every=1, warmup_steps=1, device="cpu")
    train(tiny_config(attention), cfg, tmp_path / "r", progress=False, log=lambda *a: lines.append(" ".join(map(str, a))))
    notes = [line for line in lines if "chain Laplacian" in line]
    if attention == "tau":  # tiny_config: head_dim 32 / 4 = 8
        assert notes == ["note: no --domain: tau attention measures against the chain Laplacian of size 8; "
                         "pass --domain FILE for a domain memory"]
        assert lines.index(notes[0]) < next(i for i, line in enumerate(lines) if "parameters" in line)
    else:
        assert notes == []
