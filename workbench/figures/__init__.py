"""Pure figure functions: numpy arrays, lists and dicts in, ``plotly.graph_objects.Figure`` out.

No torch, no Dash, no I/O. Each ``fig_*`` function has a one-sentence description in
:data:`DESCRIPTIONS` (also stamped on every figure as ``layout.meta["description"]``);
points that a click callback must identify carry ``customdata``.

Modules, one per subject: :mod:`.domain` (domain memory items and feature graph), :mod:`.spectrum`
(its Laplacian), :mod:`.structure` (its degrees and hubs), :mod:`.lambdas` and :mod:`.attention`
(lambda and attention of a checkpoint),
:mod:`.tokens` (the prompt shaded by weights), :mod:`.whatif` (a change and its effect),
:mod:`.training` and :mod:`.training_dynamics` (histories), :mod:`.memory` (cache and latency measurements), :mod:`.study`;
:mod:`.ticks` holds the one tick-label rule for bytes and counts.
"""

from workbench.figures._common import (
    DESCRIPTIONS,
    GL_THRESHOLD,
    MAX_HEATMAP_SIDE,
    FigureInputError,
    fig_empty,
)
from workbench.figures.domain import fig_feature_graph, fig_item_map, item_selection_shapes
from workbench.figures.attention import (
    fig_attention_difference,
    fig_attention_grid,
    fig_attention_pair,
    fig_entropy_bars,
    fig_js_divergence,
    fig_sorted_attention,
)
from workbench.figures.lambdas import (
    fig_lambda_distributions,
    fig_lambda_resolution,
    fig_lambda_strip,
    fig_spectral_decomposition,
)
from workbench.figures.memory import fig_decode_latency, fig_kv_cache
from workbench.figures.spectrum import fig_eigen_density, fig_sparsity, fig_spectrum
from workbench.figures.structure import fig_degree_distribution
from workbench.figures.training import (
    fig_entropy_over_steps,
    fig_lambda_over_steps,
    fig_loss_curves,
    fig_tokens_per_second,
)
from workbench.figures.training_dynamics import fig_lambda_runs, fig_tau_energy
from workbench.figures.whatif import fig_whatif


def describe(name: str) -> str:
    """The one-sentence description of figure function ``name`` ('' if unknown)."""
    return DESCRIPTIONS.get(name, "")


__all__ = [
    "DESCRIPTIONS", "GL_THRESHOLD", "MAX_HEATMAP_SIDE", "FigureInputError", "describe",
    "fig_attention_difference", "fig_attention_grid", "fig_attention_pair", "fig_decode_latency",
    "fig_eigen_density", "fig_empty", "fig_entropy_bars", "fig_entropy_over_steps",
    "fig_degree_distribution", "fig_feature_graph", "fig_item_map", "fig_js_divergence", "fig_kv_cache",
    "fig_lambda_distributions", "fig_lambda_over_steps", "fig_lambda_resolution", "fig_lambda_runs",
    "fig_lambda_strip", "fig_loss_curves", "fig_sorted_attention", "fig_sparsity",
    "fig_spectral_decomposition", "fig_spectrum", "fig_tau_energy", "fig_tokens_per_second", "fig_whatif",
    "item_selection_shapes",
]
