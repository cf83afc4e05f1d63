"""Load test: USERS simulated users sending the Attention page's Dash callback requests.

    python -m workbench bench --load USERS --seconds S [--runs DIR ...]

Starts ``python app.py`` (waitress) on 127.0.0.1 on a free port with a fresh private cache
dir, waits until it answers, warms it (models loaded, the default prompt probed), then runs
two phases of S seconds each: "cached views" (every request with the default prompt, as
when people look at the same thing) and "fresh prompts" (a new prompt in every request,
so every one runs the probe). Each user is a thread with its own keep-alive connection
issuing one request after another. Prints requests/s and p50 / p95 / p99 latency per phase,
then stops the app. Only 127.0.0.1, at most MAX_USERS users and MAX_SECONDS per phase.
"""

from __future__ import annotations

import http.client
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np

MAX_USERS = 64
MAX_SECONDS = 120.0
PAGE_OUTPUT_PREFIXES = ('{"id":"attn-', "..{\"id\":\"attn-", "model-prompt-note")
REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _split_outputs(output: str) -> list[dict]:
    """Dash's output string ("a.b" or "..a.b...c.d..") -> [{"id", "property"}]."""
    parts = output[2:-2].split("...") if output.startswith("..") else [output]
    outs = []
    for part in parts:
        ident, prop = part.rsplit(".", 1)
        outs.append({"id": json.loads(ident) if ident.startswith("{") else ident, "property": prop})
    return outs


def page_requests(dependencies: list, values: dict) -> list[dict]:
    """The server callbacks of the Attention page as request bodies (prompt left to fill in).

    ``values`` maps "id.property" to the value each input has on a fresh page. The cards' export
    callbacks answer button clicks, not page views, and are left out."""
    bodies = []
    for dep in dependencies:
        if dep.get("clientside_function") or not dep["output"].startswith(PAGE_OUTPUT_PREFIXES):
            continue
        if '"type":"export-' in dep["output"]:
            continue
        inputs = [{"id": i["id"], "property": i["property"], "value": values.get(f"{i['id']}.{i['property']}")}
                  for i in dep["inputs"]]
        outputs = _split_outputs(dep["output"])
        bodies.append({"output": dep["output"], "outputs": outputs if dep["output"].startswith("..") else outputs[0],
                       "inputs": inputs, "state": [], "changedPropIds": ["model-prompt.data"]})
    return bodies


def with_prompt(body: dict, prompt) -> bytes:
    inputs = [{**i, "value": prompt} if i["id"] == "model-prompt" else i for i in body["inputs"]]
    return json.dumps({**body, "inputs": inputs}).encode()


class Client:
    """One user's keep-alive connection to the app."""

    def __init__(self, port: int, timeout: float = 300.0):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        try:
            self.conn.request(method, path, body=body, headers=headers)
            response = self.conn.getresponse()
            return response.status, response.read()
        except (OSError, http.client.HTTPException):
            self.conn.close()
            return 0, b""

    def close(self) -> None:
        self.conn.close()


PROMPT_BYTES = 256  # as long as the default prompt (workbench.data.probes.DEFAULT_PROMPT_BYTES)
FILLER = ("The spectrum of the domain memory shapes what each head attends to, and the tokens "
          "that share an energy level find each other across the passage. ")


def fresh_prompt(user: int) -> str:
    """A prompt no one asked before, of the default prompt's length."""
    head = f"User {user} asks {uuid.uuid4().hex}. "
    return (head + FILLER * 4)[:PROMPT_BYTES]


def run_phase(port: int, bodies: list, users: int, seconds: float, fresh: bool) -> dict:
    """Latencies (ms) of ``users`` threads sending ``bodies`` round-robin for ``seconds``."""
    latencies, errors, lock = [], [0], threading.Lock()
    deadline = time.perf_counter() + seconds

    def user(u: int):
        client, i = Client(port), u
        try:
            while time.perf_counter() < deadline:
                body = bodies[i % len(bodies)]
                prompt = fresh_prompt(u) if fresh else None
                t0 = time.perf_counter()
                status, payload = client.request("POST", "/_dash-update-component", with_prompt(body, prompt))
                ms = 1000 * (time.perf_counter() - t0)
                with lock:
                    if status == 200 and b'"response"' in payload:
                        latencies.append(ms)
                    else:
                        errors[0] += 1
                i += 1
        finally:
            client.close()

    t0 = time.perf_counter()
    threads = [threading.Thread(target=user, args=(u,), daemon=True) for u in range(users)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 600)
    wall = time.perf_counter() - t0
    lat = np.asarray(latencies) if latencies else np.asarray([np.nan])
    p50, p95, p99 = np.percentile(lat, [50, 95, 99])
    return {"requests": len(latencies), "errors": errors[0], "seconds": wall,
            "rps": len(latencies) / wall, "p50": p50, "p95": p95, "p99": p99}


def start_app(port: int, cache: Path, runs=None, domains=None, threads: int = 8, timeout: float = 180.0):
    args = [sys.executable, "app.py", "--port", str(port), "--host", "127.0.0.1", "--cache-dir", str(cache),
            "--threads", str(threads)]
    if runs:
        args += ["--runs", *runs]
    if domains:
        args += ["--domain", *domains]
    log = open(cache / "app.log", "w")
    proc = subprocess.Popen(args, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"app.py exited with {proc.returncode}: {(cache / 'app.log').read_text()[-1000:]}")
        client = Client(port, timeout=5)
        status, _ = client.request("GET", "/_dash-layout")
        client.close()
        if status == 200:
            return proc
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"app.py did not answer within {timeout:.0f} s")


def page_values(runs=None) -> dict:
    """Input values of a fresh Attention page: the default run pair at its last step, layer
    and head 0, no query token, entropy as bars (read from the runs' JSON, no torch)."""
    from workbench.data import RunStore, DEMO_DIR

    store = RunStore(runs or [DEMO_DIR])
    run, compare = store.default_pair()
    run = run or (store.names() or [None])[0]
    return {"run-picker.value": run, "step-picker.value": store.nearest_step(run, None) if run else None,
            "compare-picker.value": compare, "attn-layer.value": 0, "attn-head.value": 0,
            "attn-token.value": None, "attn-entropy-kind.value": "bars", "model-prompt.data": None}


def load_test(users: int, seconds: float, *, runs=None, domains=None, threads: int = 8, log=print) -> list[dict]:
    """Run both phases against a fresh ``python app.py``; returns one dict per phase."""
    if not 1 <= users <= MAX_USERS:
        raise ValueError(f"--load takes 1 to {MAX_USERS} users, got {users}")
    if not 0 < seconds <= MAX_SECONDS:
        raise ValueError(f"--seconds must be above 0 and at most {MAX_SECONDS:g}, got {seconds:g}")
    cache = Path(tempfile.mkdtemp(prefix="workbench-load-"))
    port = free_port()
    started = time.perf_counter()
    proc = start_app(port, cache, runs, domains, threads)
    try:
        client = Client(port)
        status, deps = client.request("GET", "/_dash-dependencies")
        bodies = page_requests(json.loads(deps), page_values(runs))
        if status != 200 or not bodies:
            raise RuntimeError("the app answers no Attention page callbacks (no runs?)")
        for body in bodies:  # warm: models loaded, the default prompt probed
            client.request("POST", "/_dash-update-component", with_prompt(body, None))
        client.close()
        log(f"app on 127.0.0.1:{port} (waitress, {threads} threads) ready and warm in "
            f"{time.perf_counter() - started:.1f} s; {users} users, {len(bodies)} Attention-page callbacks, "
            f"{seconds:g} s per phase")
        rows = []
        for name, fresh in (("cached views", False), ("fresh prompts", True)):
            rows.append({"phase": name, "users": users, **run_phase(port, bodies, users, seconds, fresh)})
        return rows
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(cache, ignore_errors=True)


def format_rows(rows: list[dict]) -> str:
    lines = [f"{'phase':14s} {'users':>5s} {'requests':>8s} {'errors':>6s} {'req/s':>7s} "
             f"{'p50 ms':>8s} {'p95 ms':>8s} {'p99 ms':>8s}"]
    for r in rows:
        lines.append(f"{r['phase']:14s} {r['users']:5d} {r['requests']:8d} {r['errors']:6d} {r['rps']:7.1f} "
                     f"{r['p50']:8.1f} {r['p95']:8.1f} {r['p99']:8.1f}")
    return "\n".join(lines)
