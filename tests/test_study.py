"""The study: control Laplacians, matched runs, statistics, resume after a kill, the Study page."""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import signal
import subprocess
import sys
import time
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from tauformer.__main__ import main
from tauformer.config import ModelConfig, TrainConfig
from tauformer.domain import DomainMemory, save_domain_memory
from tauformer.domain import variants as controls
from tauformer.model import GPT
from tauformer.study import plan_study, summarise_study
from tauformer.study.summary import mean_ci, sign_test, summarise

REPO = Path(__file__).resolve().parents[1]
TINY = ["--preset", "tiny", "--steps", "8", "--batch-size", "2", "--eval-every", "2", "--eval-batches", "1",
        "--ckpt-every", "2", "--warmup-steps", "1", "--threads", "1", "--no-progress"]


def random_graph_laplacian(D: int = 16, p: float = 0.35, seed: int = 3) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    W = np.triu(rng.uniform(0.1, 2.0, (D, D)) * (rng.random((D, D)) < p), 1)
    W = W + W.T
    return sp.csr_matrix(np.diag(W.sum(1)) - W)


@pytest.fixture(scope="module")
def domain16(tmp_path_factory) -> Path:
    """A 16-feature domain memory (the tiny preset's head dim)."""
    path = tmp_path_factory.mktemp("domain") / "d16.safetensors"
    save_domain_memory(DomainMemory(laplacian=random_graph_laplacian(), params={"test": 1}, name="d16"), path)
    return path


def neighbour_counts(L) -> np.ndarray:
    A = sp.csr_matrix(L).toarray()
    np.fill_diagonal(A, 0)
    return (A != 0).sum(1)


def weights(L) -> np.ndarray:
    return np.sort(controls.edge_list(L)[1])


# ------------------------------------------------------------------ control Laplacians
def test_rewiring_keeps_every_degree_and_the_total_weight_but_moves_edges():
    L = random_graph_laplacian()
    R = controls.rewired(L, seed=1)
    assert np.array_equal(neighbour_counts(R), neighbour_counts(L))
    assert np.allclose(weights(R), weights(L)) and math.isclose(weights(R).sum(), weights(L).sum())
    assert abs(R - R.T).max() == 0 and np.allclose(np.asarray(R.sum(1)).ravel(), 0)
    moved = (sp.csr_matrix(L) != 0).toarray() != (R != 0).toarray()
    assert moved.any()  # the graph really changed
    assert (controls.rewired(L, seed=1) != R).nnz == 0  # seeded: the same seed, the same graph
    assert (controls.rewired(L, seed=2) != R).nnz > 0


def test_random_graph_keeps_the_edge_count_and_the_weights():
    L = random_graph_laplacian()
    G = controls.random_like(L, seed=5)
    assert len(weights(G)) == len(weights(L)) and np.allclose(weights(G), weights(L))
    assert np.allclose(np.asarray(G.sum(1)).ravel(), 0)


def test_identity_and_chain_are_the_models_own_meanings():
    from tauformer.laplacian import chain_laplacian, identity_laplacian

    assert np.array_equal(controls.identity(8).toarray(), identity_laplacian(8).numpy())
    assert np.array_equal(controls.chain(8).toarray(), chain_laplacian(8).numpy())


# ------------------------------------------------------------------ statistics
def test_summary_statistics_against_a_hand_computed_example():
    runs = {"tau-domain": {1: [{"step": 10, "val_bpb": 1.0}], 2: [{"step": 10, "val_bpb": 1.2}],
                           3: [{"step": 10, "val_bpb": 1.1}]},
            "tau-chain": {1: [{"step": 10, "val_bpb": 1.1}], 2: [{"step": 10, "val_bpb": 1.4}],
                          3: [{"step": 10, "val_bpb": 1.2}], 4: [{"step": 5, "val_bpb": 9.0}]}}
    s = summarise(runs, steps=10)
    ref = s["variants"]["tau-domain"]
    # mean 1.1, sd 0.1, t(0.975, 2) = 4.302653, half width 4.302653 * 0.1 / sqrt(3) = 0.248414
    assert ref["mean"] == pytest.approx(1.1) and ref["std"] == pytest.approx(0.1)
    assert ref["ci95"] == pytest.approx([1.1 - 0.248414, 1.1 + 0.248414], abs=1e-6)
    chain = s["variants"]["tau-chain"]
    assert chain["seeds"] == [1, 2, 3] and chain["incomplete"] == [4]  # seed 4 stopped at step 5
    p = chain["paired"]
    # diffs 0.1, 0.2, 0.1: mean 0.133333, sd 0.057735, half width 4.302653 * 0.057735 / sqrt(3) = 0.143422
    assert p["diffs"] == pytest.approx([0.1, 0.2, 0.1])
    assert p["mean"] == pytest.approx(0.133333, abs=1e-6) and p["std"] == pytest.approx(0.057735, abs=1e-6)
    assert p["ci95"] == pytest.approx([0.133333 - 0.143422, 0.133333 + 0.143422], abs=1e-5)
    assert p["sign_test"] == {"n_worse": 3, "n_better": 0, "p": pytest.approx(0.25)}  # 2 * (1/2)^3
    assert "paired" not in ref and s["reference"] == "tau-domain"
    assert mean_ci([2.0]) == {"n": 1, "mean": 2.0, "std": None, "ci95": None}
    assert sign_test([0.0, 0.0])["p"] is None


# ------------------------------------------------------------------ matched runs
def test_variants_differ_only_in_what_they_claim(tmp_path, domain16):
    model = ModelConfig(n_layer=2, n_head=2, n_kv_head=2, n_embd=32, block_size=64)
    plans = plan_study(tmp_path / "s", model, TrainConfig(steps=4, seed=7), domain=domain16, seeds=2)
    assert {p.name for p in plans} == {f"{v}-s{s}" for v in ("dot", "tau-domain", "tau-chain", "tau-shuffled",
                                                            "tau-random", "tau-identity") for s in (7, 8)}
    for seed in (7, 8):
        mine = [p for p in plans if p.seed == seed]
        for p in mine:  # same budget and data order: train configs equal but for the Laplacian file
            assert {f.name: getattr(p.train, f.name) for f in fields(TrainConfig) if f.name != "domain"} == \
                   {f.name: getattr(mine[0].train, f.name) for f in fields(TrainConfig) if f.name != "domain"}
            assert p.model.to_dict() | {"attention": "tau"} == mine[0].model.to_dict() | {"attention": "tau"}
        models = {}
        for p in mine:
            torch.manual_seed(p.train.seed)  # what train does before building the model
            models[p.variant] = GPT(p.model, laplacian=p.train.domain if p.model.attention == "tau" else None)
        params = {v: {n: t.detach().clone() for n, t in m.named_parameters()} for v, m in models.items()}
        tau = [v for v in params if v != "dot"]
        for v in tau:  # equal names, shapes and initial values; only the Laplacian buffer differs
            assert params[v].keys() == params["tau-domain"].keys()
            assert all(torch.equal(params[v][n], params["tau-domain"][n]) for n in params[v])
        assert sum(t.numel() for t in params["dot"].values()) == sum(t.numel() for t in params["tau-domain"].values()) \
            - sum(t.numel() for n, t in params["tau-domain"].items() if "temperature" in n)
        laplacians = [models[v].laplacian for v in tau]
        assert all(not torch.equal(a, b) for i, a in enumerate(laplacians) for b in laplacians[i + 1:])
    assert torch.equal(models["tau-identity"].laplacian, torch.eye(16))


def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, domain16):
    assert main(["study", "--out", str(tmp_path / "s"), "--preset", "demo", "--domain", str(domain16)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "d16.safetensors" in err and "head_dim is 32" in err
    assert main(["study", "--out", str(tmp_path / "t"), "--domain", str(tmp_path / "missing")]) == 2
    assert "missing" in capsys.readouterr().err


# ------------------------------------------------------------------ resume after a kill, then the page
@pytest.fixture(scope="module")
def killed_and_resumed(tmp_path_factory, domain16):
    """A tiny study whose first process is killed (SIGKILL) after a checkpoint, then finished by a
    second call of the same command; returns (study dir, what the second call printed, the step
    the first run was killed after)."""
    from tauformer.checkpoint import list_checkpoints

    out = tmp_path_factory.mktemp("study") / "tiny"
    args = ["study", "--out", str(out), "--domain", str(domain16), "--variants", "tau-domain", "tau-chain",
            "--seeds", "2", *TINY]
    proc = subprocess.Popen([sys.executable, "-m", "tauformer", *args], cwd=REPO,
                            env=dict(os.environ, PYTHONPATH=str(REPO)),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first = out / "runs" / "tau-domain-s1337"
    deadline = time.time() + 120
    while not list_checkpoints(first) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = list_checkpoints(first)[-1][0]
    assert killed_at < 8, f"the first run was not caught mid-way (latest checkpoint {killed_at})"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(args) == 0
    return out, printed.getvalue(), killed_at


def test_a_killed_study_resumes_where_it_stopped(killed_and_resumed):
    out, printed, killed_at = killed_and_resumed
    assert "study: 4 runs, 0 done, 4 to train" in printed
    assert f"resuming {out / 'runs' / 'tau-domain-s1337'} from step {killed_at}" in printed
    history = json.loads((out / "runs" / "tau-domain-s1337" / "history.json").read_text())
    steps = [r["step"] for r in history]
    assert steps == [2, 4, 6, 8]  # the evaluations before the kill kept, none repeated
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["variants"]) == {"tau-domain", "tau-chain"}
    assert all(e["n"] == 2 for e in summary["variants"].values())
    assert summary["variants"]["tau-chain"]["paired"]["seeds"] == [1337, 1338]
    csv_lines = (out / "summary.csv").read_text().splitlines()
    assert csv_lines[0].startswith("variant,n,seeds,final_bpb,mean") and len(csv_lines) == 3
    assert summarise_study(out)["variants"]["tau-chain"]["final"] == summary["variants"]["tau-chain"]["final"]


@pytest.mark.slow
def test_parallel_runs_train_in_their_own_processes_and_skip_done_ones(killed_and_resumed, tmp_path, domain16):
    out = tmp_path / "par"
    args = ["study", "--out", str(out), "--domain", str(domain16), "--variants", "tau-identity", "--seeds", "2",
            *TINY, "--parallel", "2"]
    assert main(args) == 0
    for seed in (1337, 1338):
        run = out / "runs" / f"tau-identity-s{seed}"
        assert "tau model" in (run / "train.log").read_text() and (run / "ckpt-8").is_dir()
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(args) == 0
    assert "study: 2 runs, 2 done, 0 to train" in printed.getvalue()


def test_the_study_page_renders_from_a_tiny_study(killed_and_resumed):
    from workbench.data import Workspace
    from workbench.views import study

    ws = Workspace(runs=[killed_and_resumed[0]])
    assert ws.studies.names() == ["tiny"]
    assert "tau-chain-s1338" in ws.runs.names()  # the study's runs are listed for every other page
    finals, curves, diffs, verdict, table = study.update_study(ws, "tiny")
    assert [t.name for t in finals.data if t.mode == "markers" and t.error_y.array is not None] == \
           ["tau-domain", "tau-chain"]
    assert {t.name for t in curves.data if t.fill != "toself"} == {"tau-domain", "tau-chain"}
    assert len([t for t in curves.data if t.fill == "toself"]) == 2  # one seed band each
    assert [t.y[0] for t in diffs.data if t.error_x.array is not None] == ["tau-chain"]
    text = str(verdict)
    assert "tau-chain" in text and "sign test p = 0.5" in text
    assert len(table.children[1].children) == 2
    assert study.layout(ws) is not None and study.update_study(ws, "nope")[0] is not None


def test_a_broken_history_is_named_on_the_page_and_the_app_keeps_serving(killed_and_resumed, tmp_path):
    import shutil

    from workbench.data import Workspace
    from workbench.views import study

    broken = tmp_path / "broken"
    shutil.copytree(killed_and_resumed[0] / "runs" / "tau-chain-s1337", broken / "runs" / "tau-chain-s1337",
                    ignore=shutil.ignore_patterns("ckpt-*"))
    (broken / "runs" / "tau-chain-s1337" / "history.json").write_text("[{not json")
    (broken / "summary.json").write_text("{}")
    ws = Workspace(runs=[broken])
    *figs, message, table = study.update_study(ws, "broken")
    assert "history.json: unreadable history" in message[0] and table == ""
    assert all(f.layout.meta["empty"] for f in figs)


def test_the_study_page_says_when_no_study_is_loaded(tmp_path):
    from workbench.data import Workspace
    from workbench.views import study

    assert "No study is loaded" in str(study.layout(Workspace(runs=[tmp_path])))


def test_a_shipped_study_keeps_histories_and_summaries_only(killed_and_resumed, tmp_path):
    from tauformer.study.demo import ship
    from workbench.data import Workspace

    ship(killed_and_resumed[0], tmp_path / "study")
    files = sorted(p.relative_to(tmp_path / "study").as_posix() for p in (tmp_path / "study").rglob("*") if p.is_file())
    assert files[:3] == ["runs/tau-chain-s1337/config.json", "runs/tau-chain-s1337/history.json",
                         "runs/tau-chain-s1338/config.json"]
    assert not [f for f in files if f.endswith(".safetensors")] and "summary.json" in files
    ws = Workspace(runs=[tmp_path])  # found as a folder's child, summarised from the histories alone
    assert ws.studies.names() == ["study"]
    assert ws.studies.summary("study")["variants"]["tau-chain"]["final"] == \
        summarise_study(killed_and_resumed[0])["variants"]["tau-chain"]["final"]


def test_a_study_directory_refuses_other_settings_but_takes_more_seeds(tmp_path, domain16):
    from tauformer.errors import ConfigError

    model = ModelConfig(n_layer=2, n_head=2, n_kv_head=2, n_embd=32, block_size=64)
    plan_study(tmp_path, model, TrainConfig(steps=4), domain=domain16, variants=["tau-chain"], seeds=1)
    assert len(plan_study(tmp_path, model, TrainConfig(steps=4), domain=domain16, variants=["tau-chain"], seeds=3)) == 3
    with pytest.raises(ConfigError, match="other train settings \\(steps\\)"):
        plan_study(tmp_path, model, TrainConfig(steps=8), domain=domain16, variants=["tau-chain"])


def test_the_bundled_demo_study_is_complete_and_the_readme_quotes_it():
    from workbench.data import demo_workspace

    ws = demo_workspace()
    assert "study" in ws.studies.names()
    summary = ws.studies.summary("study")
    assert list(summary["variants"]) == ["dot", "tau-domain", "tau-chain", "tau-shuffled", "tau-random", "tau-identity"]
    assert all(e["n"] == 3 and not e["incomplete"] for e in summary["variants"].values())
    shipped = REPO / "assets" / "demo" / "study"
    assert not list(shipped.rglob("*.safetensors")) and sum(f.stat().st_size for f in shipped.rglob("*")) < 2**20
    readme = (REPO / "README.md").read_text()
    for v, e in summary["variants"].items():
        assert f"| {v} | {e['mean']:.4f} [{e['ci95'][0]:.4f}, {e['ci95'][1]:.4f}]" in readme
