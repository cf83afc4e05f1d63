"""The Study page in a real browser, on a small study written by the test (histories only)."""

import json

import pytest

from tests.browser.conftest import start_app, stop_app

pytestmark = pytest.mark.browser


def write_study(root):
    """Three variants x three seeds of made-up histories: what `study` leaves in DIR/runs."""
    root.mkdir(parents=True)
    (root / "study.json").write_text(json.dumps({"format": "tauformer-study", "version": 1, "train": {"steps": 30},
                                                 "variants": [], "seeds": [], "domain": {}, "model": {}}))
    for i, variant in enumerate(("dot", "tau-domain", "tau-chain")):
        for seed in (1, 2, 3):
            run = root / "runs" / f"{variant}-s{seed}"
            run.mkdir(parents=True)
            history = [{"step": s, "val_bpb": 4.0 - s / 20 + 0.01 * i + 0.003 * seed} for s in (10, 20, 30)]
            (run / "history.json").write_text(json.dumps(history))


def test_the_study_page_draws_its_figures_side_by_side_without_overlap(tmp_path, page):
    write_study(tmp_path / "mystudy")
    proc, url = start_app(["--runs", str(tmp_path / "mystudy")], tmp_path)
    try:
        page.open(url + "study", graphs=3)
        assert "tau-chain: worse than tau-domain" in page.page.locator("#study-verdict").inner_text()
        boxes = [page.page.locator(f"#card-{n}").bounding_box() for n in ("study-finals", "study-diffs", "study-curves")]
        for i, a in enumerate(boxes):
            for b in boxes[i + 1:]:
                apart = a["x"] + a["width"] <= b["x"] + 1 or b["x"] + b["width"] <= a["x"] + 1 or \
                    a["y"] + a["height"] <= b["y"] + 1 or b["y"] + b["height"] <= a["y"] + 1
                assert apart, f"cards overlap: {a} {b}"
        assert page.page.locator(".study-table tbody tr").count() == 3
        page.assert_healthy()
    finally:
        stop_app(proc)
