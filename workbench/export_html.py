"""A figure as one standalone, interactive HTML file (screen theme), readable offline.

plotly.js is written into the file (``include_plotlyjs=True``), MathJax is left out and layout
images that are not inline ``data:`` URIs are dropped, so opening the file fetches nothing:
no CDN, no file or URL the figure might name. The figure is the server-built one, as for the
other export formats.
"""

from __future__ import annotations

import html

import plotly.graph_objects as go
import plotly.io as pio

HTML_CONFIG = {"displaylogo": False, "responsive": True}


def inline_image(source) -> bool:
    """Whether a layout image's source is inline data (a URL or file path would be fetched)."""
    return isinstance(source, str) and source.lstrip().lower().startswith("data:image/")


def figure_to_html(fig: go.Figure, title: str = "figure") -> bytes:
    """UTF-8 bytes of a complete HTML page showing ``fig`` as on screen, titled ``title``
    (``workbench.export.figure_title`` gives the figure's own)."""
    out = go.Figure(fig)
    out.layout.images = [im for im in out.layout.images if inline_image(im.source)]
    page = pio.to_html(out, include_plotlyjs=True, include_mathjax=False, full_html=True,
                       config=HTML_CONFIG, default_width="100%", validate=False)
    name = html.escape(title or "figure")
    page = page.replace("<head>", f'<head><title>{name}</title>', 1)
    return page.encode("utf-8")
