"""Body limits (api/limits.py): a route's limit holds for Content-Length and for chunked
bodies alike, a body of exactly the limit passes, and nothing past it is read."""
from __future__ import annotations

import io

import pytest
from flask import Flask, request
from werkzeug.test import EnvironBuilder, run_wsgi_app

from api import limits
from api.errors import register_flask_handlers
from emulator.config import Config
from emulator.errors import TooLarge


class Counting(io.BytesIO):
    def __init__(self, data: bytes):
        super().__init__(data)
        self.taken = 0

    def read(self, size=-1):
        out = super().read(size)
        self.taken += len(out)
        return out


def test_capped_input_passes_the_limit_exactly_and_stops_past_it():
    assert limits.CappedInput(io.BytesIO(b"x" * 10), 10).read() == b"x" * 10
    src = Counting(b"x" * 1000)
    with pytest.raises(TooLarge):
        limits.CappedInput(src, 10).read()
    assert src.taken == 11  # one byte past the limit is all it takes to know
    capped = limits.CappedInput(io.BytesIO(b"line\n" * 5), 12)
    assert capped.readline() == b"line\n" and capped.readline() == b"line\n"
    with pytest.raises(TooLarge):
        capped.readline()


def _env(body: bytes, chunked: bool) -> dict:
    env = {"wsgi.input": Counting(body)}
    if chunked:
        env["wsgi.input_terminated"] = True
    else:
        env["CONTENT_LENGTH"] = str(len(body))
    return env


@pytest.mark.parametrize("chunked", [True, False])
def test_read_capped(chunked):
    assert limits.read_capped(_env(b"a" * 100, chunked), 100) == b"a" * 100
    env = _env(b"a" * 5000, chunked)
    with pytest.raises(TooLarge):
        limits.read_capped(env, 100)
    assert env["wsgi.input"].taken <= 101
    # no length and a server that does not frame the body: nothing is read
    assert limits.read_capped({"wsgi.input": io.BytesIO(b"abc")}, 100) == b""


@pytest.fixture
def app():
    app = Flask("limits-test")
    limits.install(app, Config(home="/nonexistent", max_rest_body=1000))

    @app.post("/api/v1/small")
    def small():
        return {"got": len(request.get_data())}

    @app.post("/api/v1/big")
    @limits.body_limit(lambda config: config.max_rest_body * 10)
    def big():
        return {"got": len(request.get_data())}

    @app.post("/ui/form")
    def form():
        return {"fields": len(request.form)}

    register_flask_handlers(app, console_page=lambda status, msg, code="": (f"page {status}", status))
    return app


@pytest.mark.parametrize("chunked", [True, False])
def test_flask_routes_take_their_own_limits(app, chunked):
    def post(path, body, **kw):
        env = EnvironBuilder(path, method="POST", data=body, **kw).get_environ()
        if chunked:  # as gunicorn passes a chunked body: no length, a stream that ends itself
            del env["CONTENT_LENGTH"]
            env.update({"wsgi.input_terminated": True, "HTTP_TRANSFER_ENCODING": "chunked"})
        body_iter, status, headers = run_wsgi_app(app, env, buffered=True)
        return app.response_class(b"".join(body_iter), status=status, headers=headers)

    assert post("/api/v1/small", b"x" * 1000).get_json() == {"got": 1000}
    r = post("/api/v1/small", b"x" * 1001)
    assert r.status_code == 413 and r.get_json()["error"]["code"] == "RequestTooLarge"
    assert post("/api/v1/big", b"x" * 9000).get_json() == {"got": 9000}
    r = post("/ui/form", b"a=" + b"x" * (limits.CONSOLE_FORM + 10), content_type="application/x-www-form-urlencoded")
    assert r.status_code == 413 and r.get_data(as_text=True) == "page 413"
