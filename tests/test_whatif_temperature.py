"""What if's temperature: a multiplier box (applied on Enter) kept in step with the log slider."""

from dash import no_update
from layout_tree import find

from workbench.views import whatif


def test_the_box_is_a_multiplier_applied_on_enter(tmp_path):
    from workbench.data import demo_workspace

    page = whatif.layout(demo_workspace(cache_dir=tmp_path), temperature="-1")
    box = find(page, "whatif-temperature-x")
    assert box.debounce is True  # the value is committed on Enter / blur, not per keystroke
    assert box.value == 0.1  # the slider sits at log10(0.1)
    assert "temperature x" in str(page)
    assert find(page, "whatif-temperature").allow_direct_input is False  # no second box holding log10


def test_a_typed_multiplier_moves_the_slider_to_its_log():
    assert whatif.sync_temperature("whatif-temperature-x", 0.0, 0.1) == (-1.0, no_update)
    assert whatif.sync_temperature("whatif-temperature-x", 0.0, "2") == (0.301, no_update)
    assert whatif.sync_temperature("whatif-temperature-x", 0.0, 1000) == (1.0, 10.0)  # clipped to x10


def test_nonsense_in_the_box_changes_nothing():
    for typed in (None, "", 0, -3, "abc"):
        assert whatif.sync_temperature("whatif-temperature-x", 0.5, typed) == (no_update, no_update)


def test_moving_the_slider_rewrites_the_box():
    assert whatif.sync_temperature("whatif-temperature", -2.0, 5) == (no_update, 0.01)
    assert whatif.sync_temperature("whatif-temperature", 0.5, None) == (no_update, 3.16)
