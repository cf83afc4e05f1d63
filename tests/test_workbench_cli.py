"""`python -m workbench {export, bench, precompute}`: one parser, defaults in the help, one-line
errors with exit code 2, the old module spellings, one page list and one export naming rule."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import workbench.views
from tauformer.domain import build_domain_memory, save_domain_memory
from workbench import batch_export, bench, export, precompute
from workbench.__main__ import build_parser
from workbench.views import cards, common

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = ("export", "bench", "precompute")


def _commands() -> dict[str, argparse.ArgumentParser]:
    (choices,) = [a.choices for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(choices)


def test_one_parser_holds_every_command_and_each_help_says_its_defaults():
    commands = _commands()
    assert tuple(commands) == COMMANDS
    for name, parser in commands.items():
        formatter = parser._get_formatter()
        for action in parser._actions:
            if action.option_strings and action.nargs != 0 and not action.required:
                text = formatter._expand_help(action) if action.help else ""
                assert "default" in text, f"{name} {action.option_strings[0]}: {text!r}"
    text = commands["export"].format_help()
    assert "(default: pdf)" in text and "(default: lambda)" in text and "(default: the latest)" in text
    assert "(default: 5)" in commands["bench"].format_help()


def test_help_of_every_command_does_not_import_torch():
    driver = ("import runpy, sys\n"
              "sys.argv = ['workbench', '--help']\n"
              "try:\n"
              "    runpy.run_module('workbench', run_name='__main__')\n"
              "except SystemExit:\n"
              "    pass\n"
              "print([m for m in ('torch', 'triton', 'sklearn', 'umap') if m in sys.modules])\n")
    done = subprocess.run([sys.executable, "-c", driver], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert all(name in done.stdout for name in COMMANDS), done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_a_module_parses_its_arguments_as_the_command_line_does():
    args = batch_export.parse_args(["--out", "figs", "--layer", "2"])
    assert (args.command, args.out, args.layer, args.formats, args.func) == ("export", "figs", 2, "pdf",
                                                                            batch_export.run)
    assert build_parser().parse_args(["export", "--out", "figs", "--layer", "2"]) == args


@pytest.mark.parametrize("spelling", [["-m", "workbench", "precompute"], ["-m", "workbench.precompute"]])
def test_precompute_of_a_missing_directory_is_one_line_and_status_2(spelling, tmp_path):
    missing = tmp_path / "missing"
    done = subprocess.run([sys.executable, *spelling, str(missing)], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"error: {missing}: not a domain-memory directory (a layout is stored inside it)"]


def test_precompute_names_a_directory_that_is_no_domain_memory_or_has_no_items(tmp_path, capsys):
    assert precompute.main([str(tmp_path)]) == 2
    assert capsys.readouterr().err == (f"error: {tmp_path}: not a domain memory (a directory from `domain build` "
                                       "holds domain.safetensors; this one does not)\n")
    X = np.random.default_rng(0).normal(size=(30, 12)).astype(np.float32)
    save_domain_memory(build_domain_memory(X, dim=6, eps=2.0, topk=3, keep_items=False), tmp_path / "bare")
    assert precompute.main([str(tmp_path / "bare")]) == 2
    assert capsys.readouterr().err == (f"error: {tmp_path / 'bare'}: the domain memory was saved without its "
                                       "items; nothing to lay out\n")


# ------------------------------------------------------------------ one list of pages
def test_app_export_and_bench_take_their_pages_from_one_list(monkeypatch):
    orders = [m.PAGE["order"] for m in workbench.views.page_modules()]
    assert orders == sorted(orders) and len(orders) == len(workbench.views.PAGE_MODULES)

    class Domains:  # a workspace with a domain memory and nothing else
        runs = studies = type("Empty", (), {"names": staticmethod(lambda: [])})()
        domains = type("One", (), {"names": staticmethod(lambda: ["d"])})()

    ids = [m.PAGE["id"] for m in workbench.views.pages_with_data(Domains)]
    assert ids == ["home", "domain", "spectrum"]
    monkeypatch.setattr(workbench.views, "PAGE_MODULES", ("workbench.views.spectrum", "workbench.views.home"))
    assert [m.PAGE["id"] for m in workbench.views.page_modules()] == ["home", "spectrum"]


def test_the_page_list_is_written_once():
    users = sorted(str(path.relative_to(ROOT)) for path in (ROOT / "workbench").rglob("*.py")
                   if "PAGE_MODULES" in path.read_text(encoding="utf-8"))
    assert users == ["workbench/views/__init__.py"]


def test_the_bench_times_the_pages_that_have_data_in_page_order(tmp_path, monkeypatch):
    for name, order, requires in (("bench_page_late", 7, None), ("bench_page_early", 3, None),
                                  ("bench_page_runs", 1, "runs")):
        (tmp_path / f"{name}.py").write_text(
            f"PAGE = dict(id={name!r}, path='/{name}', name='x', order={order}, description='', requires={requires!r})\n"
            f"def bench_cases(workspace):\n    return {{{name!r}: lambda: {order}}}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(workbench.views, "PAGE_MODULES", ("bench_page_late", "bench_page_runs", "bench_page_early"))

    class NoRuns:
        runs = type("Empty", (), {"names": staticmethod(lambda: [])})()

    cases = bench.collect_cases(NoRuns)
    assert list(cases) == ["bench_page_early", "bench_page_late"] and cases["bench_page_late"]() == 7


# ------------------------------------------------------------ one naming rule for files
@pytest.fixture
def named_page(tmp_path, monkeypatch):
    """A page with one card whose run name needs cleaning, added to PAGE_MODULES."""
    (tmp_path / "page_for_names.py").write_text(
        "import plotly.graph_objects as go\n"
        "from workbench.views.cards import Key, recipe\n"
        "PAGE = dict(id='names', path='/names', name='Names', order=98, description='')\n"
        "def build(workspace, run, step, layer):\n"
        "    return go.Figure(go.Bar(x=[1, 2], y=[3, 4]), layout_title_text=f'{run} at {step}')\n"
        "recipe('names', 'names-card', build, (Key('run', None), Key('step', None), Key('layer', None)))\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(workbench.views, "PAGE_MODULES", ("page_for_names",))
    rendered = []

    def fake_render(fig, fmt, **kwargs):
        rendered.append(fmt)
        return {"pdf": b"%PDF-1.4 fake", "svg": b"<svg/>", "png": b"\x89PNG\r\n\x1a\n"}[fmt]

    monkeypatch.setattr(export, "figure_to_bytes", fake_render)
    return rendered


def test_the_export_button_and_the_batch_export_name_a_file_alike(named_page, tmp_path):
    state = {"run": "my run/1", "step": 40, "layer": 2}
    figures, entries, _ = batch_export.collect_figures(None, state)
    written = export.export_figures(figures, tmp_path / "out", ["pdf", "svg"], progress=False)
    names = sorted(p.name for p in written if p.name != "manifest.json")
    assert names == ["names-card_my_run_1_step40_L2.pdf", "names-card_my_run_1_step40_L2.svg"]
    values = cards.batch_values(cards.RECIPES["names-card"], None, state)
    for fmt in ("pdf", "svg"):
        download, message = common.export_download(None, "names-card", values, fmt, 1, 1)
        assert download["filename"] == cards.export_file_name("names-card", values, fmt)
        assert download["filename"] in names and message.startswith(download["filename"] + ":")
    assert named_page == ["pdf", "svg", "pdf", "svg"]


def test_the_file_name_rule_cleans_names_and_refuses_unknown_formats():
    assert export.file_name("a b/../c", "png") == "a_b_.._c.png"
    assert cards.export_file_name("spectrum-feature-graph", {"eig": 2}, "svg") == "spectrum-feature-graph.svg"
    with pytest.raises(export.ExportError, match="unknown export format 'gif'"):
        export.file_name("x", "gif")
    with pytest.raises(export.ExportError, match="empty file name"):
        export.file_name("/..", "pdf")
