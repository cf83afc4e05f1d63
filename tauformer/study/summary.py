"""A study's statistics from its runs' histories: DIR/summary.json and DIR/summary.csv.

Per variant: the final validation bits per byte of each seed, their mean, sample standard
deviation and 95% confidence interval (t distribution, n - 1 degrees of freedom); and, paired by
seed with the reference variant (tau-domain), the differences variant - reference with their
mean, 95% interval and an exact two-sided binomial sign test. A positive difference means the
variant ends *worse* (more bits per byte) than the domain memory. Only runs that reached the
planned step count enter the final statistics; every run's curve is kept.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

from ..errors import ConfigError
from ..fsutil import atomic_write_bytes, atomic_write_json
from .plan import REFERENCE, VARIANTS, parse_run_name, read_study

METRIC = "val_bpb"
CSV_COLUMNS = ("variant", "n", "seeds", "final_bpb", "mean", "std", "ci95_low", "ci95_high", "diff_n", "diff_mean",
               "diff_ci95_low", "diff_ci95_high", "n_worse", "n_better", "sign_test_p")


def mean_ci(values, level: float = 0.95) -> dict:
    """n, mean, sample std (ddof 1) and the t-interval mean +- t_{(1+level)/2, n-1} std / sqrt(n).

    With one value the std and interval are None (no spread can be measured from one seed).
    """
    from scipy import stats

    xs = [float(v) for v in values]
    n = len(xs)
    if n == 0:
        return {"n": 0, "mean": None, "std": None, "ci95": None}
    mean = sum(xs) / n
    if n == 1:
        return {"n": 1, "mean": mean, "std": None, "ci95": None}
    std = math.sqrt(sum((x - mean) ** 2 for x in xs) / (n - 1))
    half = float(stats.t.ppf(0.5 + level / 2, n - 1)) * std / math.sqrt(n)
    return {"n": n, "mean": mean, "std": std, "ci95": [mean - half, mean + half]}


def sign_test(diffs) -> dict:
    """Exact two-sided binomial sign test of the differences (zeros dropped), p = 0.5."""
    from scipy import stats

    worse = sum(1 for d in diffs if d > 0)
    better = sum(1 for d in diffs if d < 0)
    p = float(stats.binomtest(worse, worse + better, 0.5).pvalue) if worse + better else None
    return {"n_worse": worse, "n_better": better, "p": p}


def load_runs(study_dir) -> dict:
    """{variant: {seed: history list}} of every run directory under DIR/runs with a history."""
    runs: dict = {}
    root = Path(study_dir) / "runs"
    for run_dir in sorted(root.iterdir()) if root.is_dir() else []:
        parsed = parse_run_name(run_dir.name)
        history_file = run_dir / "history.json"
        if parsed is None or not history_file.is_file():
            continue
        try:
            history = json.loads(history_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise ConfigError(f"{history_file}: unreadable history ({err})") from None
        if not isinstance(history, list):
            raise ConfigError(f"{history_file}: a history must be a JSON list of evaluation records")
        runs.setdefault(parsed[0], {})[parsed[1]] = history
    return runs


def summarise(runs: dict, *, steps: int | None = None, reference: str = REFERENCE, metric: str = METRIC) -> dict:
    """The summary (see the module docstring) of {variant: {seed: history}}.

    steps: the planned step count (None: the largest step any run reached).
    """
    finals_at = steps or max((h[-1]["step"] for seeds in runs.values() for h in seeds.values() if h), default=0)
    order = [v for v in VARIANTS if v in runs] + sorted(v for v in runs if v not in VARIANTS)
    finals = {v: {s: float(h[-1][metric]) for s, h in sorted(runs[v].items())
                  if h and h[-1]["step"] >= finals_at and metric in h[-1]} for v in order}
    variants = {}
    for v in order:
        entry = {"seeds": sorted(finals[v]), "final": [finals[v][s] for s in sorted(finals[v])],
                 "incomplete": sorted(s for s in runs[v] if s not in finals[v])}
        entry.update(mean_ci(entry["final"]))
        if reference in finals and v != reference:
            paired = sorted(set(finals[v]) & set(finals[reference]))
            diffs = [finals[v][s] - finals[reference][s] for s in paired]
            entry["paired"] = {"reference": reference, "seeds": paired, "diffs": diffs, **mean_ci(diffs),
                               "sign_test": sign_test(diffs)}
        entry["curve"] = curves(runs[v], metric)
        variants[v] = entry
    return {"metric": metric, "steps": finals_at, "reference": reference if reference in finals else None,
            "variants": variants}


def curves(seeds: dict, metric: str = METRIC) -> dict:
    """Per seed the (step, metric) curve, and at the steps every seed logged: mean, std, min, max."""
    per_seed = {str(s): {"step": [r["step"] for r in h if metric in r], metric: [r[metric] for r in h if metric in r]}
                for s, h in sorted(seeds.items())}
    common = sorted(set.intersection(*(set(c["step"]) for c in per_seed.values()))) if per_seed else []
    at = {s: dict(zip(c["step"], c[metric])) for s, c in per_seed.items()}
    band = {"step": common, "mean": [], "std": [], "min": [], "max": []}
    for step in common:
        vals = [at[s][step] for s in at]
        m = sum(vals) / len(vals)
        band["mean"].append(m)
        band["std"].append(math.sqrt(sum((x - m) ** 2 for x in vals) / (len(vals) - 1)) if len(vals) > 1 else 0.0)
        band["min"].append(min(vals))
        band["max"].append(max(vals))
    return {"seeds": per_seed, "band": band}


def summarise_study(study_dir) -> dict:
    """The summary of a study directory, from its runs' histories and study.json (planned steps)."""
    study = read_study(study_dir)
    steps = study["train"]["steps"] if study else None
    summary = summarise(load_runs(study_dir), steps=steps)
    summary["study"] = {k: study[k] for k in ("variants", "seeds", "domain", "model", "train")} if study else None
    return summary


def csv_rows(summary: dict) -> list[dict]:
    """One row per variant: the final values (';'-joined), their statistics, the paired difference."""
    rows = []
    for v, e in summary["variants"].items():
        p = e.get("paired") or {}
        ci, dci, sign = e.get("ci95") or [None, None], p.get("ci95") or [None, None], p.get("sign_test") or {}
        rows.append({"variant": v, "n": e["n"], "seeds": ";".join(map(str, e["seeds"])),
                     "final_bpb": ";".join(f"{x:.6f}" for x in e["final"]), "mean": e["mean"], "std": e["std"],
                     "ci95_low": ci[0], "ci95_high": ci[1], "diff_n": p.get("n"), "diff_mean": p.get("mean"),
                     "diff_ci95_low": dci[0], "diff_ci95_high": dci[1], "n_worse": sign.get("n_worse"),
                     "n_better": sign.get("n_better"), "sign_test_p": sign.get("p")})
    return rows


def write_summary(study_dir) -> dict:
    """Write DIR/summary.json and DIR/summary.csv; returns the summary."""
    study_dir = Path(study_dir)
    summary = summarise_study(study_dir)
    atomic_write_json(study_dir / "summary.json", summary, compact=True)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in csv_rows(summary):
        writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    atomic_write_bytes(study_dir / "summary.csv", buf.getvalue().encode("utf-8"))
    return summary


def format_table(summary: dict) -> str:
    """The summary as a plain-text table for the terminal."""
    lines = [f"final {summary['metric']} at step {summary['steps']} (mean, 95% CI over seeds; "
             f"paired difference to {summary['reference'] or 'no reference'}, + = worse)"]
    lines.append(f"{'variant':<14}{'n':>3}{'mean':>9}{'95% CI':>20}{'diff':>10}{'diff 95% CI':>22}{'worse/better':>14}{'sign p':>8}")
    for v, e in summary["variants"].items():
        ci = "" if not e.get("ci95") else f"[{e['ci95'][0]:.4f}, {e['ci95'][1]:.4f}]"
        mean = "" if e["mean"] is None else f"{e['mean']:.4f}"
        p = e.get("paired")
        if p and p["n"]:
            dci = "" if not p.get("ci95") else f"[{p['ci95'][0]:+.4f}, {p['ci95'][1]:+.4f}]"
            st = p["sign_test"]
            tail = (f"{p['mean']:>+10.4f}{dci:>22}{st['n_worse']:>7}/{st['n_better']:<6}"
                    f"{'' if st['p'] is None else format(st['p'], '.3f'):>8}")
        else:
            tail = ""
        lines.append(f"{v:<14}{e['n']:>3}{mean:>9}{ci:>20}{tail}")
    return "\n".join(lines)
