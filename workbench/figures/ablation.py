"""Head ablation: the loss change of silencing each head and each whole layer, per model."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import plotly.graph_objects as go

from workbench import theme

from ._common import FigureInputError, as_array, content_height, described, fig_empty, symmetric_range

TEXT_CELLS = 150  # cells per model up to which each cell prints its value
HEAD_GAP, MODEL_GAP = 0.35, 1.3  # gaps in head-column widths: heads | layer, and between models
PANEL_RIGHT = 0.9  # the colour bar sits to the right of this
PANEL_TOP = 0.9  # the models' names sit above this


def _model_parts(models: Mapping[str, Mapping], fn: str) -> dict[str, tuple[np.ndarray, np.ndarray, float]]:
    """{name: (head_delta [L, H], layer_delta [L], base_loss)} checked."""
    if not isinstance(models, Mapping):
        raise FigureInputError(f"{fn}: expected a dict model name -> {{head_delta, layer_delta, base_loss}}")
    parts = {}
    for name, m in models.items():
        try:
            heads, layers, base = m["head_delta"], m["layer_delta"], float(m["base_loss"])
        except (KeyError, TypeError, ValueError):
            raise FigureInputError(f"{fn}: {name!r} needs head_delta, layer_delta and a numeric base_loss") from None
        heads = as_array(heads, f"{name!r} head_delta", fn, ndim=2)
        layers = as_array(layers, f"{name!r} layer_delta", fn, shape=(heads.shape[0],))
        if heads.size:
            parts[str(name)] = (heads, layers, base)
    return parts


def _domains(widths: list[int]) -> list[tuple[list[float], list[float]]]:
    """x domains (heads panel, layer column) per model, in units of one head column; a model
    shown alone takes the width it would have beside a second one of its shape."""
    total = sum(H + HEAD_GAP + 1 for H in widths) + MODEL_GAP * (len(widths) - 1)
    if len(widths) == 1:
        total = 2 * total + MODEL_GAP
    unit, x, out = PANEL_RIGHT / total, 0.0, []
    for H in widths:
        heads = [x * unit, (x + H) * unit]
        layer = [(x + H + HEAD_GAP) * unit, (x + H + HEAD_GAP + 1) * unit]
        out.append((heads, layer))
        x += H + HEAD_GAP + 1 + MODEL_GAP
    return out


def _cell_hover(name: str, base: float, what: str) -> str:
    return (f"<b>{name}</b>: {what}<br>loss change %{{z:+.4f}} nats/token"
            f"<br>ablated loss %{{customdata[2]:.4f}} (unablated {base:.4f})<extra></extra>")


@described("The loss change (nats per token) when one head, or every head of a layer, is silenced: "
           "red cells are heads the model needs, blue ones it does better without; both models on one "
           "colour scale centred at 0. Click a cell to select that head.")
def fig_ablation_heatmaps(models: Mapping[str, Mapping], *, zmax: float | None = None,
                          highlight: tuple[int, int] | None = None, mode: str = "zero",
                          title: str | None = None) -> go.Figure:
    """Layer x head heatmaps of the loss change, one per model side by side, each with a column
    for its whole layers.

    Parameters
    ----------
    models : dict name -> {"head_delta": [L, H], "layer_delta": [L], "base_loss": float}
        Ablated minus unablated mean loss per head and per whole layer, in panel order.
    zmax : float, optional
        Top of the shared diverging scale, zmin = -zmax (default: the largest |change|).
    highlight : (layer, head), optional
        The selected head, outlined in every model that has it.
    mode : "zero" or "mean", named in the axis titles.
    title : str, optional

    Cells carry customdata [layer, head, ablated loss]; head is -1 in the whole-layer column.
    """
    fn = "fig_ablation_heatmaps"
    parts = _model_parts(models, fn)
    if not parts:
        return fig_empty("No ablation measured yet")
    peak = float(zmax) if zmax is not None and zmax > 0 else symmetric_range(
        *[a for heads, layers, _ in parts.values() for a in (heads, layers)])
    n_layer = max(h.shape[0] for h, _, _ in parts.values())
    traces, shapes, annotations = [], [], []
    layout: dict = dict(title=title, height=content_height(n_layer, 52, 150, minimum=300),
                        meta=dict(aspect=min(1.2, 0.25 + 0.09 * n_layer)),  # paper height / width
                        coloraxis=dict(colorscale=theme.DIVERGING, cmin=-peak, cmax=peak, colorbar=dict(
                            x=PANEL_RIGHT + 0.03, y=PANEL_TOP / 2, len=PANEL_TOP, yanchor="middle", title=dict(text=f"loss change<br>({mode}-ablated,<br>nats/token)"))))
    for i, ((name, (heads, layers, base)), (x_heads, x_layer)) in enumerate(
            zip(parts.items(), _domains([h.shape[1] for h, _, _ in parts.values()]))):
        L, H = heads.shape
        ids = {a: ("" if a == 1 else str(a)) for a in (2 * i + 1, 2 * i + 2)}
        sh, sl = ids[2 * i + 1], ids[2 * i + 2]  # axis suffixes of the heads panel and the layer column
        rows = np.arange(L)[:, None]
        head_data = np.stack(np.broadcast_arrays(rows, np.arange(H)[None], base + heads), axis=-1)  # [L, H, 3]
        layer_data = np.stack([np.arange(L), np.full(L, -1), base + layers], axis=-1)[:, None]  # [L, 1, 3]
        common = dict(type="heatmap", coloraxis="coloraxis", xgap=2, ygap=2, y=np.arange(L),
                      texttemplate="%{z:.2f}" if L * H <= TEXT_CELLS else None, textfont=dict(size=10))
        traces.append(dict(common, z=heads, x=np.arange(H), customdata=head_data, name=name, xaxis=f"x{sh}",
                           yaxis=f"y{sh}", hovertemplate=_cell_hover(
                               name, base, "layer %{customdata[0]}, head %{customdata[1]}")))
        traces.append(dict(common, z=layers[:, None], x=[0], customdata=layer_data, name=f"{name} layers",
                           xaxis=f"x{sl}", yaxis=f"y{sl}",
                           hovertemplate=_cell_hover(name, base, "every head of layer %{customdata[0]}")))
        y_axis = dict(domain=[0.0, PANEL_TOP], autorange="reversed", showgrid=False, zeroline=False, tickmode="array",
                      tickvals=list(range(L)), ticktext=[f"L{l}" for l in range(L)])
        layout[f"xaxis{sh}"] = dict(domain=x_heads, anchor=f"y{sh}", showgrid=False, zeroline=False, tickmode="array",
                                    tickvals=list(range(H)), ticktext=[f"H{h}" for h in range(H)],
                                    title=dict(text="head"))
        layout[f"yaxis{sh}"] = dict(y_axis, anchor=f"x{sh}", title=dict(text="layer" if i == 0 else ""))
        layout[f"xaxis{sl}"] = dict(domain=x_layer, anchor=f"y{sl}", showgrid=False, zeroline=False, tickmode="array",
                                    tickvals=[0], ticktext=["all"], title=dict(text="layer"))
        layout[f"yaxis{sl}"] = dict(y_axis, anchor=f"x{sl}", matches=f"y{sh}", showticklabels=False)
        annotations.append(dict(text=f"<b>{name}</b>", x=sum(x_heads) / 2, y=PANEL_TOP, xref="paper", yref="paper",
                                xanchor="center", yanchor="bottom", showarrow=False))
        if highlight is not None and 0 <= highlight[0] < L and 0 <= highlight[1] < H:
            layer, head = highlight
            shapes.append(dict(type="rect", xref=f"x{sh}", yref=f"y{sh}", x0=head - 0.5, x1=head + 0.5,
                               y0=layer - 0.5, y1=layer + 0.5, line=dict(color=theme.HIGHLIGHT, width=3)))
    return go.Figure(data=traces, layout=dict(layout, shapes=shapes, annotations=annotations))  # dicts: one validation
