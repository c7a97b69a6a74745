"""REST and the console share one Flask app and one error handler registered on it: every
exception answers in the caller's protocol, whichever blueprint raised it."""
from __future__ import annotations

import json

import pytest
from flask import Flask, abort

from api import admin_rest, rest, rest_buckets, rest_storage
from api.errors import register_flask_handlers
from api.web import views
from emulator import errors as e


def _console_page(status: int, message: str, code: str = ""):
    return f"<h1>{status}</h1><p>{message}</p><code>{code}</code>", status


def _raiser(exc: Exception):
    def view():
        raise exc

    return view


@pytest.fixture
def client():
    app = Flask("wire-errors-test")
    for bp in (rest.bp, rest_buckets.bp, admin_rest.bp):
        app.register_blueprint(bp)
    raising = {
        "missing": _raiser(e.NotFound("instance i-1 does not exist", code="InvalidInstanceID.NotFound")),
        "denied": _raiser(e.Unauthorized("bad key", code="AuthFailure")),
        "bug": _raiser(RuntimeError("secret path /root/x")),
        "http": lambda: abort(413),
    }
    for name, fn in raising.items():
        app.add_url_rule(f"/api/v1/test/{name}", f"api_{name}", fn)
        app.add_url_rule(f"/ui/test/{name}", f"ui_{name}", fn)
    register_flask_handlers(app, console_page=_console_page)
    return app.test_client()


def test_rest_errors_are_json_with_the_tables_status(client):
    r = client.get("/api/v1/test/missing")
    assert r.status_code == 404 and r.mimetype == "application/json"
    assert r.get_json() == {"error": {"code": "InvalidInstanceID.NotFound", "message": "instance i-1 does not exist"}}
    r = client.get("/api/v1/test/denied")
    assert r.status_code == 401 and r.headers["WWW-Authenticate"] == 'Basic realm="pocketcloud"'


def test_unexpected_rest_error_is_a_500_without_details(client, caplog):
    r = client.get("/api/v1/test/bug")
    assert r.status_code == 500 and r.get_json()["error"]["code"] == "InternalError"
    assert "secret" not in r.get_data(as_text=True)
    assert any("unhandled error on GET /api/v1/test/bug" in rec.getMessage() for rec in caplog.records)


def test_routing_errors_are_json_too(client):
    r = client.get("/api/v1/no/such/thing")
    assert r.status_code == 404 and r.get_json()["error"]["code"] == "NotFound"
    assert "GET /api/v1/no/such/thing" in r.get_json()["error"]["message"]
    r = client.delete("/api/v1/health")
    assert r.status_code == 405 and r.get_json()["error"]["code"] == "MethodNotAllowed"
    r = client.get("/api/v1/test/http")
    assert r.status_code == 413 and json.loads(r.data)["error"]["code"] == "RequestTooLarge"


def test_console_errors_are_pages(client):
    r = client.get("/ui/test/missing")
    assert r.status_code == 404 and r.mimetype == "text/html"
    assert "instance i-1 does not exist" in r.get_data(as_text=True) and "InvalidInstanceID.NotFound" in r.get_data(as_text=True)
    r = client.get("/ui/test/bug")
    assert r.status_code == 500 and "Internal error" in r.get_data(as_text=True)
    assert "secret" not in r.get_data(as_text=True)
    r = client.get("/ui/test/http")
    assert r.status_code == 413 and r.mimetype == "text/html"


def test_no_blueprint_carries_its_own_error_handlers():
    app = Flask("handlers-test")
    for bp in (rest.bp, rest_buckets.bp, rest_storage.bp, admin_rest.bp, views.bp):
        app.register_blueprint(bp)
    assert set(app.error_handler_spec) <= {None}, "error handlers belong on the app (api/errors.py), once"
