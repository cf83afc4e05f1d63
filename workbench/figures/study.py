"""Figures of a study (tauformer study): final bits per byte per variant, curves with seed bands,
paired differences to the domain memory.

Every function takes the study summary, a plain dict as written to DIR/summary.json::

    {"metric": "val_bpb", "steps": int, "reference": "tau-domain" | None,
     "variants": {name: {"seeds": [int], "final": [float], "mean", "std", "ci95": [lo, hi] | None,
                         "paired": {"seeds", "diffs", "mean", "ci95", "sign_test": {...}} (not for the reference),
                         "curve": {"seeds": {seed: {"step": [...], metric: [...]}},
                                   "band": {"step", "mean", "std", "min", "max"}}}}}
"""

from __future__ import annotations

from collections.abc import Mapping

import plotly.graph_objects as go

from workbench import theme
from workbench.figures._common import FigureInputError, described, fig_empty, new_figure

VARIANT_ORDER = ("dot", "tau-domain", "tau-chain", "tau-shuffled", "tau-random", "tau-identity")


def _variants(summary, fn: str) -> dict:
    if not isinstance(summary, Mapping) or not isinstance(summary.get("variants"), Mapping):
        raise FigureInputError(f"{fn}: a study summary must be a dict with a 'variants' dict")
    return dict(summary["variants"])


def variant_colors(names) -> dict[str, str]:
    """One colour per variant, fixed by its place in VARIANT_ORDER (colour-blind-safe palette)."""
    palette = theme.OKABE_ITO
    order = list(VARIANT_ORDER) + sorted(n for n in names if n not in VARIANT_ORDER)
    return {n: palette[order.index(n) % len(palette)] for n in names}


def _ci_text(ci) -> str:
    return "n/a (one seed)" if not ci else f"[{ci[0]:.4f}, {ci[1]:.4f}]"


_SEED_MARKER = dict(size=8, symbol="circle-open")  # one seed's value; the variant's mean is a diamond


def _error_bar(mean: float, ci, color: str) -> dict | None:
    """Plotly error-bar spec from ``mean`` to the ends of its 95% interval ``ci`` (None: no bar)."""
    if not ci:
        return None
    return dict(type="data", symmetric=False, array=[ci[1] - mean], arrayminus=[mean - ci[0]],
                color=color, thickness=2, width=10)


@described("Final validation bits per byte of every run (dots, one per seed) and each variant's mean with "
           "its 95% t-interval over seeds; lower is better.")
def fig_study_finals(summary: Mapping) -> go.Figure:
    variants = {v: e for v, e in _variants(summary, "fig_study_finals").items() if e.get("final")}
    if not variants:
        return fig_empty("No run of this study has finished yet.")
    colors = variant_colors(list(variants))
    fig = new_figure(showlegend=False, xaxis_title="variant",
                     yaxis_title=f"final validation bits per byte (step {summary.get('steps')})")
    for v, e in variants.items():
        fig.add_trace(go.Scatter(
            x=[v] * len(e["final"]), y=e["final"], mode="markers", name=f"{v} seeds",
            marker=_SEED_MARKER | dict(color=theme.with_alpha(colors[v], 0.55)),
            customdata=[[v, s] for s in e["seeds"]],
            hovertemplate="%{customdata[0]}, seed %{customdata[1]}: %{y:.4f} bits/byte<extra></extra>"))
        ci = e.get("ci95")
        error = _error_bar(e["mean"], ci, colors[v])
        fig.add_trace(go.Scatter(
            x=[v], y=[e["mean"]], mode="markers", name=v, error_y=error,
            marker=dict(color=colors[v], size=12, symbol="diamond"),
            hovertemplate=f"{v}: mean %{{y:.4f}} over {e['n']} seeds, 95% CI {_ci_text(ci)}<extra></extra>"))
    fig.update_xaxes(categoryorder="array", categoryarray=list(variants))
    return fig


@described("Validation bits per byte over training steps: each variant's mean over seeds (line) and the "
           "range from its best to its worst seed (band).")
def fig_study_curves(summary: Mapping) -> go.Figure:
    variants = {v: e for v, e in _variants(summary, "fig_study_curves").items()
                if e.get("curve", {}).get("band", {}).get("step")}
    if not variants:
        return fig_empty("No run of this study has logged an evaluation yet.")
    colors = variant_colors(list(variants))
    fig = new_figure(xaxis_title="step", yaxis_title="validation bits per byte", hovermode="x unified",
                     legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0))
    for v, e in variants.items():
        band = e["curve"]["band"]
        steps = list(band["step"])
        fig.add_trace(go.Scatter(x=steps + steps[::-1], y=list(band["max"]) + list(band["min"])[::-1],
                                 mode="lines", fill="toself", fillcolor=theme.with_alpha(colors[v], 0.18), line=dict(width=0),
                                 hoverinfo="skip", showlegend=False, legendgroup=v, name=f"{v} seed range"))
        fig.add_trace(go.Scatter(x=steps, y=band["mean"], mode="lines", name=v, legendgroup=v,
                                 line=dict(color=colors[v], width=2),
                                 hovertemplate=f"{v}: %{{y:.4f}}<extra></extra>"))
    return fig


@described("Paired by seed: the variant's final bits per byte minus the domain memory's, mean with its 95% "
           "t-interval and every seed's difference; right of zero = worse than the domain memory.")
def fig_study_differences(summary: Mapping) -> go.Figure:
    reference = summary.get("reference") if isinstance(summary, Mapping) else None
    variants = {v: e["paired"] for v, e in _variants(summary, "fig_study_differences").items()
                if e.get("paired") and e["paired"].get("n")}
    if not reference or not variants:
        return fig_empty("Paired differences need finished tau-domain runs and runs of another variant "
                         "with the same seeds.")
    colors = variant_colors(list(variants))
    names = list(variants)[::-1]  # first variant on top
    fig = new_figure(showlegend=False, xaxis_title=f"final bits per byte minus {reference}'s (same seed)",
                     yaxis_title="variant", height=max(260, 70 * len(names) + 120))
    fig.add_vline(x=0.0, line=dict(color=theme.NEUTRAL, dash="dash", width=1))
    for v in names:
        p = variants[v]
        st = p.get("sign_test") or {}
        pval = "n/a" if st.get("p") is None else f"{st['p']:.3g}"
        fig.add_trace(go.Scatter(
            x=p["diffs"], y=[v] * len(p["diffs"]), mode="markers",
            marker=_SEED_MARKER | dict(color=theme.with_alpha(colors[v], 0.55)),
            customdata=[[v, s] for s in p["seeds"]],
            hovertemplate="%{customdata[0]}, seed %{customdata[1]}: %{x:+.4f}<extra></extra>"))
        ci = p.get("ci95")
        error = _error_bar(p["mean"], ci, colors[v])
        fig.add_trace(go.Scatter(
            x=[p["mean"]], y=[v], mode="markers", error_x=error, marker=dict(color=colors[v], size=12, symbol="diamond"),
            hovertemplate=(f"{v} - {reference}: mean %{{x:+.4f}} over {p['n']} seeds, 95% CI "
                           f"{'n/a' if not ci else f'[{ci[0]:+.4f}, {ci[1]:+.4f}]'}; worse in {st.get('n_worse', 0)}, "
                           f"better in {st.get('n_better', 0)}, sign test p = {pval}<extra></extra>")))
    fig.update_yaxes(categoryorder="array", categoryarray=names)
    return fig


def table_study_differences(fig: go.Figure) -> dict[str, list]:
    """The CSV table of a :func:`fig_study_differences` figure: each seed's paired difference and
    each variant's mean with its 95% interval.

    Its traces are unnamed (the variant is the y category), so the generic CSV walk could not
    tell a seed's dot from a variant's mean; this table says which row is which.
    """
    value = " ".join(str(fig.layout.xaxis.title.text or "difference").split())
    table: dict[str, list] = {"variant": [], "row": [], "seed": [], value: [], "ci95 low": [], "ci95 high": []}

    def add(variant, row, seed, x, low=None, high=None):
        for column, cell in zip(table, (variant, row, seed, x, low, high)):
            table[column].append(cell)

    for trace in fig.data:
        if trace.customdata is not None:  # one marker per seed: customdata [variant, seed]
            for (variant, seed), x in zip(trace.customdata, trace.x):
                add(str(variant), "seed", int(seed), float(x))
        elif trace.x is not None and len(trace.x) == 1:  # the variant's mean and its interval
            mean, error = float(trace.x[0]), trace.error_x
            low = high = None
            if error is not None and error.array is not None:
                minus = error.arrayminus if error.arrayminus is not None else error.array
                low, high = mean - float(minus[0]), mean + float(error.array[0])
            add(str(trace.y[0]), "mean", None, mean, low, high)
    return table
