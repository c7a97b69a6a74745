"""The console lives on its own listener: /ui is served only there, the API port (where S3
serves user content) only redirects to it, and S3 answers are never sniffed."""
from __future__ import annotations

import socket
from types import SimpleNamespace

from flask import Flask
from werkzeug.test import Client

from api import PocketCloudApp
from api.routing import console_redirect, listener_port
from emulator.config import Config

API, UI = 4566, 4567


def _echo(name):
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [name.encode()]
    return app


def _app(host="127.0.0.1") -> PocketCloudApp:
    flask = Flask("origin-test")
    flask.add_url_rule("/ui/<path:p>", "ui", lambda p: f"console {p}")
    flask.add_url_rule("/api/v1/health", "health", lambda: "api")
    cloud = SimpleNamespace(config=Config(home="/nonexistent", host=host, port=API, console_port=UI))
    return PocketCloudApp(cloud, flask, {"s3": _echo("s3"), "ec2": _echo("ec2")})


def _get(app, path, port, method="GET", **kw):
    return Client(app).open(path, method=method, environ_overrides={"SERVER_PORT": str(port)}, **kw)


def test_console_pages_only_on_the_console_port():
    app = _app()
    r = _get(app, "/ui/accounts", UI)
    assert r.status_code == 200 and r.get_data(as_text=True) == "console accounts"
    r = _get(app, "/ui/accounts?x=1", API)
    assert r.status_code == 302 and r.headers["Location"] == f"http://127.0.0.1:{UI}/ui/accounts?x=1"
    assert _get(app, "/ui/accounts", API, method="POST", data="a=1").status_code == 404
    # the console's origin serves nothing else: no API, no S3 objects
    assert _get(app, "/api/v1/health", UI).status_code == 404
    assert _get(app, "/bucket/x.html", UI).status_code == 404
    r = _get(app, "/", UI)
    assert r.status_code == 302 and r.headers["Location"] == "/ui/"
    assert _get(app, "/api/v1/health", API).get_data(as_text=True) == "api"


def test_s3_answers_carry_nosniff_once():
    app = _app()
    r = _get(app, "/bucket/x.html", API)
    assert r.get_data(as_text=True) == "s3"
    assert r.headers.getlist("X-Content-Type-Options") == ["nosniff"]

    def already(environ, start_response):
        start_response("200 OK", [("X-Content-Type-Options", "nosniff")])
        return [b""]
    app.protocols["s3"] = already
    assert _get(app, "/bucket/k", API).headers.getlist("X-Content-Type-Options") == ["nosniff"]


def test_redirect_never_lets_the_path_break_the_header():
    seen = {}

    def start(status, headers):
        seen.update(status=status, headers=dict(headers))
    console_redirect({"REQUEST_METHOD": "GET", "PATH_INFO": "/ui/\r\nSet-Cookie: x=1", "QUERY_STRING": "a=<b>"},
                     start, ("127.0.0.1", UI))
    location = seen["headers"]["Location"]
    assert "\r" not in location and "\n" not in location and "<" not in location
    assert location.startswith(f"http://127.0.0.1:{UI}/ui/%0D%0ASet-Cookie")


def test_wildcard_bind_redirects_to_the_host_the_client_used():
    seen = {}
    env = {"REQUEST_METHOD": "GET", "PATH_INFO": "/ui/", "HTTP_HOST": "lab-7.example:4566"}
    console_redirect(env, lambda s, h: seen.update(h=dict(h)), ("0.0.0.0", UI))
    assert seen["h"]["Location"] == f"http://lab-7.example:{UI}/ui/"
    console_redirect({**env, "HTTP_HOST": "evil host\"><"}, lambda s, h: seen.update(h=dict(h)), ("0.0.0.0", UI))
    assert seen["h"]["Location"] == f"http://127.0.0.1:{UI}/ui/"


def test_listener_port_comes_from_the_socket_not_the_host_header():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        assert listener_port({"gunicorn.socket": s, "SERVER_PORT": str(UI)}) == port
    assert listener_port({"SERVER_PORT": "4567"}) == 4567
    assert listener_port({}) is None


def test_console_port_defaults_to_the_next_port():
    assert Config(home="/x", port=5000, console_port=0).console_listen_port == 5001
    assert Config(home="/x", port=5000, console_port=6000).console_url == "http://127.0.0.1:6000/ui"
