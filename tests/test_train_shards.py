"""Training on prepared BPE shards: loss, bits per byte, tokenizer in the checkpoint, generate,
gradient accumulation, DDP and FSDP on two CPU processes, and the workbench's probe."""

import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tauformer.__main__ import main
from tauformer.checkpoint import load_checkpoint, load_checkpoint_tokenizer, read_meta
from tauformer.config import TrainConfig
from tauformer.errors import CheckpointError
from tauformer.prepare import prepare
from tauformer.shards import open_shards
from tauformer.train import train

from conftest import tiny_config
from test_prepare import write_corpus

VOCAB = 512


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models: one intra-op thread (two threads on a busy 2-core machine run ~30x slower)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    write_corpus(root / "text.txt", 1200, seed=5)
    prepare([str(root / "text.txt")], root / "bpe", tokenizer="bpe", vocab_size=VOCAB, progress=False)
    return root / "bpe"


@pytest.fixture(scope="module")
def bpe_run(shards, tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "tau-bpe"
    cfg = TrainConfig(steps=20, batch_size=8, lr=1e-2, warmup_steps=5, eval_every=10, eval_batches=2, ckpt_every=20,
                      seed=3, device="cpu", data=str(shards))
    result = train(tiny_config("tau", vocab_size=VOCAB), cfg, run, progress=False, log=lambda *a: None)
    return run, result


def test_training_on_bpe_shards_lowers_the_loss_and_reports_bits_per_byte(shards, bpe_run):
    _, result = bpe_run
    first, last = result.history[0], result.history[-1]
    assert last["val_loss"] < first["val_loss"] and last["val_loss"] < math.log(VOCAB) - 0.5
    bpt = open_shards(shards).bytes_per_token
    assert 1.5 < last["val_bytes_per_token"] < 6 and abs(last["val_bytes_per_token"] - bpt) < 1.5
    assert last["val_bpb"] == pytest.approx(last["val_loss"] / (math.log(2) * last["val_bytes_per_token"]))
    assert last["flops_per_s"] > 0 and last["mfu"] is None  # no peak known on a CPU


def test_checkpoint_round_trip_keeps_the_tokenizer(shards, bpe_run, tmp_path):
    run, _ = bpe_run
    tok = load_checkpoint_tokenizer(run)
    assert tok.fingerprint == open_shards(shards).tokenizer.fingerprint and tok.vocab_size == VOCAB
    model, meta = load_checkpoint(run)
    assert model.config.vocab_size == VOCAB and meta.train_config.data == str(shards)
    copy = tmp_path / "copy"
    shutil.copytree(run / "ckpt-20", copy)
    (copy / "tokenizer.json").write_text((copy / "tokenizer.json").read_text().replace('"vocab"', '"vocab" ', 1))
    with pytest.raises(CheckpointError, match="does not match"):
        load_checkpoint_tokenizer(copy)


def test_generate_decodes_with_the_runs_tokenizer(bpe_run, capsys):
    from tauformer.cache import generate

    run, _ = bpe_run
    assert main(["generate", str(run), "--prompt", "the ", "--max-new-tokens", "8", "--temperature", "0"]) == 0
    out = capsys.readouterr().out
    assert f"bpe-{VOCAB} tokens" in out
    tok = load_checkpoint_tokenizer(run)
    model, _ = load_checkpoint(run)
    ids = generate(model, torch.tensor([tok.encode("the ")]), 8, temperature=0.0)[0].tolist()
    assert out.split("\n\n[")[0] == tok.decode(ids) and out.startswith("the ")


def cli_train(shards, out, *extra):
    return ["train", "--preset", "tiny", "--tau-mode", "fixed", "--data", str(shards), "--steps", "4",
            "--eval-every", "4", "--ckpt-every", "4", "--eval-batches", "2", "--warmup-steps", "2",
            "--lr", "1e-2", "--device", "cpu", "--out", str(out), "--no-progress", *extra]


@pytest.fixture(scope="module")
def reference(shards, tmp_path_factory):
    """One process, 2 micro-batches of 4 sequences per step."""
    out = tmp_path_factory.mktemp("ref") / "run"
    assert main(cli_train(shards, out, "--batch-size", "4", "--grad-accum", "2")) == 0
    return read_meta(out), load_checkpoint(out)[0]


def same_weights(model, reference_model, tol=1e-4):
    for (name, a), b in zip(model.state_dict().items(), reference_model.state_dict().values()):
        assert torch.allclose(a, b, atol=tol), name


def test_gradient_accumulation_matches_the_full_batch(shards, reference, tmp_path):
    out = tmp_path / "full"
    assert main(cli_train(shards, out, "--batch-size", "8")) == 0
    meta, ref_meta = read_meta(out), reference[0]
    assert meta.history[-1]["tokens_seen"] == ref_meta.history[-1]["tokens_seen"] == 4 * 8 * 64
    assert meta.history[-1]["train_loss"] == pytest.approx(ref_meta.history[-1]["train_loss"], abs=1e-4)
    same_weights(load_checkpoint(out)[0], reference[1])  # (validation batches hold batch-size rows: not compared)


def torchrun_train(argv):
    torchrun = shutil.which("torchrun") or str(Path(sys.executable).parent / "torchrun")
    proc = subprocess.run([torchrun, "--standalone", "--nproc_per_node=2", "-m", "tauformer", *argv],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.mark.parametrize("engine", ["ddp", "fsdp"])
def test_two_cpu_processes_reach_the_loss_of_one(shards, reference, tmp_path, engine):
    out = tmp_path / engine
    extra = ["--fsdp"] if engine == "fsdp" else []
    proc = torchrun_train(cli_train(shards, out, "--batch-size", "4", *extra))
    assert f"2 processes ({engine})" in proc.stdout and proc.stdout.count("done: step 4") == 1  # rank 0 reports
    meta, ref_meta = read_meta(out), reference[0]
    assert [r["step"] for r in meta.history] == [4] and meta.history[-1]["tokens_seen"] == 4 * 4 * 64 * 2
    for key in ("val_loss", "train_loss", "val_bpb"):
        assert meta.history[-1][key] == pytest.approx(ref_meta.history[-1][key], abs=1e-4), key
    same_weights(load_checkpoint(out)[0], reference[1])
    assert load_checkpoint_tokenizer(out).vocab_size == VOCAB


@pytest.mark.slow
def test_an_fsdp_run_resumes_from_its_gathered_optimizer_state(shards, reference, tmp_path):
    out = tmp_path / "fsdp"
    torchrun_train(cli_train(shards, out, "--batch-size", "4", "--fsdp", "--ckpt-every", "2"))
    shutil.rmtree(out / "ckpt-4")  # as if stopped after step 2
    torchrun_train(cli_train(shards, out, "--batch-size", "4", "--fsdp", "--ckpt-every", "2", "--resume"))
    meta = read_meta(out)
    assert meta.step == 4 and meta.history[-1]["val_loss"] == pytest.approx(reference[0].history[-1]["val_loss"], abs=1e-4)
    same_weights(load_checkpoint(out)[0], reference[1])


def test_workbench_probe_of_a_bpe_run_shows_token_pieces(bpe_run, tmp_path):
    from tauformer.data import ByteTokenizer
    from workbench.data import Workspace
    from workbench.figures.tokens import fig_token_weights

    run, _ = bpe_run
    byte_run = tmp_path / "dot-bytes"
    train(tiny_config("dot"), TrainConfig(steps=2, batch_size=2, eval_every=2, eval_batches=1, ckpt_every=2,
                                          device="cpu"), byte_run, progress=False, log=lambda *a: None)
    ws = Workspace(runs=[run, byte_run])
    prompt = ws.probes.default_prompt("tau-bpe")
    assert len(prompt) > 40
    view = ws.probes.probe("tau-bpe", None, prompt)
    tok = load_checkpoint_tokenizer(run)
    ids = tok.encode(prompt)
    assert view.ids.tolist() == ids[:1024] and view.T < len(prompt.encode())
    assert view.tokens == [tok.token_label(i) for i in ids]
    assert any(len(label) > 1 and not label.startswith("\\x") for label in view.tokens)  # merged pieces
    q = view.T - 1
    fig = fig_token_weights(view.tokens, {"tau-bpe": view.weights[0, 0, q, : q + 1]}, q)
    shown = [p for p in np.asarray(fig.data[0].hovertext).ravel() if p]
    assert shown == view.tokens
    byte_view = ws.probes.probe("dot-bytes", None, prompt)
    assert byte_view.tokens == [ByteTokenizer().token_label(b) for b in prompt.encode()][:1024]
    assert ws.probes.pair("tau-bpe") is None  # same shape would pair; different tokenizers never do
    from workbench.views.model_shared import prompt_note
    assert prompt_note(ws, prompt, "tau-bpe") == f"{len(ids)} tokens (BPE pieces)"
    assert prompt_note(ws, prompt, "dot-bytes") == f"{len(prompt.encode())} tokens (bytes)"
    with pytest.raises(Exception, match="different tokens"):
        ws.probes.probe_pair("tau-bpe", None, "dot-bytes", prompt)


def test_training_page_puts_bpe_and_byte_runs_on_one_bits_per_byte_axis(bpe_run):
    from workbench.data import Workspace, demo_workspace
    from workbench.views.training import in_bits_per_byte, update_loss

    run, result = bpe_run
    h = Workspace(runs=[run]).runs.history_arrays("tau-bpe")
    converted = in_bits_per_byte(h)
    assert np.allclose(converted["val_loss"], [r["val_bpb"] for r in result.history])
    factor = result.history[-1]["val_bpb"] / result.history[-1]["val_loss"]
    assert converted["train_loss"][-1] == pytest.approx(result.history[-1]["train_loss"] * factor)
    assert factor < 1 / math.log(2) / 1.5  # several bytes per BPE token
    fig = update_loss(demo_workspace(), 0, "bpb", "tau", None)
    assert fig.layout.yaxis.title.text == "loss (bits / byte)"


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_training_on_shards_reports_mfu(shards, tmp_path):
    """bf16 autocast on the GPU: the loss falls and MFU is reported against the GPU's peak."""
    cfg = TrainConfig(steps=20, batch_size=8, lr=1e-2, warmup_steps=5, eval_every=10, eval_batches=2,
                      ckpt_every=20, seed=3, device="cuda", data=str(shards), grad_accum=2)
    result = train(tiny_config("tau", vocab_size=VOCAB), cfg, tmp_path / "cuda", progress=False, log=lambda *a: None)
    first, last = result.history[0], result.history[-1]
    assert last["val_loss"] < first["val_loss"] and math.isfinite(last["val_bpb"])
    name = torch.cuda.get_device_name()
    if any(k in name for k in ("H100", "H200", "A100", "B200")):
        assert 0 < last["mfu"] < 1


def test_compile_flag_compiles_the_training_module(shards, tmp_path, monkeypatch):
    compiled = []

    def record(module, *args, **kwargs):  # stands in for torch.compile: compiling takes minutes on 2 cores
        compiled.append(module)
        return module

    monkeypatch.setattr(torch, "compile", record)
    cfg = TrainConfig(steps=2, batch_size=2, eval_every=2, eval_batches=1, ckpt_every=2, device="cpu",
                      data=str(shards), compile=True, fsdp=True)
    notes = []
    train(tiny_config("dot", vocab_size=VOCAB), cfg, tmp_path / "c", progress=False, log=notes.append)
    assert len(compiled) == 1 and compiled[0].config.vocab_size == VOCAB
    assert any("--fsdp shards across torchrun processes" in n for n in notes)  # one process: a note, no sharding


def test_a_model_vocabulary_smaller_than_the_data_is_refused_in_one_line(shards, tmp_path, capsys):
    code = main(cli_train(shards, tmp_path / "r", "--vocab-size", "300"))
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and f"{VOCAB:,} tokens" in err[0] and "vocab_size is 300" in err[0]


def test_resume_on_data_with_another_tokenizer_is_refused_naming_both(shards, bpe_run, tmp_path, capsys):
    run, _ = bpe_run
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    text = write_corpus(tmp_path / "bytes.txt", 200, seed=1)  # byte tokens, not the run's BPE
    code = main(["train", "--resume", "--data", str(text), "--steps", "24", "--device", "cpu",
                 "--out", str(copy), "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    bpe = open_shards(shards).tokenizer.fingerprint[:12]
    assert code == 2 and len(err) == 1 and str(text) in err[0] and str(copy / "ckpt-20") in err[0]
    assert bpe in err[0] and load_checkpoint_tokenizer(copy).fingerprint == open_shards(shards).tokenizer.fingerprint
    from tauformer.data import ByteTokenizer
    assert ByteTokenizer().fingerprint[:12] in err[0]
    assert sorted(p.name for p in copy.glob("ckpt-*")) == ["ckpt-20"]  # nothing trained, nothing saved


def test_resuming_a_byte_run_on_bpe_data_does_not_blame_an_unset_vocab_size(shards, tmp_path, capsys):
    run = tmp_path / "bytes-run"
    cfg = TrainConfig(steps=2, batch_size=4, eval_every=2, eval_batches=1, ckpt_every=2, warmup_steps=1,
                      seed=3, device="cpu")
    train(tiny_config("tau"), cfg, run, progress=False, log=lambda *a: None)
    code = main(["train", "--resume", "--data", str(shards), "--steps", "4", "--device", "cpu",
                 "--out", str(run), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "--vocab-size unset" not in err and str(shards) in err
    assert sorted(p.name for p in run.glob("ckpt-*")) == ["ckpt-2"]
