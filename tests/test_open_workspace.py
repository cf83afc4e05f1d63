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


def test_a_path_that_is_not_a_domain_memory_is_one_problem_and_the_others_load(tmp_path):
    import numpy as np

    from tauformer.domain.io import DOMAIN_FILE as BUILT_NAME
    from workbench.data.domains import DOMAIN_FILE as CHECKED_NAME

    assert CHECKED_NAME == BUILT_NAME
    embedding = tmp_path / "nan.npy"
    np.save(embedding, np.zeros((4, 3), dtype=np.float32))
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    ws = open_workspace(None, [str(embedding), str(DOMAIN_FILE), str(empty_dir)], cache_dir=tmp_path / "c")
    assert ws.domains.names() == ["domain"]
    assert len(ws.problems) == 2 and all("\n" not in p for p in ws.problems)
    npy_problem, dir_problem = ws.problems
    assert str(embedding) in npy_problem and "not a domain memory" in npy_problem
    assert "domain build" in npy_problem and "--dim D" in npy_problem
    assert str(empty_dir) in dir_problem and "domain.safetensors" in dir_problem
