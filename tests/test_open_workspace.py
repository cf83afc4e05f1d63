"""Which runs and domain memories `python app.py [--runs ...] [--domain ...]` opens."""

from workbench.data import DEMO_DIR, open_workspace

DEMO_RUNS = ["dot", "tau", "tau-reference"]
DOMAIN_FILE = DEMO_DIR / "domain" / "domain.safetensors"


def test_no_arguments_open_the_demo_runs_and_domain(tmp_path):
    ws = open_workspace(None, None, cache_dir=tmp_path)
    assert sorted(ws.runs.names()) == DEMO_RUNS
    assert len(ws.domains.names()) == 1


def test_a_domain_alone_keeps_the_demo_runs(tmp_path):
    ws = open_workspace(None, [str(DOMAIN_FILE)], cache_dir=tmp_path)
    assert sorted(ws.runs.names()) == DEMO_RUNS
    assert len(ws.domains.names()) == 1 and not ws.problems


def test_runs_given_open_only_those_runs_and_no_demo_domain(tmp_path):
    ws = open_workspace([str(DEMO_DIR / "tau")], None, cache_dir=tmp_path)
    assert ws.runs.names() == ["tau"]
    assert ws.domains.names() == []
