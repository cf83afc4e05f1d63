"""Serving: Host checks on loopback, the access token elsewhere, static-only /assets/, waitress."""

from __future__ import annotations

import threading
import urllib.request

import pytest

import app as app_main
from workbench.app import create_app, max_request_bytes
from workbench.data import DEMO_DIR, demo_workspace
from workbench.serving import COOKIE, install_guards, is_loopback, make_server, static_asset_allowed

PORT = 8050


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    return demo_workspace(cache_dir=tmp_path_factory.mktemp("cache"), max_upload_mb=1)


@pytest.fixture(scope="module")
def loopback_app(workspace):
    app = create_app(workspace)
    install_guards(app.server, host="127.0.0.1", port=PORT)
    return app


@pytest.fixture(scope="module")
def token_app(workspace):
    app = create_app(workspace)
    install_guards(app.server, host="0.0.0.0", port=PORT, token="s3cret-token")
    return app


def get(app, path, host=f"127.0.0.1:{PORT}", **kwargs):
    return app.server.test_client().get(path, headers={"Host": host, **kwargs.pop("headers", {})}, **kwargs)


@pytest.mark.parametrize("host", [f"127.0.0.1:{PORT}", f"localhost:{PORT}", f"[::1]:{PORT}", f"LOCALHOST:{PORT}"])
def test_loopback_answers_its_own_names(loopback_app, host):
    assert get(loopback_app, "/_dash-layout", host=host).status_code == 200


@pytest.mark.parametrize("host", [f"evil.example:{PORT}", "evil.example", f"127.0.0.1:{PORT + 1}",
                                  f"127.0.0.1.evil.example:{PORT}", "localhost"])
def test_loopback_refuses_other_host_headers_dns_rebinding(loopback_app, host):
    assert get(loopback_app, "/", host=host).status_code == 403
    assert get(loopback_app, "/_dash-layout", host=host).status_code == 403


def test_assets_serve_static_web_files_but_no_demo_checkpoint(loopback_app):
    assert get(loopback_app, "/assets/workbench.css").status_code == 200
    demo_files = [p for p in DEMO_DIR.rglob("*") if p.is_file()]
    assert any(p.name == "model.safetensors" for p in demo_files)
    for path in demo_files:
        url = "/assets/" + path.relative_to(DEMO_DIR.parent).as_posix()
        assert get(loopback_app, url).status_code in (403, 404), url


@pytest.mark.parametrize("path, allowed", [
    ("workbench.css", True), ("fonts/a.woff2", True), ("img/x.PNG", True),
    ("demo/tau/ckpt-500/model.safetensors", False), ("demo/x.css", False), ("config.json", False),
    ("../app.py", False), (".hidden.css", False), ("x.py", False),
])
def test_static_asset_rule(path, allowed):
    assert static_asset_allowed(path) is allowed


def test_off_loopback_every_request_needs_the_token(token_app):
    host = "203.0.113.7:8050"
    assert get(token_app, "/", host=host).status_code == 403
    assert get(token_app, "/_dash-layout", host=host).status_code == 403
    assert get(token_app, "/?token=wrong", host=host).status_code == 403
    client = token_app.server.test_client()
    first = client.get("/?token=s3cret-token", headers={"Host": host})
    assert first.status_code == 200
    cookie = first.headers["Set-Cookie"]
    assert cookie.startswith(f"{COOKIE}=s3cret-token") and "HttpOnly" in cookie
    # the page's own requests carry the cookie, Dash's _dash-* ones included
    assert client.get("/_dash-layout", headers={"Host": host}).status_code == 200
    assert client.get("/_dash-dependencies", headers={"Host": host}).status_code == 200
    assert get(token_app, "/_dash-layout", host=host,
               headers={"Authorization": "token s3cret-token"}).status_code == 200
    other = token_app.server.test_client()
    other.set_cookie(COOKIE, "guess", domain="203.0.113.7")
    assert other.get("/_dash-layout", headers={"Host": host}).status_code == 403


def test_request_bodies_over_the_upload_bound_are_refused(loopback_app, workspace):
    limit = loopback_app.server.config["MAX_CONTENT_LENGTH"]
    assert limit == max_request_bytes(workspace.max_upload_mb) and limit < 4 * 2**20
    response = loopback_app.server.test_client().post(
        "/_dash-update-component", data=b"x" * (limit + 1), content_type="application/json",
        headers={"Host": f"127.0.0.1:{PORT}"})
    assert response.status_code == 413


def test_is_loopback():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("[::1]") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.2") and not is_loopback("example.com")


def test_the_app_is_served_by_waitress(workspace):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    app = create_app(workspace)
    install_guards(app.server, host="127.0.0.1", port=port)
    server = make_server(app, host="127.0.0.1", port=port, threads=2)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_dash-layout", timeout=20) as response:
            assert response.status == 200 and response.headers["Server"] == "tauformer-workbench"
    finally:
        server.close()
        thread.join(5)


def test_debug_mode_is_refused_off_loopback(tmp_path, capsys):
    assert app_main.main(["--host", "0.0.0.0", "--debug", "--cache-dir", str(tmp_path / "c")]) == 2
    assert "--debug" in capsys.readouterr().err
    assert app_main.parse_args([]).debug is False and app_main.parse_args([]).host == "127.0.0.1"


@pytest.mark.parametrize("port", ["0", "99999", "65536", "-1", "80x"])
def test_a_port_outside_1_to_65535_exits_2_with_one_line(port, capsys):
    with pytest.raises(SystemExit) as exc:
        app_main.parse_args(["--port", port])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "--port" in err and port in err


def test_ports_1_and_65535_are_accepted():
    assert app_main.parse_args(["--port", "1"]).port == 1
    assert app_main.parse_args(["--port", "65535"]).port == 65535


def test_a_short_token_gets_one_warning_line():
    warning = app_main.short_token_warning("abc")
    assert warning is not None and "--token" in warning and "\n" not in warning
    assert app_main.short_token_warning("x" * 16) is None and app_main.short_token_warning(None) is None
