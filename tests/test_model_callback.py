"""The one opening of a model page's callback (views.model_shared.model_callback): skip while a
picker is empty, answer friendly errors and dot-product runs with empty figures and messages."""

from types import SimpleNamespace

import pytest
from dash.exceptions import PreventUpdate

from workbench.figures import FigureInputError, fig_empty
from workbench.views import model_shared as ms


class FakeRuns:
    """Run info by name; an unknown run raises KeyError like the workspace's runs."""

    def __init__(self, kinds: dict):
        self.kinds = kinds

    def info(self, run):
        if run not in self.kinds:
            raise KeyError(f"unknown run {run!r}")
        return SimpleNamespace(attention=self.kinds[run])


WS = SimpleNamespace(runs=FakeRuns({"tau": "tau", "dot": "dot"}))
CALLS = []


def text_of(fig) -> str:
    assert fig.layout.meta["empty"], "expected an empty-state figure"
    return fig.layout.annotations[0].text


@ms.model_callback(figures=2, extra=(ms.MESSAGE, "default note"), tau_only=" Pick a tau run.")
def two_figures(workspace, run, step, prompt=None, fail=None):
    """A callback with two figures, a message output and a note output."""
    CALLS.append((run, step))
    if fail is not None:
        raise fail
    return fig_empty("figure 1"), fig_empty("figure 2"), "message", "note"


@ms.model_callback(requires=("run",))
def one_figure(workspace, measure, run, step):
    if step == "bad":
        raise FigureInputError("fig_x: bad input")
    return fig_empty(f"drawn {measure}")


def test_an_empty_required_picker_skips_before_the_body_runs():
    CALLS.clear()
    for run, step in ((None, 3), ("tau", None), (None, None)):
        with pytest.raises(PreventUpdate):
            two_figures(WS, run, step)
    assert CALLS == []
    assert text_of(one_figure(WS, True, "tau", None)) == "drawn True"  # step is not required here
    with pytest.raises(PreventUpdate):
        one_figure(WS, True, None, 3)


def test_friendly_errors_become_an_empty_figure_per_figure_output_and_the_given_defaults():
    a, b, msg, note = two_figures(WS, "tau", 3, fail=ValueError("the prompt is empty"))
    assert text_of(a) == text_of(b) == msg == "the prompt is empty" and note == "default note"
    assert a is not b
    a, _, msg, _ = two_figures(WS, "ghost", 3)  # unknown run: KeyError's message, unquoted
    assert msg == "unknown run 'ghost'" and text_of(a) == msg
    assert text_of(one_figure(WS, False, "tau", "bad")) == "fig_x: bad input"  # one output: not a tuple


def test_other_errors_and_prevent_update_pass_through():
    with pytest.raises(PreventUpdate):
        two_figures(WS, "tau", 3, fail=PreventUpdate())
    with pytest.raises(ZeroDivisionError):
        two_figures(WS, "tau", 3, fail=ZeroDivisionError("a bug, not a user error"))


def test_a_dot_run_gets_the_no_lambda_answer_and_a_tau_run_the_body():
    CALLS.clear()
    a, b, msg, note = two_figures(WS, "dot", 3)
    assert msg == ms.no_lambda("dot") + " Pick a tau run." and text_of(b) == msg and note == "default note"
    assert CALLS == []
    assert two_figures(WS, "tau", 3)[2:] == ("message", "note") and CALLS == [("tau", 3)]


def test_the_decorated_callback_keeps_its_name_and_docstring_for_dash_and_the_recipes():
    assert two_figures.__name__ == "two_figures" and "two figures" in two_figures.__doc__
