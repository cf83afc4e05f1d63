"""`python -m workbench bench --load`: a real served app, two phases, parseable figures."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ROW = re.compile(r"^(cached views|fresh prompts)\s+(\d+)\s+(\d+)\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)$")


def test_load_with_two_users_prints_rates_and_percentiles():
    done = subprocess.run([sys.executable, "-m", "workbench", "bench", "--load", "2", "--seconds", "1.5"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = {m.group(1): m.groups()[1:] for m in map(ROW.match, done.stdout.splitlines()) if m}
    assert set(rows) == {"cached views", "fresh prompts"}, done.stdout
    for users, requests, errors, rps, p50, p95, p99 in rows.values():
        assert int(users) == 2 and int(requests) >= 2 and int(errors) == 0
        assert float(rps) > 0 and 0 < float(p50) <= float(p95) <= float(p99)
    assert "127.0.0.1:" in done.stderr and "waitress" in done.stderr


@pytest.mark.parametrize("argv, problem", [(["--load", "0"], "1 to 64 users"), (["--load", "65"], "1 to 64 users"),
                                           (["--load", "2", "--seconds", "500"], "at most 120")])
def test_load_bounds(argv, problem, capsys):
    from workbench import bench

    assert bench.main(argv) == 2
    assert problem in capsys.readouterr().err
