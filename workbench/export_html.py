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

from workbench.export import figure_title, inline_image

HTML_CONFIG = {"displaylogo": False, "responsive": True}


def figure_to_html(fig: go.Figure, title: str | None = None) -> bytes:
    """UTF-8 bytes of a complete HTML page showing ``fig`` as on screen, titled ``title``
    (default: the figure's own title)."""
    out = go.Figure(fig)
    out.layout.images = [im for im in out.layout.images if inline_image(im.source)]
    page = pio.to_html(out, include_plotlyjs=True, include_mathjax=False, full_html=True,
                       config=HTML_CONFIG, default_width="100%", validate=False)
    name = html.escape(title or figure_title(fig))
    page = page.replace("<head>", f'<head><title>{name}</title>', 1)
    return page.encode("utf-8")
