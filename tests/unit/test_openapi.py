"""The OpenAPI document is true: every Flask route under /api/v1 is in it, every operation in
it is a route, and it is a valid OpenAPI 3 document."""
from __future__ import annotations

import re

import pytest

from api import create_app
from api.openapi import document
from emulator.config import Config

METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    home = tmp_path_factory.mktemp("openapi")
    return create_app(Config(home=home, recipes_dir=home / "none"))


def _routes(app) -> set[tuple[str, str]]:
    out = set()
    for rule in app.flask.url_map.iter_rules():
        if not rule.rule.startswith("/api/"):
            continue
        path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule)
        out |= {(m.lower(), path) for m in rule.methods if m.lower() in METHODS}
    return out


def _documented() -> set[tuple[str, str]]:
    return {(method, path) for path, ops in document()["paths"].items() for method in ops}


def test_every_route_is_documented_and_every_operation_exists(app):
    routes, documented = _routes(app), _documented()
    assert not routes - documented, f"routes missing from api/openapi.py: {sorted(routes - documented)}"
    assert not documented - routes, f"documented operations with no route: {sorted(documented - routes)}"


def test_the_document_is_valid_openapi_and_served_without_credentials(app):
    from schemathesis.openapi import from_dict

    doc = document()
    schema = from_dict(doc)
    schema.validate()  # against the OpenAPI 3.0 meta-schema
    assert len(list(schema.get_all_operations())) == len(_documented())
    client = app.flask.test_client()
    served = client.get("/api/v1/openapi.json")
    assert served.status_code == 200 and served.get_json() == doc


def test_every_error_answer_is_the_json_error_shape():
    for path, ops in document()["paths"].items():
        for method, op in ops.items():
            for status, resp in op["responses"].items():
                if int(status) >= 400 and status != "414":  # 414: gunicorn's own page
                    assert resp["content"] == {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
            if op.get("security") != []:
                assert "401" in op["responses"], (method, path)
            if "requestBody" in op and "application/json" in op["requestBody"]["content"]:
                assert {"413", "415"} <= set(op["responses"]), (method, path)
