"""Hostile files through the CLI and the app's loaders: each is refused with one line naming the
file; none runs code, hangs or prints a traceback. The counts are printed (pytest -s shows them)."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from hostile import MARKER, Case, build_corpus, good_run
from tauformer.__main__ import main
from tauformer.errors import TauformerError

REPO = Path(__file__).resolve().parents[1]
TRAINING_STATE = ("optimizer.safetensors", "trainer.json")  # read only by --resume


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    return root, build_corpus(root)


def cli_argv(case: Case) -> list[str]:
    if case.kind == "run":
        return ["generate", str(case.path), "--max-new-tokens", "2", "--prompt", "a"]
    if case.kind == "domain":
        if case.path.suffix == ".parquet":
            return ["domain", "import", str(case.path), "--out", str(case.path.with_suffix(".out.safetensors"))]
        return ["domain", "info", str(case.path)]
    return ["domain", "build", str(case.path), "--out", str(case.path.with_suffix(".out.safetensors")), "--quiet"]


def run_one(case: Case) -> dict:
    """Exit code and stderr of the case through main() (or, for training-state files, the resume
    loader they are read by), in this process."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        if case.names in TRAINING_STATE:
            from tauformer.checkpoint import load_training_state

            try:
                load_training_state(case.path)
                code = 0
            except TauformerError as e:
                print(f"error: {e}", file=sys.stderr)
                code = 2
        else:
            code = main(cli_argv(case))
    return {"label": case.label, "code": code, "err": err.getvalue()}


def judge(results: list[dict], cases: list[Case], root: Path, hung: int = 0) -> dict:
    """Counts over the results; asserts each case was refused properly."""
    by_label = {c.label: c for c in cases}
    counts = {"tried": len(results) + hung, "refused": 0, "accepted": 0, "tracebacks": 0, "hangs": hung,
              "code executions": int((root / MARKER).exists())}
    bad = []
    for r in results:
        case, lines = by_label[r["label"]], r["err"].strip().splitlines()
        counts["tracebacks"] += "Traceback" in r["err"]
        if r["code"] == 0:
            counts["accepted"] += 1
            bad.append(f"{case.label}: accepted")
        elif r["code"] == 2 and len(lines) == 1 and case.names in lines[0] and lines[0].startswith("error: "):
            counts["refused"] += 1
        else:
            bad.append(f"{case.label}: exit {r['code']}, stderr {r['err'][:300]!r}")
    print(" ".join(f"{k}={v}" for k, v in counts.items()))
    assert not bad, "\n".join(bad)
    assert counts["code executions"] == 0 and counts["tracebacks"] == 0 and counts["hangs"] == 0
    return counts


def test_the_unspoilt_templates_load(corpus):
    """The control: the good run and domain every case was made from pass the same commands."""
    root, _ = corpus
    good = [Case("good run", "run", root / "_templates" / "run", ""),
            Case("good domain", "domain", root / "_templates" / "dom", "")]
    assert [run_one(c)["code"] for c in good] == [0, 0]


def test_cli_refuses_every_hostile_file(corpus):
    root, cases = corpus
    results = [run_one(c) for c in cases if not c.hangs]
    counts = judge(results, cases, root)
    assert counts["tried"] >= 60


DRIVER = textwrap.dedent("""
    import contextlib, io, json, sys
    sys.path.insert(0, sys.argv[1])
    from test_hostile import run_one
    from hostile import Case
    from pathlib import Path
    for raw in json.loads(sys.argv[2]):
        case = Case(raw["label"], raw["kind"], Path(raw["path"]), raw["names"], True)
        print(json.dumps(run_one(case)), flush=True)
""")


def test_fifos_neither_hang_the_cli_nor_the_app(corpus):
    """FIFOs in a subprocess with a timeout: a read that blocks fails the test instead of hanging it."""
    root, cases = corpus
    fifos = [c for c in cases if c.hangs]
    payload = json.dumps([{"label": c.label, "kind": c.kind, "path": str(c.path), "names": c.names} for c in fifos])
    code = DRIVER + textwrap.dedent("""
        from workbench.data import open_workspace
        for raw in json.loads(sys.argv[2]):
            path = Path(raw["path"])
            if raw["kind"] == "run":
                ws = open_workspace(runs=[path], domains=[], cache_dir=sys.argv[3])
                msg = " ".join(ws.problems)
                for name in ws.runs.names():
                    try:
                        ws.runs.load(name); ws.runs.history(name)
                    except Exception as err:
                        msg += f"{type(err).__name__}: {err}"
            elif raw["kind"] == "domain":
                ws = open_workspace(runs=[], domains=[path], cache_dir=sys.argv[3])
                msg = (ws.domains.try_load(ws.domains.names()[0])[1] or "") if ws.domains.names() else " ".join(ws.problems)
            else:
                continue
            print(json.dumps({"app": raw["label"], "msg": msg}), flush=True)
    """)
    proc = subprocess.run([sys.executable, "-c", code, str(Path(__file__).parent), payload, str(root / "cache")],
                          capture_output=True, text=True, timeout=240, cwd=REPO,
                          env={**__import__("os").environ, "PYTHONPATH": f"{REPO}:{Path(__file__).parent}"})
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    results = [r for r in rows if "code" in r]
    assert len(results) == len(fifos)
    judge(results, cases, root)
    apps = [r for r in rows if "app" in r]
    assert apps and all("not a regular file" in r["msg"] for r in apps), apps


def test_app_loaders_refuse_every_hostile_file(corpus, tmp_path):
    """Through open_workspace and the stores: the app keeps running and names the file."""
    from workbench.data import open_workspace

    root, cases = corpus
    tried = refused = 0
    bad = []
    for case in cases:
        if case.hangs or case.kind == "embedding" or case.names in TRAINING_STATE:
            continue
        tried += 1
        if case.kind == "run":
            ws = open_workspace(runs=[case.path], domains=[], cache_dir=tmp_path)
            messages = list(ws.problems)
            for name in ws.runs.names():
                for call in (lambda: ws.runs.load(name), lambda: ws.runs.history_arrays(name)):
                    try:
                        call()
                    except TauformerError as err:
                        messages.append(str(err))
            if name_in := [m for m in messages if case.names in m]:
                refused += len(name_in[0].splitlines()) == 1
            else:
                bad.append(f"{case.label}: {messages}")
            assert "history" not in case.names or ws.runs.names(), f"{case.label}: a broken history dropped the run"
        else:
            ws = open_workspace(runs=[], domains=[case.path], cache_dir=tmp_path)
            memory, message = ws.domains.try_load(ws.domains.names()[0])
            if memory is None and case.names in message and len(message.splitlines()) == 1:
                refused += 1
            else:
                bad.append(f"{case.label}: {message!r}")
    print(f"app loaders: tried={tried} refused={refused} code executions={int((root / MARKER).exists())}")
    assert not bad, "\n".join(bad)
    assert refused == tried and not (root / MARKER).exists()


def test_a_pickle_as_an_item_layout_runs_no_code(tmp_path):
    from hostile import pickle_bytes
    from workbench.data.layout_compute import load_layout

    path = tmp_path / "layouts" / "k.npz"
    path.parent.mkdir()
    path.write_bytes(pickle_bytes(tmp_path))
    with pytest.raises(Exception):
        load_layout(path)
    assert not (tmp_path / MARKER).exists()


def test_workspace_with_good_and_bad_runs_lists_the_good_ones(tmp_path):
    folder = tmp_path / "runs"
    good_run(folder, "alpha")
    good_run(folder, "beta", attention="dot")
    nested = good_run(folder, "nested")
    (nested / "ckpt-1" / "config.json").write_text("[" * 100_000 + "]" * 100_000)
    text_step = good_run(folder, "text-step")
    config = json.loads((text_step / "ckpt-1" / "config.json").read_text())
    (text_step / "ckpt-1" / "config.json").write_text(json.dumps({**config, "step": "1e3"}))
    odd_dir = folder / "odd-names"
    (odd_dir / "ckpt-abc").mkdir(parents=True)
    broken = good_run(folder, "broken-history")
    (broken / "ckpt-1" / "history.json").write_text('[{"step": 1, "val_loss": ')
    a_file = tmp_path / "notes.txt"
    a_file.write_text("not a run")

    from workbench.data import open_workspace

    ws = open_workspace(runs=[folder, a_file, tmp_path / "missing"], domains=[], cache_dir=tmp_path / "cache")
    assert sorted(ws.runs.names()) == ["alpha", "beta", "broken-history"]
    problems = ws.problems
    assert len(problems) == 4 and all(len(p.splitlines()) == 1 for p in problems)
    for needle in ("nested/ckpt-1/config.json", "text-step/ckpt-1/config.json", "notes.txt", "missing"):
        assert sum(needle in p for p in problems) == 1, (needle, problems)
    histories = ws.runs.histories()
    assert set(histories) == {"alpha", "beta"}  # only the Training page of the broken run says so
    with pytest.raises(TauformerError, match="broken-history/ckpt-1/history.json"):
        ws.runs.history("broken-history")
    model, meta = ws.runs.load("broken-history")  # its weights still load
    assert meta.step == 1
