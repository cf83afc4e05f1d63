"""Trace properties as numpy arrays and numpy arrays as CSV cells, for :mod:`workbench.export_csv`.

Plotly keeps a figure's arrays as numpy arrays, tuples, lists, or (in a figure read back from
JSON) base64 typed arrays; cells are written in the shortest form that reads back to the same
value (float32 values as float32), missing values as empty cells.
"""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Mapping

import numpy as np

_COLOUR = re.compile(r"^(#[0-9a-fA-F]{3,8}|rgba?\(.*\)|hsla?\(.*\))$")


def array(value) -> np.ndarray:
    """A trace property as a numpy array (lists, tuples, numpy and plotly's base64 typed arrays)."""
    if value is None or isinstance(value, (str, bytes)):
        return np.asarray([], dtype=object)
    if isinstance(value, Mapping) and "bdata" in value:
        raw = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value.get("dtype", "f8")))
        shape = value.get("shape")
        if shape:
            raw = raw.reshape([int(s) for s in str(shape).split(",")])
        return raw
    if isinstance(value, np.ndarray):
        return value
    try:
        arr = np.asarray(value)
    except ValueError:  # ragged
        arr = np.asarray(list(value), dtype=object)
    if arr.dtype.kind in "US" and has_numbers(value):  # mixed numbers and labels stay apart
        arr = np.asarray(value, dtype=object)
    return arr


def has_numbers(value) -> bool:
    flat = value
    while isinstance(flat, (list, tuple)) and flat and isinstance(flat[0], (list, tuple)):
        flat = flat[0]
    return isinstance(flat, (list, tuple)) and any(isinstance(v, (int, float, np.number)) for v in flat)


def missing(values: np.ndarray) -> np.ndarray:
    if values.dtype.kind == "f":
        return np.isnan(values)
    if values.dtype.kind == "O":
        return np.array([v is None or (isinstance(v, float) and math.isnan(v)) for v in values], dtype=bool)
    return np.zeros(values.shape, dtype=bool)


def shown(x, y, n: int) -> np.ndarray:
    keep = np.ones(n, dtype=bool)
    for values in (x, y):
        if values is not None and values.size == n:
            keep &= ~missing(values)
    return keep


def all_colours(values: np.ndarray) -> bool:
    return values.dtype.kind in "USO" and all(isinstance(v, str) and _COLOUR.match(v.strip()) for v in values)


def cells(values: np.ndarray) -> list[str]:
    """CSV cells: shortest round-trip numbers, '' for missing values."""
    kind = values.dtype.kind
    if kind == "f":
        out = values.astype(str)
        out[np.isnan(values)] = ""
        return out.tolist()
    if kind in "iub":
        return values.astype(str).tolist()
    if kind in "US":
        return values.astype(str).tolist()
    return [cell(v) for v in values]


def cell(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, (float, np.floating)):
        return str(np.float64(value)) if isinstance(value, float) else str(value)
    if isinstance(value, (list, tuple, np.ndarray)):
        return " ".join(cell(v) for v in value)
    return str(value)
