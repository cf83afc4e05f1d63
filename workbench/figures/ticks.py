"""Tick labels for the figure modules: one rule for byte axes and one for counts.

Bytes always carry a unit with a decimal SI prefix and a space ("200 kB", "1 MB", "20 MB");
counts and ratios on a log axis are plain numbers up to 1000 and powers of ten beyond
("10<sup>4</sup>", "10<sup>16</sup>"), never SI letters (a "1B" or "1T" beside "10^16" reads as
bytes or as another scale).
"""

from __future__ import annotations

import math

import numpy as np

BYTE_PREFIXES = ("B", "kB", "MB", "GB", "TB", "PB")
MAX_LOG_TICKS = 8


def format_bytes(value: float) -> str:
    """'512 B', '1.5 kB', '20 MB': a byte count with a decimal SI prefix."""
    value = float(value)
    exp = 0 if value < 1000 else min(int(math.log10(value) // 3), len(BYTE_PREFIXES) - 1)
    return f"{value / 1000 ** exp:.3g} {BYTE_PREFIXES[exp]}"


def format_count(value: float, *, power: bool = False) -> str:
    """'1', '250', '1000', '10<sup>4</sup>', '2.5×10<sup>6</sup>': the count tick format
    (``power`` writes every value as a power of ten, as one axis does once any tick needs it)."""
    value = float(value)
    if value == 0 or (not power and 1e-3 <= abs(value) <= 1000):
        return f"{value:.4g}"
    exp = int(math.floor(math.log10(abs(value))))
    mantissa = value / 10 ** exp
    head = "" if abs(mantissa - 1) < 1e-9 else f"{mantissa:.3g}×"
    return f"{head}10<sup>{exp}</sup>"


def _nice_steps(lo: float, hi: float, log: bool) -> list[float]:
    """Tick values in [lo, hi]: 1-2-5 per decade on a log axis (decades only when that is too
    many; every few decades across a wide range), else plotly-like round linear steps."""
    if log:
        lo, hi = max(lo, 1e-300), max(hi, lo)
        d0, d1 = int(math.floor(math.log10(lo))), int(math.ceil(math.log10(hi)))
        for mantissas in ((1, 2, 5), (1,)):
            ticks = [m * 10.0 ** d for d in range(d0, d1 + 1) for m in mantissas if lo <= m * 10.0 ** d <= hi]
            if len(ticks) <= MAX_LOG_TICKS:
                return ticks or [lo]
        every = math.ceil((d1 - d0 + 1) / MAX_LOG_TICKS)
        return [10.0 ** d for d in range(d0, d1 + 1) if (d - d0) % every == 0 and lo <= 10.0 ** d <= hi * 1.0000001]
    span = (hi - lo) or abs(hi) or 1.0
    raw = span / 5
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    start = math.ceil(lo / step) * step
    return [start + i * step for i in range(int((hi - start) / step + 1e-9) + 1)]


def byte_ticks(values, *, log: bool) -> dict:
    """Axis settings labelling a byte axis over ``values`` with :func:`format_bytes`."""
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite) & ((finite > 0) if log else True)]
    if finite.size == 0:
        return {}
    lo, hi = float(finite.min()), float(finite.max())
    if log:  # plotly pads a log axis by a few percent: label the ticks it will show there too
        lo, hi = lo / 1.1, hi * 1.1
    ticks = _nice_steps(lo, hi, log)
    return dict(tickmode="array", tickvals=ticks, ticktext=[format_bytes(t) for t in ticks])


def count_ticks(values, *, log: bool = True) -> dict:
    """Axis settings labelling a count / ratio axis over ``values`` with :func:`format_count`."""
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite) & ((finite > 0) if log else True)]
    if finite.size == 0:
        return {}
    ticks = _nice_steps(float(finite.min()), float(finite.max()), log)
    text = [format_count(t) for t in ticks]
    if any("<sup>" in t for t in text) and any(t < 1 for t in ticks):  # 10^-4 beside 0.01: all powers
        text = [format_count(t, power=True) for t in ticks]
    return dict(tickmode="array", tickvals=ticks, ticktext=text)
