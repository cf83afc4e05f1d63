"""Training dynamics beyond the loss: tau and the Rayleigh energy over steps, a wall-clock axis,
and the history scalars of every run as one CSV.

New runs log the mean Rayleigh energy of q and k per layer and head at each evaluation
(``energy_q`` / ``energy_k`` in history.json, see ``tauformer.train.evaluate``). For runs whose
history predates that (the bundled demo), the energy is computed here from each saved
checkpoint on a small fixed validation sample -- fewer points, on other text than the run's
own evaluations, and the figure says so. Those values are cached per checkpoint ref.
"""

from __future__ import annotations

import csv
import io
import math

import numpy as np
import torch

from tauformer.checkpoint import load_checkpoint
from tauformer.probe import head_energies

from .cache import content_key

ENERGY_SAMPLE = (4, 256)  # validation sequences x tokens per checkpoint (fixed: seed 0)
FROM_HISTORY, FROM_CHECKPOINTS = "history", "checkpoints"
STEP_AXIS, TIME_AXIS = "step", "time"
# scalar fields of an evaluation record, in CSV column order (others that are numbers follow)
SCALARS = ("step", "elapsed_s", "tokens_seen", "train_loss", "val_loss", "val_bpb", "val_bytes_per_token", "lr",
           "tokens_per_s", "flops_per_s", "mfu")
PER_LAYER = ("tau", "energy_q", "energy_k", "lambda_q", "lambda_k", "entropy")  # per-layer CSV columns


def checkpoint_energy(workspace, run: str, step: int | None) -> dict:
    """{"energy_q": [L, H], "energy_k": [L, H]} mean Rayleigh energies of the checkpoint of ``run``
    nearest ``step`` on the fixed validation sample (ENERGY_SAMPLE), cached under its ref.

    The sample is the same for every checkpoint of a run (seed 0), so its points are comparable."""
    ref = workspace.runs.ref(run, step)
    n, T = ENERGY_SAMPLE
    T = min(T, workspace.runs.info(run).model.block_size)
    key = content_key("energy", ref, n, T)

    def compute():
        x, _ = workspace.probes.validation_batches(run, 1, n, block_size=T)[0]
        # a private copy of the weights, not the models cache: sweeping every checkpoint of every run
        # would evict the models the other pages keep, and a private model needs no lock
        model, _ = load_checkpoint(ref.directory, history=False)
        got = head_energies(model, [torch.as_tensor(x)])
        return {name: np.asarray(got[name], dtype=float) for name in ("energy_q", "energy_k")}

    return workspace.cache.get_or_compute("results", key, compute)


def warm_energies(workspace) -> None:
    """Compute the checkpoint energies of every tau run whose history lacks them (a warm-up)."""
    for run, h in workspace.runs.histories().items():
        energy_over_steps(workspace, run, h)


def energy_over_steps(workspace, run: str, h: dict) -> dict | None:
    """The mean energy of a tau run over training: {"step": [E], "elapsed_s": [E], "energy_q": [E, L, H],
    "energy_k": [E, L, H], "source": "history" | "checkpoints"}; None for a dot run.

    From the history's own evaluations when it logged them, else from every saved checkpoint
    (``checkpoint_energy``); ``h`` is the run's history arrays (``workspace.runs.histories()``).
    """
    if h.get("kind") != "tau":
        return None
    if "energy_q" in h and np.isfinite(h["energy_q"]).any():
        ok = np.isfinite(h["energy_q"]).reshape(len(h["step"]), -1).all(1)
        return {"step": h["step"][ok], "elapsed_s": h["elapsed_s"][ok], "energy_q": h["energy_q"][ok],
                "energy_k": h["energy_k"][ok], "source": FROM_HISTORY}
    steps = list(workspace.runs.info(run).steps)
    values = [checkpoint_energy(workspace, run, s) for s in steps]
    steps_arr = np.asarray(steps, dtype=float)
    return {"step": steps_arr, "elapsed_s": elapsed_at(h, steps_arr),
            "energy_q": np.stack([v["energy_q"] for v in values]),
            "energy_k": np.stack([v["energy_k"] for v in values]), "source": FROM_CHECKPOINTS}


def elapsed_at(h: dict, steps: np.ndarray) -> np.ndarray:
    """Wall-clock seconds at ``steps``, interpolated in the history's elapsed_s (NaN where unknown)."""
    t = np.asarray(h.get("elapsed_s", np.full(len(h["step"]), np.nan)), dtype=float)
    ok = np.isfinite(t)
    if ok.sum() == 0:
        return np.full(np.shape(steps), np.nan)
    return np.interp(steps, h["step"][ok], t[ok])


def has_elapsed(h: dict) -> bool:
    """Whether every evaluation of the history records its wall-clock time."""
    t = np.asarray(h.get("elapsed_s", []), dtype=float)
    return t.size > 0 and bool(np.isfinite(t).all())


def time_axis(histories: dict, wanted: str | None) -> tuple[str, str]:
    """(axis, note) for the shown runs: the wall clock when asked for and every run recorded it,
    else steps, with a note naming the runs that did not."""
    if wanted != TIME_AXIS:
        return STEP_AXIS, ""
    missing = [name for name, h in histories.items() if not has_elapsed(h)]
    if not histories:
        return STEP_AXIS, ""
    if missing:
        return STEP_AXIS, (f"Shown in steps: {', '.join(missing)} recorded no elapsed time, so the runs "
                           "cannot share a wall-clock axis.")
    return TIME_AXIS, "Wall-clock time since each run started (elapsed_s in its history)."


def tau_runs(histories: dict) -> dict:
    """The histories of the tau runs that logged lambda statistics (run name -> history arrays)."""
    return {name: h for name, h in histories.items() if h.get("kind") == "tau" and "lambda_q_mean" in h}


# ------------------------------------------------------------------ scalars as CSV
def scalar_rows(workspace, runs: list[str]) -> tuple[list[str], list[dict]]:
    """(columns, rows): one row per evaluation of each run -- its scalars (SCALARS first, then any
    other numeric field) and, per layer, tau, the mean over heads of energy_q / energy_k and of the
    mean lambda_q / lambda_k, and the mean attention entropy. Reads the runs' history.json only."""
    rows, columns = [], ["run", "attention"]
    for run in runs:
        kind = workspace.runs.info(run).attention
        for record in workspace.runs.history(run):
            row = {"run": run, "attention": kind}
            for key, value in record.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    row[key] = value
            for key in PER_LAYER:
                for layer, value in enumerate(_per_layer(record.get(key))):
                    row[f"{key}_layer{layer}"] = value
            rows.append(row)
    seen = set(columns)
    ordered = [k for k in SCALARS if any(k in r for r in rows)]
    rest = sorted({k for r in rows for k in r} - set(columns) - set(ordered), key=_column_order)
    for key in ordered + rest:
        if key not in seen:
            columns.append(key)
            seen.add(key)
    return columns, rows


def _per_layer(value) -> list[float]:
    """One number per layer from a record field: a list of floats (tau), a [layer][head] list
    (energies, entropy: mean over heads) or a {"mean": [layer][head]} dict (lambda statistics)."""
    if isinstance(value, dict):
        value = value.get("mean")
    if not isinstance(value, list):
        return []
    out = []
    for item in value:
        if isinstance(item, list):
            nums = [float(v) for v in item if isinstance(v, (int, float))]
            out.append(sum(nums) / len(nums) if nums else math.nan)
        elif isinstance(item, (int, float)):
            out.append(float(item))
    return out


def _column_order(key: str):
    """Per-layer columns grouped by quantity in PER_LAYER order, then layer number; others by name."""
    for i, name in enumerate(PER_LAYER):
        prefix = f"{name}_layer"
        if key.startswith(prefix) and key[len(prefix):].isdigit():
            return (1, i, int(key[len(prefix):]), "")
    return (0, 0, 0, key)


def scalars_csv(workspace, runs: list[str]) -> str:
    """The history scalars of ``runs`` as CSV text (see scalar_rows); empty cells where a run did
    not record a field."""
    columns, rows = scalar_rows(workspace, runs)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, restval="", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (repr(v) if isinstance(v, float) else v) for k, v in row.items()})
    return out.getvalue()
