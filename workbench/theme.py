"""Colours, fonts and plotly templates shared by every workbench figure.

Importing this module registers two plotly templates:

- ``"tauformer_screen"``: for the app (sans-serif, light grid, roomy margins);
- ``"tauformer_paper"``: for exported paper figures (serif font installed on
  this machine, 8-10 pt text at 96 dpi, thin axes, tight margins).

Palettes are colour-blind safe: Okabe-Ito for categories, viridis for lambda
(and any other sequential quantity), a red-blue diverging scale for signed
differences (always centred at 0 by the figure functions).  The two model kinds
have fixed colours, :data:`MODEL_COLORS`, for the first run of each kind; every further run
gets its own hue (:func:`series_colors`), so runs are told apart by colour, not only kinds.
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
from dataclasses import dataclass

import plotly.graph_objects as go
import plotly.io as pio
from plotly.colors import sample_colorscale

SCREEN_TEMPLATE = "tauformer_screen"
PAPER_TEMPLATE = "tauformer_paper"

# Okabe & Ito (2008), "Color Universal Design"; yellow moved last (weak on white).
OKABE_ITO = (
    "#0072B2",  # blue
    "#D55E00",  # vermillion
    "#009E73",  # bluish green
    "#E69F00",  # orange
    "#56B4E9",  # sky blue
    "#CC79A7",  # reddish purple
    "#000000",  # black
    "#F0E442",  # yellow
)
# Marker symbols cycled when there are more categories than colours.
CATEGORY_SYMBOLS = ("circle", "square", "diamond", "triangle-up", "cross", "x")

SEQUENTIAL = "Viridis"  # lambda and other [0, 1) quantities
SEQUENTIAL_ALT = "Cividis"  # magnitudes (sparsity pattern, divergences)
DIVERGING = "RdBu_r"  # signed values; figures set cmin = -cmax so 0 is white

MODEL_KINDS = ("tau", "dot")
MODEL_COLORS = {"tau": OKABE_ITO[0], "dot": OKABE_ITO[1]}
MODEL_LABELS = {"tau": "Tauformer (tau)", "dot": "dot-product baseline"}
NEUTRAL = "#7f7f7f"
EDGE_COLOR = "rgba(120, 120, 120, 0.35)"
HIGHLIGHT = "#D55E00"  # the selected item: vermillion is absent from viridis
GOOD, BAD = OKABE_ITO[2], OKABE_ITO[1]  # loss went down / up
UI_ONLY = "ui-note"
"""Name of annotations and shapes (and ``meta`` of traces) that only make sense on
screen (notes, the current selection); paper export drops them."""

DPI = 96  # CSS pixels per inch; Chromium prints 96 px as one inch in PDFs


def pt_to_px(points: float) -> float:
    """Convert a font size in points to CSS pixels at :data:`DPI`."""
    return points * DPI / 72.0


@dataclass(frozen=True)
class PaperSize:
    """Pixel size of a paper figure at 96 dpi and its base font size in points."""

    width_px: int
    height_px: int
    font_pt: float

    @property
    def width_in(self) -> float:
        return self.width_px / DPI


PAPER_SIZES = {
    1: PaperSize(width_px=round(3.5 * DPI), height_px=round(2.6 * DPI), font_pt=8.0),
    2: PaperSize(width_px=round(7.16 * DPI), height_px=round(3.2 * DPI), font_pt=9.0),
}


def paper_size(columns: int) -> PaperSize:
    """Return the :class:`PaperSize` for a one- or two-column figure."""
    if columns not in PAPER_SIZES:
        raise ValueError(f"columns must be 1 or 2, got {columns!r}")
    return PAPER_SIZES[columns]


# --------------------------------------------------------------------------- fonts
SERIF_CANDIDATES = ("Liberation Serif", "DejaVu Serif", "Nimbus Roman", "Times New Roman")
SANS_CANDIDATES = ("Liberation Sans", "DejaVu Sans", "Nimbus Sans", "Arial", "Helvetica")
SCREEN_FONT = "Inter, system-ui, -apple-system, 'Segoe UI', 'DejaVu Sans', Arial, sans-serif"


@functools.lru_cache(maxsize=1)
def installed_font_families() -> frozenset[str]:
    """Font family names known to fontconfig (empty when ``fc-list`` is missing)."""
    fc_list = shutil.which("fc-list")
    if fc_list is None:
        return frozenset()
    try:
        out = subprocess.run(
            [fc_list, ":", "family"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return frozenset()
    names = set()
    for line in out.splitlines():
        names.update(part.strip() for part in line.split(",") if part.strip())
    return frozenset(names)


def font_stack(candidates: tuple[str, ...], generic: str) -> str:
    """CSS font-family list: installed candidates first, then the generic family.

    The exported PDF uses the first family Chromium can find, so naming an
    installed one first makes the output match what :func:`paper_font` reports.
    """
    installed = installed_font_families()
    present = [name for name in candidates if name in installed]
    chosen = present or list(candidates)
    quoted = [f"'{name}'" if " " in name else name for name in chosen]
    return ", ".join([*quoted, generic])


def paper_font(kind: str = "serif") -> str:
    """The first installed paper font family of ``kind`` ("serif" or "sans")."""
    candidates = SERIF_CANDIDATES if kind == "serif" else SANS_CANDIDATES
    installed = installed_font_families()
    return next((name for name in candidates if name in installed), kind)


# -------------------------------------------------------------------- model kinds
def model_kind(name: str) -> str | None:
    """Guess the model kind ("tau" or "dot") of a run or series name, else None.

    A name whose word parts (split at non-alphanumerics) include exactly one of
    the kinds gets that kind: ``"tau-30m"`` -> tau, ``"dot_baseline"`` -> dot.
    """
    parts = set(re.split(r"[^a-z0-9]+", str(name).lower()))
    found = [kind for kind in MODEL_KINDS if kind in parts]
    if len(found) == 1:
        return found[0]
    lowered = str(name).lower()
    starts = [kind for kind in MODEL_KINDS if lowered.startswith(kind)]
    return starts[0] if len(starts) == 1 else None


def _shade(hex_color: str, amount: float) -> str:
    """Mix a #rrggbb colour towards white (amount > 0) or black (amount < 0)."""
    rgb = [int(hex_color[i : i + 2], 16) for i in (1, 3, 5)]
    target = 255 if amount > 0 else 0
    mixed = [round(c + (target - c) * abs(amount)) for c in rgb]
    return "#" + "".join(f"{c:02x}" for c in mixed)


def series_colors(names: list[str], kinds: dict[str, str | None] | None = None) -> dict[str, str]:
    """A distinct colour per series (run): the kind colour for the first run of each kind, then
    the other Okabe-Ito hues in order.

    Runs are told apart by hue, not by a shade of their kind's colour: ``tau`` and
    ``tau-reference`` side by side must never look alike. Past the palette, hues repeat in
    lighter / darker shades. ``kinds`` overrides the kind guessed from a name by :func:`model_kind`.
    """
    kinds = kinds or {}
    shades = (0.0, 0.35, -0.35, 0.55, -0.55)
    others = [c for c in OKABE_ITO if c not in MODEL_COLORS.values()]
    colors: dict[str, str] = {}
    first_of_kind: set[str] = set()
    other_index = 0
    for name in names:
        kind = kinds.get(name) or model_kind(name)
        if kind in MODEL_COLORS and kind not in first_of_kind:
            first_of_kind.add(kind)
            colors[name] = MODEL_COLORS[kind]
            continue
        base = others[other_index % len(others)]
        shade = shades[(other_index // len(others)) % len(shades)]
        colors[name] = _shade(base, shade) if shade else base
        other_index += 1
    return colors


def category_style(index: int) -> tuple[str, str]:
    """(colour, marker symbol) of the ``index``-th category; symbols change every 8."""
    color = OKABE_ITO[index % len(OKABE_ITO)]
    symbol = CATEGORY_SYMBOLS[(index // len(OKABE_ITO)) % len(CATEGORY_SYMBOLS)]
    return color, symbol


def with_alpha(color: str, alpha: float) -> str:
    """``rgba(...)`` form of a ``#rrggbb`` or ``rgb(...)`` colour with opacity ``alpha``."""
    if color.startswith("#"):
        r, g, b = (int(color[i : i + 2], 16) for i in (1, 3, 5))
    else:
        r, g, b = (int(float(v)) for v in re.findall(r"[\d.]+", color)[:3])
    return f"rgba({r}, {g}, {b}, {alpha})"


def ordinal_colors(n: int, scale: str = SEQUENTIAL) -> list[str]:
    """``n`` colours along a sequential scale (for ordered series such as layers).

    The brightest 15 % of the scale is skipped: pale yellow lines vanish on white.
    """
    if n <= 1:
        return sample_colorscale(scale, [0.0])
    return sample_colorscale(scale, [0.85 * i / (n - 1) for i in range(n)])


# ---------------------------------------------------------------------- templates
def _axis(**extra) -> dict:
    return dict(automargin=True, zeroline=False, ticks="outside", **extra)


def build_screen_template() -> go.layout.Template:
    """The app's template: plotly_white with Okabe-Ito colours and a sans font."""
    template = go.layout.Template(pio.templates["plotly_white"])
    template.layout.update(
        font=dict(family=SCREEN_FONT, size=13, color="#222222"),
        colorway=list(OKABE_ITO),
        colorscale=dict(sequential=SEQUENTIAL, diverging=DIVERGING),
        xaxis=_axis(gridcolor="#eeeeee", linecolor="#888888", showline=True),
        yaxis=_axis(gridcolor="#eeeeee", linecolor="#888888", showline=True),
        margin=dict(l=60, r=20, t=50, b=50),
        hoverlabel=dict(font=dict(family=SCREEN_FONT, size=12)),
        legend=dict(bgcolor="rgba(255,255,255,0.7)"),
        title=dict(x=0.02, xanchor="left", font=dict(size=15)),
    )
    return template


@functools.lru_cache(maxsize=8)  # plotly copies a template where it is used, so one can be shared
def build_paper_template(columns: int = 1, font: str = "serif") -> go.layout.Template:
    """A print template: installed serif (or sans) font at 8-10 pt, black thin axes.

    Parameters
    ----------
    columns : 1 or 2
        Sets the base font size (8 pt one-column, 9 pt two-column).
    font : "serif" or "sans"
    """
    size = paper_size(columns)
    family = font_stack(SERIF_CANDIDATES if font == "serif" else SANS_CANDIDATES, font)
    base, small = pt_to_px(size.font_pt), pt_to_px(size.font_pt - 0.5)
    axis = _axis(
        showline=True, linecolor="black", linewidth=0.75, mirror=False, ticklen=3,
        tickwidth=0.75, tickcolor="black", showgrid=True, gridcolor="#e6e6e6",
        gridwidth=0.5, tickfont=dict(size=small), title=dict(font=dict(size=base), standoff=4),
    )
    template = go.layout.Template()
    template.layout.update(
        font=dict(family=family, size=base, color="black"),
        colorway=list(OKABE_ITO),
        colorscale=dict(sequential=SEQUENTIAL, diverging=DIVERGING),
        paper_bgcolor="white",
        plot_bgcolor="white",
        xaxis=axis,
        yaxis=axis,
        margin=dict(l=8, r=8, t=24, b=8, pad=0),
        legend=dict(font=dict(size=small), bgcolor="rgba(255,255,255,0.8)", borderwidth=0,
                    itemwidth=30, tracegroupgap=2, orientation="h", x=0.0, xanchor="left",
                    y=1.02, yanchor="bottom"),
        annotationdefaults=dict(font=dict(size=small)),
        coloraxis=dict(colorbar=dict(thickness=8, outlinewidth=0, tickfont=dict(size=small),
                                     title=dict(font=dict(size=small)))),
        hovermode=False,
    )
    thin_bar = dict(thickness=8, outlinewidth=0, tickfont=dict(size=small),
                    title=dict(font=dict(size=small)))
    template.data.heatmap = [go.Heatmap(colorbar=thin_bar)]
    template.data.scatter = [go.Scatter(line=dict(width=1.25), marker=dict(size=4))]
    template.data.bar = [go.Bar(marker=dict(line=dict(width=0)))]
    return template


def register_templates() -> None:
    """Register (or refresh) both templates in ``plotly.io.templates``."""
    pio.templates[SCREEN_TEMPLATE] = build_screen_template()
    pio.templates[PAPER_TEMPLATE] = build_paper_template(columns=1)


register_templates()
