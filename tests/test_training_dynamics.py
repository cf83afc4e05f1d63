"""Training dynamics on the Training page: tau and energy, lambda of every tau run, the wall-clock
axis and the scalars CSV -- data layer on the demo, figures on small made-up histories."""

import csv
import io

import numpy as np
import pytest
import torch

from tauformer.checkpoint import load_checkpoint
from tauformer.probe import run_probe
from workbench import figures as F
from workbench import theme
from workbench.data import demo_workspace
from workbench.data import dynamics as D
from workbench.figures import FigureInputError
from workbench.views import training


@pytest.fixture(scope="module")
def ws():
    return demo_workspace()


# ------------------------------------------------------------------ data layer
def test_checkpoint_energy_equals_what_the_model_computes_for_its_lambdas(ws):
    """E rebuilt from the model's own lambda and tau (lambda = E / (E + tau)) on the same sample."""
    got = D.checkpoint_energy(ws, "tau", 1000)
    n, T = D.ENERGY_SAMPLE
    x, _ = ws.probes.validation_batches("tau", 1, n, block_size=T)[0]
    model, _ = load_checkpoint(ws.runs.checkpoint_path("tau", 1000), history=False)
    result = run_probe(model, torch.as_tensor(x))
    lam_q, tau_q = result.lambda_q.double(), result.tau_q.double()  # [L, B, H, T]
    lam_k, tau_k = result.lambda_k.double(), result.tau_k.double()  # [L, B, H_kv, T]
    want_q = (tau_q * lam_q / (1 - lam_q)).mean(dim=(1, 3)).numpy()  # [L, H]
    want_k = (tau_k * lam_k / (1 - lam_k)).mean(dim=(1, 3)).numpy()
    n_rep = result.n_rep
    assert got["energy_q"].shape == (4, 3) and got["energy_k"].shape == (4, 3)
    np.testing.assert_allclose(got["energy_q"], want_q, rtol=2e-4)
    np.testing.assert_allclose(got["energy_k"], np.repeat(want_k, n_rep, axis=1), rtol=2e-4)


def test_energies_a_history_lacks_come_from_every_checkpoint_and_are_cached(ws):
    hs = ws.runs.histories()
    unlogged = {k: v for k, v in hs["tau"].items() if not k.startswith("energy_")}  # as the demo's history
    e = D.energy_over_steps(ws, "tau", unlogged)
    assert e["source"] == D.FROM_CHECKPOINTS
    assert e["step"].tolist() == [500.0, 1000.0, 1500.0] and e["energy_q"].shape == (3, 4, 3)
    assert np.all(np.diff(e["elapsed_s"]) > 0)  # interpolated in the history's wall clock
    cached = D.checkpoint_energy(ws, "tau", 500)
    assert D.checkpoint_energy(ws, "tau", 500) is cached  # computed once per checkpoint ref
    np.testing.assert_array_equal(e["energy_q"][0], cached["energy_q"])
    assert D.energy_over_steps(ws, "dot", hs["dot"]) is None
    assert (D.energy_over_steps(ws, "tau", hs["tau"])["source"] == D.FROM_HISTORY) == ("energy_q" in hs["tau"])


def test_energies_a_history_logged_are_used_as_logged(ws):
    S, L, H = 5, 2, 3
    energy = np.arange(S * L * H, dtype=float).reshape(S, L, H)
    energy[0] = np.nan  # an evaluation from before energies were logged (a resumed old run)
    h = {"kind": "tau", "step": np.arange(S) * 10.0, "elapsed_s": np.arange(S) * 2.0,
         "energy_q": energy, "energy_k": energy + 1}
    e = D.energy_over_steps(ws, "tau", h)
    assert e["source"] == D.FROM_HISTORY and e["step"].tolist() == [10.0, 20.0, 30.0, 40.0]
    np.testing.assert_array_equal(e["energy_k"], energy[1:] + 1)


def test_the_wall_clock_axis_needs_every_run_to_have_recorded_its_time():
    timed = {"step": np.arange(3.0), "elapsed_s": np.array([1.0, 2.0, 3.0])}
    untimed = {"step": np.arange(3.0), "elapsed_s": np.full(3, np.nan)}
    assert D.time_axis({"a": timed}, "time")[0] == "time"
    axis, note = D.time_axis({"a": timed, "old": untimed}, "time")
    assert axis == "step" and "old" in note and "a," not in note
    assert D.time_axis({"a": timed}, "step") == ("step", "")


def test_the_scalars_csv_holds_every_evaluation_of_every_run_with_its_numbers(ws):
    runs = ws.runs.names()
    rows = list(csv.DictReader(io.StringIO(D.scalars_csv(ws, runs))))
    records = {run: ws.runs.history(run) for run in runs}
    assert len(rows) == sum(len(r) for r in records.values())
    by_key = {(r["run"], int(float(r["step"]))): r for r in rows}
    for run, history in records.items():
        for record in (history[0], history[-1]):
            row = by_key[(run, record["step"])]
            assert float(row["val_loss"]) == record["val_loss"] and float(row["elapsed_s"]) == record["elapsed_s"]
            assert row["attention"] == ws.runs.info(run).attention
            if "tau" in record:
                assert [float(row[f"tau_layer{i}"]) for i in range(4)] == record["tau"]
                assert float(row["lambda_q_layer2"]) == pytest.approx(np.mean(record["lambda_q"]["mean"][2]))
            else:
                assert row["tau_layer0"] == ""  # a dot run has no tau: the cell stays empty


def test_the_download_callback_sends_the_csv(ws):
    data, message = training.download_scalars(ws, 1)
    assert data["filename"] == training.CSV_NAME and data["content"].startswith("run,attention,step,elapsed_s")
    assert "3 runs" in message
    assert training.download_scalars(ws, None) == (training.no_update, training.no_update)


def test_the_tau_card_says_where_its_energies_came_from(ws):
    fig = training.update_tau(ws, "all", "time")
    names = [t.name for t in fig.data]
    assert "tau: tau" in names and "tau-reference: tau (fixed)" in names
    from_checkpoints = "energy_q" not in ws.runs.histories()["tau"]  # the demo's history predates energies
    assert ("tau: mean E(q) (checkpoints)" if from_checkpoints else "tau: mean E(q)") in names
    notes = " ".join(a.text for a in fig.layout.annotations)
    assert ("computed from the saved checkpoints" in notes) == from_checkpoints
    assert fig.layout.xaxis.title.text.startswith("wall-clock time")


# ------------------------------------------------------------------ figures
def _run(S=4, L=2, H=3, offset=0.0, seconds=100.0):
    step = np.arange(1, S + 1) * 10.0
    mean = np.full((S, L, H), 0.5 + offset)
    mean[:, 1] += 0.1  # layer 1 sits higher
    return {"step": step, "elapsed_s": step * seconds / step[-1], "mean": mean, "p05": mean - 0.1,
            "p95": mean + 0.1, "tau": np.full((S, L), 2.0 + offset), "kind": "tau"}


def test_lambda_runs_overlays_one_colour_per_run_and_picks_layers():
    fig = F.fig_lambda_runs({"tau": _run(), "tau-b": _run(offset=0.2)}, layer=1, x_axis="time")
    lines = {t.name: t for t in fig.data if t.mode == "lines"}
    assert set(lines) == {"tau", "tau-b"} and lines["tau"].line.color != lines["tau-b"].line.color
    np.testing.assert_allclose(lines["tau-b"].y, 0.8)
    np.testing.assert_allclose(lines["tau"].x, [25, 50, 75, 100])  # elapsed seconds
    assert list(lines["tau"].customdata) == [10, 20, 30, 40]  # hover still names the step
    np.testing.assert_allclose(F.fig_lambda_runs({"tau": _run()}).data[1].y, 0.55)  # mean of layers
    with pytest.raises(FigureInputError):
        F.fig_lambda_runs({"tau": _run()}, head=5)


def test_tau_energy_draws_tau_and_both_energies_per_run():
    run = _run()
    energy = np.full((2, 2, 3), 3.0)
    energy[:, 0] = 1.0
    run["energy"] = {"step": np.array([10.0, 40.0]), "elapsed_s": np.array([25.0, 100.0]), "energy_q": energy,
                     "energy_k": energy * 2, "source": "checkpoints"}
    fig = F.fig_tau_energy({"tau": run, "other": dict(_run(), tau_mode="median")}, layer=0, note="a note")
    by_name = {t.name: t for t in fig.data}
    assert set(by_name) == {"tau: tau", "tau: mean E(q) (checkpoints)", "tau: mean E(k) (checkpoints)"}
    np.testing.assert_allclose(by_name["tau: mean E(k) (checkpoints)"].y, 2.0)
    np.testing.assert_allclose(by_name["tau: tau"].y, 2.0)
    assert fig.layout.annotations[0].text == "a note" and fig.layout.height == 520
    assert F.fig_tau_energy({}).layout.meta["empty"] is True
    with pytest.raises(FigureInputError):
        F.fig_tau_energy({"tau": run}, layer=2)
    with pytest.raises(FigureInputError):  # the wall clock needs every run's elapsed time
        F.fig_tau_energy({"tau": {k: v for k, v in run.items() if k != "elapsed_s"}}, x_axis="time")


def test_loss_curves_on_the_wall_clock_keep_steps_for_clicks():
    h = {"step": np.array([10.0, 20.0, 30.0]), "train_loss": np.array([3.0, 2.0, 1.5]),
         "val_loss": np.array([3.1, 2.1, 1.6]), "elapsed_s": np.array([700.0, 1400.0, 2100.0])}
    fig = F.fig_loss_curves({"tau": h}, checkpoints={"tau": [20]}, selected_step=20, selected_run="tau",
                            x_axis="time")
    by_name = {t.name: t for t in fig.data}
    np.testing.assert_allclose(by_name["tau val"].x, [700 / 60, 1400 / 60, 35.0])  # minutes past 10 min
    assert [list(c) for c in by_name["tau checkpoints (1)"].customdata] == [["tau", 20]]
    assert fig.layout.xaxis.title.text == "wall-clock time (min)"
    assert any(s.x0 == pytest.approx(1400 / 60) for s in fig.layout.shapes)


def test_series_keep_the_colour_the_loss_curves_give_them():
    colors = theme.series_colors(["dot", "tau", "tau-reference"], {"dot": "dot", "tau": "tau", "tau-reference": "tau"})
    fig = F.fig_lambda_runs({"tau": _run(), "tau-reference": _run()})
    assert {t.name: t.line.color for t in fig.data if t.mode == "lines"} == {
        "tau": colors["tau"], "tau-reference": colors["tau-reference"]}
