"""Serving the app: waitress, an access token off loopback, Host checks, static-only /assets/.

- Bound to loopback (the default), only requests whose ``Host`` header is 127.0.0.1,
  localhost or [::1] with the app's port are answered: a web page on another site whose
  name was re-pointed at 127.0.0.1 (DNS rebinding) gets 403.
- Bound to any other interface, every request needs the access token, as in Jupyter: the
  token in the URL (``?token=...``) sets an HttpOnly cookie that the page's own requests,
  Dash's ``_dash-*`` ones included, then carry; without a valid cookie, ``?token=`` or an
  ``Authorization: token ...`` header the answer is 403.
- ``/assets/`` serves static web files (CSS, JS, images, fonts) only; the demo's checkpoints
  and domain memory under assets/demo are not downloadable (404).
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from pathlib import PurePosixPath

from flask import abort, request

COOKIE = "tauformer_workbench_token"
STATIC_SUFFIXES = frozenset({".css", ".js", ".mjs", ".map", ".png", ".jpg", ".jpeg", ".gif", ".svg",
                             ".ico", ".webp", ".woff", ".woff2", ".ttf", ".otf", ".eot"})
LOOPBACK_NAMES = ("localhost",)


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` serves this machine only (127.0.0.0/8, ::1, localhost)."""
    name = str(host).strip("[]").lower()
    if name in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def new_token() -> str:
    """A fresh random access token (URL-safe, 192 bits)."""
    return secrets.token_urlsafe(24)


def allowed_hosts(port: int) -> set[str]:
    """Host header values accepted on loopback: the loopback names with the port (and bare on 80)."""
    names = ("127.0.0.1", "localhost", "[::1]")
    hosts = {f"{n}:{port}" for n in names}
    if int(port) == 80:
        hosts |= set(names)
    return hosts


def static_asset_allowed(path: str) -> bool:
    """``/assets/<path>``: a static web file outside demo/ (checkpoints and domains live there)."""
    rel = PurePosixPath(path)
    parts = rel.parts
    if not parts or any(p in ("..", "") or p.startswith(".") for p in parts):
        return False
    if parts[0] == "demo":
        return False
    return rel.suffix.lower() in STATIC_SUFFIXES


def _token_ok(token: str) -> bool:
    given = (request.args.get("token") or request.cookies.get(COOKIE) or "")
    auth = request.headers.get("Authorization", "")
    if not given and auth.lower().startswith("token "):
        given = auth[6:].strip()
    return bool(given) and hmac.compare_digest(given.encode(), token.encode())


def install_guards(server, *, host: str, port: int, token: str | None = None, prefix: str = "/") -> None:
    """Add the checks above to a Flask ``server`` as its first before_request handler."""
    loopback = is_loopback(host)
    hosts = allowed_hosts(port)
    assets = prefix.rstrip("/") + "/assets/"

    def guard():
        if loopback and request.host.lower() not in hosts:
            abort(403, description="unexpected Host header (this server answers only on this machine)")
        if token is not None and not _token_ok(token):
            abort(403, description="a valid access token is needed: open the URL with ?token=... "
                                   "that the app printed when it started")
        if request.path.startswith(assets) and not static_asset_allowed(request.path[len(assets):]):
            abort(404)
        return None

    def remember_token(response):
        if token is not None and request.args.get("token") and _token_ok(token) \
                and request.cookies.get(COOKIE) != token:
            response.set_cookie(COOKIE, token, httponly=True, samesite="Lax", path=prefix)
        return response

    server.before_request_funcs.setdefault(None, []).insert(0, guard)
    server.after_request(remember_token)
    server.config["TAUFORMER_TOKEN_REQUIRED"] = token is not None


def make_server(app, *, host: str, port: int, threads: int = 8):
    """A waitress server for a Dash app (a production WSGI server; never Flask's debug server).

    ``.run()`` serves until ``.close()``; the request body limit is the app's MAX_CONTENT_LENGTH.
    """
    from waitress.server import create_server

    limit = app.server.config.get("MAX_CONTENT_LENGTH") or 2**30
    return create_server(app.server, host=host, port=port, threads=threads, max_request_body_size=limit,
                         ident="tauformer-workbench", clear_untrusted_proxy_headers=True)
