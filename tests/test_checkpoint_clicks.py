"""A click on the Training page loads exactly the clicked checkpoint, and Run never equals Compare."""

import pytest

from workbench.data import demo_workspace
from workbench.views import shell, training
from workbench.views.shell import NONE


@pytest.fixture(scope="module")
def ws():
    return demo_workspace()


def click(run, step, **extra):
    return {"points": [{"curveNumber": 0, "pointNumber": 0, "customdata": [run, step], **extra}]}


@pytest.mark.parametrize("run", ["tau", "dot", "tau-reference"])
def test_a_diamond_loads_its_own_run_and_step(ws, run):
    for step in ws.runs.info(run).steps:  # 500, 1000, 1500
        assert training.load_checkpoint(ws, click(run, step)) == (run, step)


def test_a_click_on_the_evaluation_under_a_diamond_loads_that_diamond(ws):
    # the validation point at step 999 lies under the diamond at 1000; the floor rule loaded 500
    assert training.load_checkpoint(ws, click("tau", 999)) == ("tau", 1000)
    assert training.load_checkpoint(ws, click("tau", 1001)) == ("tau", 1000)
    assert training.load_checkpoint(ws, click("tau", 1)) == ("tau", 500)


def test_run_and_step_come_from_customdata_not_from_indices(ws):
    # curve 0 is the dot curve and point 2 its third point: neither may decide what is loaded
    got = training.load_checkpoint(ws, click("tau-reference", 1000, curveNumber=0, pointNumber=2))
    assert got == ("tau-reference", 1000)
    assert training.load_checkpoint(ws, {"points": [{"customdata": {"0": "dot", "1": 1500}}]}) == ("dot", 1500)
    assert training.load_checkpoint(ws, click("nope", 1000)) == (training.no_update, training.no_update)


def test_run_equal_to_compare_swaps_compare_to_its_twin(ws):
    assert shell.compare_apart(ws, "dot", "dot") == ws.runs.pair_for("dot") != "dot"
    assert shell.compare_apart(ws, "tau", "dot") == "dot"  # different runs stay as they are
    assert shell.compare_apart(ws, "tau", NONE) == NONE
    for run in ws.runs.names():
        options = shell.compare_options(ws, run)
        disabled = [o["value"] for o in options if o.get("disabled")]
        assert disabled == [run]


def test_a_url_naming_the_same_run_twice_compares_the_twin(ws):
    _, run, _, compare, _, _ = shell.initial_pickers(ws, "?run=dot&compare=dot")
    assert run == "dot" and compare not in ("dot", None)
