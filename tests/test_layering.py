"""The dependency direction of DESIGN.md: tauformer never pulls in the app's libraries."""

import subprocess
import sys

import pytest

CORE_MODULES = ["tauformer." + m for m in (
    "config", "taumode", "attention", "kernels", "model", "cache", "checkpoint", "data", "train", "probe", "spectral", "whatif", "demo",
    "__main__",
)]


@pytest.mark.parametrize("forbidden", ["dash", "plotly"])
def test_core_package_does_not_import_the_app_stack(forbidden):
    code = "import sys\n" + "".join(f"import {m}\n" for m in CORE_MODULES) + (
        f"bad = sorted(m for m in sys.modules if m == {forbidden!r} or m.startswith({forbidden!r} + '.'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
