"""The Runs page in a real browser: ticking two rows sets Run, Checkpoint and Compare with, and a
picker changed in its dropdown ticks its rows."""

from urllib.parse import parse_qs, urlparse

import pytest

pytestmark = pytest.mark.browser

STATUS = "#status-bar"


def tick(page, row_id: str) -> None:
    box = page.locator(f'.ag-pinned-left-cols-container .ag-row[row-id="{row_id}"] input.ag-checkbox-input')
    box.click()


def wait_status(page, text: str) -> None:
    page.wait_for_function("([sel, t]) => (document.querySelector(sel) || {}).innerText.includes(t)",
                           arg=[STATUS, text], timeout=30_000)


def query(page) -> dict:
    return {k: v[0] for k, v in parse_qs(urlparse(page.url).query).items()}


def test_ticking_two_rows_sets_run_and_compare(demo_app, page):
    page.goto(demo_app + "runs")
    page.wait_idle()
    p = page.page
    p.wait_for_selector('.ag-row[row-id="tau-reference@500"]', timeout=30_000)
    assert p.locator(".ag-center-cols-container .ag-row").count() == 9
    wait_status(p, "Run tau (tau) at step 1500")
    assert "tau@1500" in p.locator("#runs-diff").inner_text()

    tick(p, "tau-reference@500")  # a third row: the first ticked one drops out
    wait_status(p, "Compared with tau-reference")
    page.wait_idle()
    assert "Run dot (dot) at step 1500" in p.locator(STATUS).inner_text()
    assert p.locator(".ag-row-selected").count() in (2, 4)  # a row is drawn in the pinned and the centre part
    q = query(p)
    assert (q["run"], q["step"], q["compare"]) == ("dot", "1500", "tau-reference")
    assert q["rows"] == "dot@1500,tau-reference@500"
    assert "dot@1500" in p.locator("#runs-diff thead").inner_text()

    tick(p, "tau@1000")
    wait_status(p, "Run tau-reference (tau) at step 500")
    wait_status(p, "Compared with tau")
    page.wait_idle()
    q = query(p)
    assert (q["run"], q["step"], q["compare"]) == ("tau-reference", "500", "tau")
    diff = p.locator("#runs-diff").inner_text()
    assert "model.tau_mode" in diff and "calibrated" in diff and "fixed" in diff

    p.click("#step-picker")  # a picker changed in its dropdown ticks the rows it names
    p.get_by_role("option", name="step 1000").click()
    wait_status(p, "Run tau-reference (tau) at step 1000")
    p.wait_for_function("() => document.querySelector('#runs-diff thead').innerText.includes('tau-reference@1000')",
                        timeout=30_000)
    page.wait_idle()
    ticked = p.locator(".ag-pinned-left-cols-container .ag-row-selected").evaluate_all(
        "rows => rows.map(r => r.getAttribute('row-id'))")
    assert sorted(ticked) == ["tau-reference@1000", "tau@1000"]
    assert query(p)["rows"] == "tau-reference@1000,tau@1000"

    with p.expect_download() as download:
        p.click("#runs-csv-button")
    assert download.value.suggested_filename == "runs.csv"
    with open(download.value.path(), encoding="utf-8") as fh:
        assert len(fh.read().strip().splitlines()) == 10
    page.assert_healthy()
