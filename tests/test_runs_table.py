"""The Runs page: its rows (every checkpoint, from JSON only), the settings diff, picking two rows."""

import csv
import io
import json
import shutil
import subprocess
import sys

import pytest
from dash import no_update
from layout_tree import find

from workbench.data import DEMO_DIR, Workspace, demo_workspace
from workbench.data import runs_table as rt
from workbench.views import runs as page


@pytest.fixture(scope="module")
def ws():
    return demo_workspace()


def test_one_row_per_demo_checkpoint_with_its_kind(ws):
    rows = rt.checkpoint_rows(ws)
    expected = {(n, s) for n in ws.runs.names() for s in ws.runs.info(n).steps}
    assert {(r["run"], r["step"]) for r in rows} == expected and len(rows) == len(expected)
    by_id = {r["id"]: r for r in rows}
    assert by_id["tau@1500"]["attention"] == "tau" and by_id["dot@1500"]["attention"] == "dot"
    assert by_id["tau@1500"]["tau_mode"] == "calibrated" and by_id["tau-reference@1500"]["tau_mode"] == "fixed"
    assert by_id["dot@1500"]["tau_mode"] is None and by_id["dot@1500"]["domain_fingerprint"] is None
    assert [r["latest"] for r in rows if r["run"] == "tau"] == [False, False, True]
    record = json.loads((DEMO_DIR / "tau" / "ckpt-1500" / "config.json").read_text())
    assert by_id["tau@1500"]["domain_fingerprint"] == record["domain"]["fingerprint"][:12]
    assert by_id["tau@1500"]["tokenizer"] == "bytes" and by_id["tau@1500"]["vocab_size"] == 256
    history = json.loads((DEMO_DIR / "tau" / "ckpt-1000" / "history.json").read_text())
    at_1000 = [h for h in history if h["step"] <= 1000 and "val_bpb" in h][-1]
    assert by_id["tau@1000"]["val_bpb"] == pytest.approx(at_1000["val_bpb"])
    assert all(r["tokens_per_s"] > 0 and r["problem"] is None for r in rows)


def test_the_table_reads_no_weights_and_no_torch():
    code = ("import sys; from workbench.data import demo_workspace; from workbench.data import runs_table as rt; "
            "rows = rt.checkpoint_rows(demo_workspace()); print(len(rows), 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["9", "False"]


@pytest.mark.parametrize("kind,n_kv_head,learn", [("tau", 4, True), ("tau", 2, False), ("dot", 2, True)])
def test_parameters_and_kv_bytes_from_the_config_match_a_built_model(kind, n_kv_head, learn):
    from tauformer.cache import make_cache
    from tauformer.config import ModelConfig
    from tauformer.model import GPT

    cfg = ModelConfig(vocab_size=64, block_size=32, n_layer=2, n_head=4, n_kv_head=n_kv_head, n_embd=32,
                      attention=kind, learn_temperature=learn)
    model = GPT(cfg)
    assert rt.parameter_count(cfg) == model.num_parameters()
    assert rt.kv_bytes_per_token(cfg) == make_cache(model, 1, 16).bytes_per_token()


def test_rows_are_cached_by_the_checkpoints_and_follow_a_rewritten_config(tmp_path):
    shutil.copytree(DEMO_DIR / "dot", tmp_path / "dot")
    ws = Workspace(runs=[tmp_path], domains=[], cache_dir=tmp_path / "cache")
    first = rt.checkpoint_rows(ws)
    assert rt.checkpoint_rows(ws) == first
    config = tmp_path / "dot" / "ckpt-500" / "config.json"
    data = json.loads(config.read_text())
    data["train"]["lr"] = 0.001
    config.write_text(json.dumps(data, indent=1) + "\n\n")  # another size: a new ref
    again = {r["id"]: r for r in rt.checkpoint_rows(ws)}
    assert again["dot@500"]["lr"] == 0.001 and again["dot@1000"]["lr"] == 0.003


def test_a_broken_config_is_one_row_with_its_problem(tmp_path):
    shutil.copytree(DEMO_DIR / "dot", tmp_path / "dot")
    ws = Workspace(runs=[tmp_path], domains=[], cache_dir=tmp_path / "cache")
    (tmp_path / "dot" / "ckpt-500" / "config.json").write_text("{not json")
    by_id = {r["id"]: r for r in rt.checkpoint_rows(ws)}
    assert "config.json" in by_id["dot@500"]["problem"] and by_id["dot@500"]["attention"] is None
    assert by_id["dot@1500"]["problem"] is None


def test_the_diff_lists_only_the_settings_that_differ(ws):
    tau, ref, dot = (rt.settings_of(ws, i) for i in ("tau@1500", "tau-reference@1500", "dot@1500"))
    diff = {d["setting"]: (d["a"], d["b"]) for d in rt.settings_diff(tau, ref)}
    assert diff == {"model.tau_mode": ("calibrated", "fixed"), "model.temperature": (0.02, 1.0),
                    "model.learn_temperature": (True, False)}
    against_dot = {d["setting"]: (d["a"], d["b"]) for d in rt.settings_diff(tau, dot)}
    assert against_dot["model.attention"] == ("tau", "dot") and against_dot["model.tau_mode"] == ("calibrated", None)
    assert "model.n_layer" not in against_dot and "train.lr" not in against_dot
    assert rt.settings_diff(tau, tau) == []
    assert rt.settings_diff({"x": 1, "y": True}, {"x": 1.0, "y": 1, "z": None}) == [{"setting": "y", "a": True, "b": 1}]


def test_the_csv_holds_every_row_unrounded(ws):
    rows = rt.checkpoint_rows(ws)
    table = list(csv.DictReader(io.StringIO(rt.rows_csv(rows))))
    assert [t["id"] for t in table] == [r["id"] for r in rows]
    assert float(table[0]["val_bpb"]) == rows[0]["val_bpb"] and table[0]["domain_fingerprint"] == ""
    download = page.csv_download(ws, 1)
    assert download["filename"] == "runs.csv" and download["content"].startswith("id,run,step")


def test_ticking_rows_keeps_the_order_and_the_last_two():
    assert page.picked_order([], [{"id": "a"}]) == ["a"]
    assert page.picked_order(["b"], [{"id": "a"}, {"id": "b"}]) == ["b", "a"]
    assert page.picked_order(["b", "a"], [{"id": "a"}, {"id": "b"}, {"id": "c"}]) == ["a", "c"]
    assert page.picked_order(["b", "a"], [{"id": "a"}]) == ["a"]


def test_a_third_tick_trims_the_grid_and_an_echo_changes_nothing(ws):
    order, grid = page.on_select(ws, [{"id": "tau@500"}, {"id": "dot@500"}, {"id": "dot@1500"}], ["tau@500", "dot@500"])
    assert order == ["dot@500", "dot@1500"] and grid == {"ids": ["dot@500", "dot@1500"]}
    assert page.on_select(ws, [{"id": "dot@1500"}, {"id": "dot@500"}], ["dot@500", "dot@1500"]) == (no_update, no_update)


def test_two_picked_rows_set_run_step_and_compare(ws):
    assert page.pickers_for(ws, ["tau-reference@500", "dot@1000"], "tau", 1500, "dot") == ("tau-reference", 500, no_update)
    assert page.pickers_for(ws, ["dot@1000", "tau@500"], "tau", 1500, "dot") == ("dot", 1000, "tau")
    # two checkpoints of one run: Run and Checkpoint only, never Compare = Run
    assert page.pickers_for(ws, ["tau@500", "tau@1000"], "dot", 1500, "tau") == ("tau", 500, no_update)
    assert page.pickers_for(ws, ["tau@500"], "dot", 1500, "tau") == (no_update,) * 3
    assert page.pickers_for(ws, ["gone@5", "tau@500"], "dot", 1500, "tau") == (no_update,) * 3


def test_pickers_changed_in_their_dropdowns_tick_their_rows(ws):
    assert page.follow_pickers(ws, "dot", 1000, "tau", ["tau@1500", "dot@1500"]) == (
        {"ids": ["dot@1000", "tau@1000"]}, ["dot@1000", "tau@1000"])
    assert page.follow_pickers(ws, "tau", 1500, "__none__", ["tau@1500", "dot@1500"]) == (no_update, no_update)
    assert page.follow_pickers(ws, "tau", 500, "dot", ["tau@500", "dot@1500"]) == (no_update, no_update)
    assert page.follow_pickers(ws, "tau", 500, "dot", ["tau@500", "tau@1000"]) == (no_update, no_update)
    assert page.follow_pickers(ws, "tau", None, "dot", []) == (no_update, no_update)


def test_the_layout_ticks_the_url_rows_or_the_pickers(ws):
    grid = find(page.layout(ws), page.GRID)
    assert grid.selectedRows == {"ids": ["tau@1500", "dot@1500"]} and len(grid.rowData) == 9
    grid = find(page.layout(ws, run="dot", step="500", compare="tau-reference", rows="dot@500,tau-reference@1000"),
                page.GRID)
    assert grid.selectedRows == {"ids": ["dot@500", "tau-reference@1000"]}  # the compared run's own step
    grid = find(page.layout(ws, rows="dot@500,tau-reference@1000"), page.GRID)  # rows that are not the pickers
    assert grid.selectedRows == {"ids": ["tau@1500", "dot@1500"]}
    grid = find(page.layout(ws, run="tau-reference", step="700", compare="__none__"), page.GRID)
    assert grid.selectedRows == {"ids": ["tau-reference@500"]}
    assert "Tick two rows" in str(page.diff_view(ws, ["tau-reference@500"]))
    assert "same settings" in str(page.diff_view(ws, ["tau@500", "tau@1000"]))
    assert "tau-reference@1500" in str(page.diff_view(ws, ["tau@1500", "tau-reference@1500"]))


def test_bench_cases_run(ws):
    cases = page.bench_cases(ws)
    assert cases and all(callable(fn) for _, fn in cases)
    for _, fn in cases:
        fn()


def test_without_runs_the_page_says_so(tmp_path):
    empty = Workspace(runs=[], domains=[], cache_dir=tmp_path)
    assert "No training runs" in str(page.layout(empty).to_plotly_json())


def test_a_chain_run_and_a_bpe_tokenizer_are_named_from_the_config(tmp_path):
    shutil.copytree(DEMO_DIR / "tau", tmp_path / "tau-chain", ignore=shutil.ignore_patterns("model.safetensors"))
    config = tmp_path / "tau-chain" / "ckpt-1500" / "config.json"
    data = json.loads(config.read_text())
    data.update(domain={"laplacian": "chain"}, tokenizer={"kind": "bpe", "vocab_size": 200, "sha256": "ab" * 32})
    config.write_text(json.dumps(data))
    ws = Workspace(runs=[tmp_path], domains=[], cache_dir=tmp_path / "cache")
    by_id = {r["id"]: r for r in rt.checkpoint_rows(ws)}
    chain, domain = by_id["tau-chain@1500"], by_id["tau-chain@1000"]
    assert (chain["laplacian"], chain["domain_fingerprint"], chain["domain_name"]) == ("chain", None, None)
    assert (chain["tokenizer"], chain["vocab_size"]) == ("bpe", 200)
    assert (domain["laplacian"], domain["tokenizer"], domain["vocab_size"]) == ("domain", "bytes", 256)
    diff = {d["setting"] for d in rt.settings_diff(rt.settings_of(ws, "tau-chain@1000"), rt.settings_of(ws, "tau-chain@1500"))}
    assert {"domain.laplacian", "tokenizer.kind", "tokenizer.vocab_size", "domain.params.k"} <= diff
