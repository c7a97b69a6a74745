"""Schemathesis against the real server, from the published OpenAPI document: generated
requests (valid and invalid) to every REST operation, as a plain user. Every answer must be
a documented status, errors the JSON error shape, never a 500, and a rejected request must
leave Docker, libvirt and the S3 engine as they were. Bounded: EXAMPLES per operation."""
from __future__ import annotations

import json
from base64 import b64encode
from collections import Counter

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import (content_type_conformance, not_a_server_error, response_schema_conformance,
                                 status_code_conformance)

from api.openapi import document
from tests.conftest import ARTIFACTS

from .engines import Engines

pytestmark = pytest.mark.integration

EXAMPLES = 12
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def fuzzer(server, docker_client):
    api = server.new_user(f"fuzz-{server.port}")
    engines = Engines(server, docker_client)
    assert requests.get(f"{server.url}/api/v1/openapi.json", timeout=30).json() == document()
    seen: Counter = Counter()
    yield {"headers": {"Authorization": "Basic " + b64encode(f"{api.key_id}:{api.secret}".encode()).decode()},
           "base": server.url, "engines": engines, "seen": seen}
    engines.close()
    # what the fuzzer got to see, for the record: (operation, status) -> count
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "rest-fuzz.json").write_text(json.dumps(
        {"requests": sum(seen.values()), "by_operation_and_status": {f"{k[0]} {k[1]}": v for k, v in sorted(seen.items())}},
        indent=1))


# The document the server publishes at /api/v1/openapi.json (the same object: checked in
# tests/unit/test_openapi.py and below), loaded at collection so pytest sees each operation.
schema = schemathesis.openapi.from_dict(document())


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck),
          phases=[Phase.explicit, Phase.generate])
def test_rest_api_under_fuzzing(case, fuzzer):
    before = fuzzer["engines"].snapshot()
    response = case.call(base_url=fuzzer["base"], headers=fuzzer["headers"], timeout=60)
    fuzzer["seen"][(f"{case.method} {case.path}", response.status_code)] += 1
    case.validate_response(response, checks=CHECKS)
    if response.status_code >= 400:
        assert fuzzer["engines"].snapshot() == before, f"{case.method} {case.formatted_path} was refused " \
                                                       f"({response.status_code}) but changed an engine"
