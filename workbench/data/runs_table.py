"""The Runs page's numbers: one plain row per checkpoint of every loaded run, and settings diffs.

Everything comes from the checkpoints' JSON (``config.json`` through ``read_meta``, the run
histories) -- no weights are read. The parameter count and the KV-cache bytes per token are
computed from the model config; tests check both against a built model and its real cache.
Rows are cached in the workspace cache's "results" part under every checkpoint's ref and the
stamps of the history files, so a checkpoint rewritten in place gives new rows.
"""

from __future__ import annotations

import csv
import io
import math

import numpy as np

from tauformer.checkpoint import CONFIG_FILE, HISTORY_FILE, read_meta
from tauformer.config import estimated_parameters
from tauformer.errors import TauformerError
from tauformer.safefile import read_json

from .cache import content_key
from .identity import file_stamp

CACHE_DTYPE_BYTES = 4  # the app loads every model in float32, so its KV caches are float32
TAU_ONLY = ("tau_mode", "tau", "tau_percentile", "calibration_momentum", "temperature", "learn_temperature",
            "laplacian_layout", "tau_kernel")
CSV_COLUMNS = ("id", "run", "step", "latest", "attention", "tau_mode", "tau", "temperature", "learn_temperature",
               "temperature_at_step", "n_layer", "n_head", "n_kv_head", "n_embd", "head_dim", "block_size",
               "parameters", "tokenizer", "vocab_size", "val_bpb", "val_loss", "tokens_per_s", "kv_bytes_per_token",
               "laplacian", "domain_name", "domain_fingerprint", "train_steps", "lr", "batch_size", "seed", "problem")
SHORT_FINGERPRINT = 12


def row_id(run: str, step: int) -> str:
    """The table's id of one checkpoint: ``run@step``."""
    return f"{run}@{int(step)}"


def parse_row_id(text) -> tuple[str, int] | None:
    """(run, step) of a row id, None when it is not one."""
    if not isinstance(text, str) or "@" not in text:
        return None
    run, _, step = text.rpartition("@")
    return (run, int(step)) if run and step.isdigit() else None


def parameter_count(cfg) -> int:
    """Trainable parameters of the model ``cfg`` describes: embeddings, head, per layer the
    projections and MLP, and a tau model's learnable per-head temperatures."""
    learned_t = cfg.attention == "tau" and cfg.learn_temperature
    return estimated_parameters(cfg) + (cfg.n_layer * cfg.n_head if learned_t else 0)


def kv_bytes_per_token(cfg, dtype_bytes: int = CACHE_DTYPE_BYTES) -> int:
    """Bytes a KV cache holds per position, all layers (batch 1): dot keeps K and V, 2 x D numbers
    per kv head; tau keeps V and one float32 lambda_k, D numbers plus 4 bytes (tauformer.cache)."""
    per_head = 2 * cfg.head_dim * dtype_bytes if cfg.attention == "dot" else cfg.head_dim * dtype_bytes + 4
    return cfg.n_layer * cfg.n_kv_head * per_head


def checkpoint_rows(workspace) -> list[dict]:
    """One row (a plain dict, the CSV_COLUMNS and ``settings``) per checkpoint of every loaded
    run, runs in load order and steps ascending; cached by every checkpoint's ref."""
    return [dict(row) for row in _table(workspace)["rows"]]


def settings_of(workspace, ident: str) -> dict | None:
    """The flat settings (``{"model.n_layer": 4, ...}``) of the row ``ident``; None if unknown."""
    for row in _table(workspace)["rows"]:
        if row["id"] == ident:
            return row["settings"]
    return None


def _table(workspace) -> dict:
    runs = workspace.runs
    parts = []
    for name in runs.names():
        info = runs.info(name)
        for step in info.steps:
            parts.append((name, step, runs.ref(name, step)))
    key = content_key("runs-table", parts, [file_stamp(runs.checkpoint_path(n) / HISTORY_FILE) for n in runs.names()])

    def compute():
        histories = runs.histories()
        rows = []
        for name in runs.names():
            info = runs.info(name)
            for step in info.steps:
                rows.append(_row(name, step, info.checkpoints[step], step == info.steps[-1], histories.get(name)))
        return {"rows": rows}

    return workspace.cache.get_or_compute("results", key, compute)


def _row(run: str, step: int, path, latest: bool, history: dict | None) -> dict:
    row = {column: None for column in CSV_COLUMNS}
    row.update(id=row_id(run, step), run=run, step=int(step), latest=latest, settings={})
    try:
        meta = read_meta(path, history=False)
        raw = read_json(path / CONFIG_FILE, root=path.parent, what="config")
    except (TauformerError, OSError) as err:
        row["problem"] = str(err)
        return row
    cfg, train = meta.model_config, meta.train_config
    tau = cfg.attention == "tau"
    tokenizer = _tokenizer(raw, cfg.vocab_size)
    domain = meta.domain if isinstance(meta.domain, dict) else {}
    laplacian = (domain.get("laplacian") or "chain") if tau else None
    fingerprint = domain.get("fingerprint") if isinstance(domain.get("fingerprint"), str) else None
    row.update(
        attention=cfg.attention, tau_mode=cfg.tau_mode if tau else None, tau=cfg.tau if tau else None,
        temperature=cfg.temperature if tau else None, learn_temperature=cfg.learn_temperature if tau else None,
        n_layer=cfg.n_layer, n_head=cfg.n_head, n_kv_head=cfg.n_kv_head, n_embd=cfg.n_embd, head_dim=cfg.head_dim,
        block_size=cfg.block_size, parameters=parameter_count(cfg), tokenizer=tokenizer["kind"],
        vocab_size=tokenizer["vocab_size"], kv_bytes_per_token=kv_bytes_per_token(cfg), laplacian=laplacian,
        domain_name=domain.get("name") if laplacian == "domain" else None,
        domain_fingerprint=fingerprint[:SHORT_FINGERPRINT] if fingerprint else None,
        train_steps=train.steps if train else None, lr=train.lr if train else None,
        batch_size=train.batch_size if train else None, seed=train.seed if train else None,
    )
    row.update(_measured(history, step))
    row["settings"] = _settings(meta, raw, tokenizer, fingerprint)
    return row


def _tokenizer(raw: dict, vocab_size: int) -> dict:
    """{"kind", "vocab_size", "sha256"} from the config's tokenizer record (absent: byte tokens)."""
    record = raw.get("tokenizer", "bytes") if isinstance(raw, dict) else "bytes"
    if isinstance(record, dict):
        vocab = record.get("vocab_size")
        return {"kind": str(record.get("kind", "bytes")), "sha256": record.get("sha256"),
                "vocab_size": vocab if isinstance(vocab, int) and not isinstance(vocab, bool) else vocab_size}
    return {"kind": str(record or "bytes"), "vocab_size": vocab_size, "sha256": None}


def _measured(history: dict | None, step: int) -> dict:
    """Validation bits per byte and loss at the last evaluation up to ``step``, the median tokens/s
    of the evaluations up to it, and the mean learned temperature there (tau runs that log it)."""
    out = {"val_bpb": None, "val_loss": None, "tokens_per_s": None, "temperature_at_step": None}
    if not history or len(history.get("step", ())) == 0:
        return out
    upto = np.asarray(history["step"]) <= step  # [S]
    for key in ("val_bpb", "val_loss"):
        values = np.asarray(history.get(key, []), float)
        ok = np.flatnonzero(upto & np.isfinite(values)) if values.size == upto.size else []
        out[key] = float(values[ok[-1]]) if len(ok) else None
    speed = np.asarray(history.get("tokens_per_s", []), float)
    if speed.size == upto.size and np.isfinite(speed[upto]).any():
        out["tokens_per_s"] = float(np.nanmedian(speed[upto]))
    if "temperature" in history and upto.any():
        last = np.flatnonzero(upto)[-1]
        temps = np.asarray(history["temperature"][last], float)  # [L, H]
        out["temperature_at_step"] = float(np.mean(temps)) if np.isfinite(temps).all() else None
    return out


def _settings(meta, raw: dict, tokenizer: dict, fingerprint: str | None) -> dict:
    """Every setting of a checkpoint as a flat dict; a dot model's tau-only settings are None."""
    cfg = meta.model_config
    out = {f"model.{k}": (None if cfg.attention != "tau" and k in TAU_ONLY else v) for k, v in cfg.to_dict().items()}
    if meta.train_config is not None:
        out.update({f"train.{k}": v for k, v in meta.train_config.to_dict().items()})
    out.update({"tokenizer.kind": tokenizer["kind"], "tokenizer.vocab_size": tokenizer["vocab_size"],
                "tokenizer.sha256": (tokenizer["sha256"] or "")[:SHORT_FINGERPRINT] or None,
                "weights_dtype": raw.get("weights_dtype"), "tauformer_version": raw.get("tauformer_version")})
    domain = meta.domain if isinstance(meta.domain, dict) else {}
    if cfg.attention == "tau":
        out["domain.laplacian"] = domain.get("laplacian") or "chain"
        out["domain.name"] = domain.get("name")
        out["domain.fingerprint"] = fingerprint[:SHORT_FINGERPRINT] if fingerprint else None
        params = domain.get("params") if isinstance(domain.get("params"), dict) else {}
        out.update({f"domain.params.{k}": v for k, v in sorted(params.items())})
    return out


def settings_diff(a: dict, b: dict) -> list[dict]:
    """The settings whose values differ between ``a`` and ``b``: [{"setting", "a", "b"}], in
    ``a``'s order then ``b``'s extra keys; a key missing on one side counts as None."""
    keys = list(a) + [k for k in b if k not in a]
    return [{"setting": k, "a": a.get(k), "b": b.get(k)} for k in keys if not _same(a.get(k), b.get(k))]


def _same(x, y) -> bool:
    """Equal values (1 and 1.0 alike, NaN equal to NaN), but a bool never equals a number."""
    if isinstance(x, bool) != isinstance(y, bool):
        return False
    if isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y):
        return True
    return x == y


def rows_csv(rows: list[dict]) -> str:
    """The rows as CSV text (CSV_COLUMNS; numbers unrounded, empty cells for None)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        writer.writerow(["" if row.get(c) is None else row.get(c) for c in CSV_COLUMNS])
    return out.getvalue()
