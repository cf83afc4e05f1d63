"""scripts/test.sh: Chromium is found, installed when this user can, or named in one line (exit 3)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "test.sh"
pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


def fake_bin(tmp_path: Path, *, uid: int, apt_get: str | None) -> Path:
    """A PATH with only the tools the script needs, a fake `id` and optionally a fake `apt-get`."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "dirname", "touch", "chmod"):
        (bin_dir / tool).symlink_to(shutil.which(tool))
    scripts = {"id": f"#!{shutil.which('bash')}\necho {uid}\n"}
    if apt_get is not None:
        scripts["apt-get"] = f"#!{shutil.which('bash')}\n{apt_get}\n"
    for name, text in scripts.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    return bin_dir


def run_script(bin_dir: Path, *args: str) -> subprocess.CompletedProcess:
    env = {"PATH": str(bin_dir), "PYTHON": sys.executable, "HOME": os.environ.get("HOME", "/tmp"),
           "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    return subprocess.run([shutil.which("bash"), str(SCRIPT), *args], env=env, capture_output=True,
                          text=True, timeout=120)


def test_without_chromium_and_without_root_it_says_what_to_install(tmp_path):
    bin_dir = fake_bin(tmp_path, uid=1000, apt_get="echo apt-get must not run >&2; exit 9")
    done = run_script(bin_dir, "--version")
    assert done.returncode == 3
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "apt-get install -y chromium" in lines[0]
    assert "must not run" not in done.stderr and "pytest" not in done.stdout


def test_as_root_it_installs_chromium_with_apt_get_then_runs_pytest(tmp_path):
    install = ('if [ "$1" = install ]; then printf "#!/bin/sh\\n" > "$(dirname "$0")/chromium"; '
               'chmod +x "$(dirname "$0")/chromium"; fi')
    bin_dir = fake_bin(tmp_path, uid=0, apt_get=install)
    done = run_script(bin_dir, "--version")
    assert (bin_dir / "chromium").exists()
    assert done.returncode == 0, done.stderr
    assert "pytest" in (done.stdout + done.stderr)


def test_a_wrong_browser_path_is_refused_in_one_line(tmp_path):
    bin_dir = fake_bin(tmp_path, uid=0, apt_get="exit 9")
    env_path = tmp_path / "no-such-chromium"
    done = subprocess.run([shutil.which("bash"), str(SCRIPT), "--version"], capture_output=True, text=True,
                          env={"PATH": str(bin_dir), "BROWSER_PATH": str(env_path), "PYTHON": sys.executable},
                          timeout=60)
    assert done.returncode == 3 and str(env_path) in done.stderr
