"""Export of figures: PNG / SVG / PDF through kaleido and a headless Chromium, and the
figure's numbers as CSV (:mod:`workbench.export_csv`) or the figure as a standalone
interactive HTML page (:mod:`workbench.export_html`), neither of which needs Chromium.

One Chromium process is started on the first export and reused (start-up costs a few
seconds, a render about half a second); :func:`stop_renderer` ends it, and it is also
closed when the interpreter exits. MathJax is disabled and plotly.js comes from the
installed plotly package, so rendering never touches the network.

Paper mode applies the ``tauformer_paper`` template at one- or two-column width
(3.5 in or 7.16 in), drops the title, on-screen notes and selection marks, and turns WebGL
traces into SVG traces for the vector formats (a WebGL layer would otherwise be pasted in
as a bitmap). The PNG scale multiplies pixels only: an SVG or PDF always has the paper size.
Layout images that are not inline ``data:`` URIs are dropped, so Chromium never opens a
file or a URL on the server's behalf; the app exports only figures the server built
(see :mod:`workbench.views.cards`).
"""

from __future__ import annotations

import atexit
import importlib.metadata
import json
import logging
import os
import re
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import plotly.graph_objects as go
import plotly.io as pio

from workbench import theme
from workbench.export_html import inline_image
from workbench.export_renderer import ExportError, Renderer, find_browser  # noqa: F401  (re-exported)
from workbench.pdf_info import set_pdf_title

RENDERED_FORMATS = ("png", "svg", "pdf")
DATA_FORMATS = ("csv", "html")  # written from the figure itself, without Chromium
FORMATS = RENDERED_FORMATS + DATA_FORMATS
RESERVED_MANIFEST_KEYS = ("versions", "files", "exported_at")
DEFAULT_SCREEN_SIZE = (900, 600)

log = logging.getLogger(__name__)
pio.defaults.mathjax = None  # plotly's own exports must not fetch MathJax either


@dataclass(frozen=True)
class ExportTiming:
    """How long one export took (seconds), including any renderer start-up."""

    figure: str
    fmt: str
    seconds: float
    n_bytes: int
    started_renderer: bool


TIMINGS: deque[ExportTiming] = deque(maxlen=200)
"""The most recent exports, newest last."""


_RENDERER = Renderer()
atexit.register(_RENDERER.stop)


def start_renderer(timeout: float = 60.0) -> bool:
    """Start the shared Chromium now (e.g. at app start); True if this call started it."""
    return _RENDERER.start(timeout)


def stop_renderer() -> None:
    """Close the shared Chromium; the next export starts a new one."""
    _RENDERER.stop()


def renderer_running() -> bool:
    """Whether the shared Chromium is up."""
    return _RENDERER.running


# ------------------------------------------------------------- figure preparation
def _meta(fig: go.Figure) -> dict:
    meta = fig.layout.meta
    return meta if isinstance(meta, dict) else {}


def to_svg_traces(fig: go.Figure) -> go.Figure:
    """A copy of ``fig`` with every ``Scattergl`` replaced by an equivalent ``Scatter``."""
    out = go.Figure(fig)
    data = []
    for trace in out.data:
        if isinstance(trace, go.Scattergl):
            spec = trace.to_plotly_json()
            spec.pop("type", None)
            try:
                trace = go.Scatter(spec)
            except ValueError:  # a WebGL-only property: keep the rest
                trace = go.Scatter(spec, skip_invalid=True)
        data.append(trace)
    out.data = ()
    out.add_traces(data)
    return out


def prepare_figure(fig: go.Figure, fmt: str, *, paper: bool = True, columns: int = 1,
                   width: int | None = None, height: int | None = None
                   ) -> tuple[go.Figure, int, int]:
    """The figure as it will be rendered, with its pixel width and height.

    Never modifies ``fig``. In paper mode: the paper template for ``columns``, no
    title, no screen-only notes, shapes or traces (named / meta ``theme.UI_ONLY``), no hover,
    width from
    :data:`workbench.theme.PAPER_SIZES` and height from ``layout.meta["aspect"]``
    (height / width) when the figure states one.
    """
    if fmt not in RENDERED_FORMATS:
        raise ExportError(f"unknown export format {fmt!r} to render; use one of {', '.join(RENDERED_FORMATS)}")
    if columns not in theme.PAPER_SIZES:
        raise ExportError(f"columns must be 1 or 2, got {columns!r}")
    out = to_svg_traces(fig) if fmt in ("svg", "pdf") else go.Figure(fig)
    out.layout.images = [im for im in out.layout.images if inline_image(im.source)]
    if paper:
        size = theme.paper_size(columns)
        out.update_layout(template=theme.build_paper_template(columns), title_text=None)
        out.layout.annotations = [a for a in out.layout.annotations if a.name != theme.UI_ONLY]
        out.layout.shapes = [s for s in out.layout.shapes if s.name != theme.UI_ONLY]
        out.data = [t for t in out.data if t.meta != theme.UI_ONLY]
        for ann in out.layout.annotations:  # subplot titles etc. carry screen font sizes
            ann.font.size = theme.pt_to_px(size.font_pt)
        w = width or size.width_px
        aspect = _meta(out).get("aspect")
        h = height or (round(w * float(aspect)) if aspect else size.height_px)
        h = min(h, round(9.0 * theme.DPI))  # never taller than a page's text block
    else:
        w = width or out.layout.width or DEFAULT_SCREEN_SIZE[0]
        h = height or out.layout.height or DEFAULT_SCREEN_SIZE[1]
    out.update_layout(width=int(w), height=int(h))
    return out, int(w), int(h)


def figure_title(fig: go.Figure, name: str = "") -> str:
    """A document title for ``fig``: its screen title (markup removed), else ``name``."""
    text = fig.layout.title.text if fig.layout.title else None
    text = re.sub(r"<[^>]+>", " ", str(text or ""))
    text = re.sub(r"\s+", " ", text).strip()
    return text or str(name or _meta(fig).get("figure") or "figure")


_SIGNATURES = {"png": b"\x89PNG\r\n\x1a\n", "pdf": b"%PDF"}


def _check_output(data: bytes, fmt: str) -> None:
    if not data:
        raise ExportError(f"Chromium returned no {fmt} data")
    if fmt in _SIGNATURES and not data.startswith(_SIGNATURES[fmt]):
        raise ExportError(f"Chromium returned something that is not a {fmt.upper()} file")
    if fmt == "svg" and b"<svg" not in data[:200]:
        raise ExportError("Chromium returned something that is not an SVG document")


def figure_to_bytes(fig: go.Figure, fmt: str = "png", *, width: int | None = None,
                    height: int | None = None, scale: float = 1, paper: bool = True,
                    columns: int = 1, timeout: float = 60.0, name: str = "",
                    title: str | None = None, table: Callable | None = None) -> bytes:
    """Render ``fig`` as PNG, SVG or PDF bytes, or write its numbers (CSV) or an HTML page of it.

    Parameters
    ----------
    fig : plotly Figure
    fmt : "png" | "svg" | "pdf" | "csv" | "html"
        CSV and HTML ignore the size, scale, paper and column arguments (HTML is the screen figure).
    width, height : int, optional
        Pixels at 96 dpi (paper default: the column width and the figure's aspect).
    scale : 1..4
        Pixel density of a PNG; an SVG or PDF keeps its size (width x height at 96 dpi).
    paper : bool
        Apply the paper template and clean-ups (see :func:`prepare_figure`).
    columns : 1 or 2
        Paper width: one column (3.5 in) or two columns (7.16 in).
    timeout : float
        Seconds allowed for the render (start-up has its own 60 s limit).
    name : str
        Label for the timing record.
    title : str, optional
        The PDF's /Title and the HTML page's title (default: the figure's screen title, else ``name``).
    table : callable, optional
        ``table(fig) -> {column: values}``: the figure's own CSV table, for figures the generic
        walk of :mod:`workbench.export_csv` would mislabel.

    Raises
    ------
    ExportError
        Bad arguments, no Chromium, a render failure or timeout.
    """
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
    if fmt in DATA_FORMATS:
        return _data_bytes(fig, fmt, name=name, title=title, table=table)
    if not 1 <= scale <= 4:
        raise ExportError(f"scale must be between 1 and 4, got {scale}")
    prepared, w, h = prepare_figure(fig, fmt, paper=paper, columns=columns, width=width,
                                    height=height)
    t0 = time.perf_counter()
    started = _RENDERER.start()
    opts = dict(format=fmt, width=w, height=h, scale=scale if fmt == "png" else 1)
    try:
        data = _RENDERER.render(prepared.to_dict(), opts, timeout)
    except Exception as exc:  # noqa: BLE001 - kaleido/choreographer raise many kinds
        _RENDERER.stop()  # a broken or stuck browser is replaced on the next call
        if isinstance(exc, ExportError):
            raise
        raise ExportError(f"rendering {fmt} failed: {type(exc).__name__}: {exc}") from None
    _check_output(data, fmt)
    if fmt == "pdf":
        data = set_pdf_title(data, title or figure_title(fig, name))
    seconds = time.perf_counter() - t0
    label = name or str(_meta(fig).get("figure", ""))
    TIMINGS.append(ExportTiming(label, fmt, seconds, len(data), started))
    log.info("exported %s as %s (%d bytes) in %.2f s%s", label or "figure", fmt, len(data),
             seconds, " including browser start" if started else "")
    return data


def _data_bytes(fig: go.Figure, fmt: str, *, name: str, title: str | None, table: Callable | None) -> bytes:
    """CSV or HTML bytes of ``fig`` (see :func:`figure_to_bytes`)."""
    from workbench.export_csv import CsvError, figure_to_csv
    from workbench.export_html import figure_to_html

    t0 = time.perf_counter()
    try:
        data = figure_to_csv(fig, table) if fmt == "csv" else figure_to_html(fig, title or figure_title(fig, name))
    except (CsvError, ValueError) as exc:
        raise ExportError(f"writing {fmt} failed: {exc}") from None
    label = name or str(_meta(fig).get("figure", ""))
    TIMINGS.append(ExportTiming(label, fmt, time.perf_counter() - t0, len(data), False))
    return data


# ------------------------------------------------------------------ batch export
def safe_name(name: str) -> str:
    """A file-name stem made of letters, digits, '.', '_' and '-'."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", str(name)).strip("._")
    if not stem:
        raise ExportError(f"figure name {name!r} gives an empty file name")
    return stem


def file_name(name: str, fmt: str) -> str:
    """The file a figure called ``name`` is exported to as ``fmt``: its safe stem and extension.

    The one naming rule of exported files: the Export button's download and the batch export's
    files are both named by it (``views.cards.export_file_name`` gives a card's ``name``).
    """
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
    return f"{safe_name(name)}.{fmt}"


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder and a rename."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def package_versions() -> dict[str, str | None]:
    """Installed versions of the packages that shape an exported figure."""
    versions = {}
    for pkg in ("plotly", "kaleido", "dash", "numpy"):
        try:
            versions[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            versions[pkg] = None
    return versions


def _progress(progress, total: int):
    """(update(label), close()) for None (tqdm bar), False (silent) or a callable."""
    if progress is False:
        return (lambda label: None), (lambda: None)
    if callable(progress):
        done = [0]

        def update(label):
            done[0] += 1
            progress(done[0], total, label)

        return update, (lambda: None)
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc="exporting figures", unit="file")

    def update(label):
        bar.set_postfix_str(label, refresh=False)
        bar.update(1)

    return update, bar.close


def export_figures(named_figs: Mapping[str, go.Figure], out_dir: str | os.PathLike,
                   formats: Iterable[str] = ("pdf",), *, manifest: Mapping | None = None,
                   progress: Callable[[int, int, str], None] | bool | None = None,
                   paper: bool = True, columns: int = 1, scale: float = 2,
                   titles: Mapping[str, str] | None = None,
                   tables: Mapping[str, Callable] | None = None) -> list[Path]:
    """Write every figure in every format into ``out_dir``, plus ``manifest.json``.

    Parameters
    ----------
    named_figs : dict name -> Figure
        Names become file stems (unsafe characters replaced by "_").
    out_dir : path
        Created if missing; existing files of the same names are replaced atomically.
    formats : iterable of "png" | "svg" | "pdf" | "csv" | "html"
    manifest : dict, optional
        JSON-serialisable facts about the figures (run, checkpoint, prompt...); written
        with the package versions, the time and each file's size and render time
        (keys ``versions``, ``exported_at``, ``files``, which it must not use itself).
    progress : None (tqdm bar), False (silent) or callable(done, total, label)
    paper, columns, scale : see :func:`figure_to_bytes`
    titles : dict name -> str, optional
        Each PDF's /Title and HTML page's title (default: the figure's screen title, else its name).
    tables : dict name -> callable, optional
        The CSV table function of the figures that have their own (see :func:`figure_to_bytes`).

    Returns
    -------
    list of Path
        The files written, ``manifest.json`` last.
    """
    formats = list(dict.fromkeys(formats))
    for fmt in formats:
        if fmt not in FORMATS:
            raise ExportError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
    base = dict(manifest or {})
    clash = [k for k in RESERVED_MANIFEST_KEYS if k in base]
    if clash:
        raise ExportError(f"manifest may not set {', '.join(clash)}: the export writes them")
    try:
        json.dumps(base)
    except TypeError as exc:
        raise ExportError(f"manifest is not JSON-serialisable: {exc}") from None
    stems = {name: safe_name(name) for name in named_figs}
    if len(set(stems.values())) != len(stems):
        raise ExportError("two figure names map to the same file name: "
                          + ", ".join(sorted(stems)))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    update, close = _progress(progress, len(stems) * len(formats))
    written, files = [], []
    try:
        for name, fig in named_figs.items():
            for fmt in formats:
                path = out / file_name(name, fmt)
                t0 = time.perf_counter()
                try:
                    data = figure_to_bytes(fig, fmt, paper=paper, columns=columns, scale=scale,
                                           name=name, title=(titles or {}).get(name),
                                           table=(tables or {}).get(name))
                except ExportError as exc:
                    raise ExportError(f"figure {name!r} as {fmt}: {exc}") from None
                write_atomic(path, data)
                written.append(path)
                files.append(dict(path=path.name, figure=name, format=fmt, bytes=len(data),
                                  seconds=round(time.perf_counter() - t0, 3)))
                update(path.name)
    finally:
        close()
    record = {**base, "versions": package_versions(),
              "exported_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "files": files}
    manifest_path = out / "manifest.json"
    write_atomic(manifest_path, (json.dumps(record, indent=2) + "\n").encode())
    written.append(manifest_path)
    return written


def timings_table() -> list[dict]:
    """:data:`TIMINGS` as plain dicts (for a log or the app)."""
    return [asdict(t) for t in TIMINGS]

