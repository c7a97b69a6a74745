"""One real server for the billing tests, with a fast billing clock: time scale 360 (one
billed hour every 10 real seconds) and a metering pass every second.

The clock starts on the 2nd of this month: started at the wall clock it ran into the next
month within a minute of the tests when they ran late on a month's last day (budget states
reset, the month's bill split in two). From the 2nd the package has ~26 billed days, over
an hour of real time."""
from __future__ import annotations

import itertools
import os
import time
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from botocore.config import Config as BotoConfig

from tests.conftest import start_server, stop_and_check_leaks

SCALE = 360.0
INTERVAL = 1.0
BILLING_START = time.strftime("%Y-%m-02", time.gmtime())
AWS = str(Path(sys.executable).with_name("aws"))
_names = itertools.count()


@pytest.fixture(scope="package")
def bserver(tmp_path_factory, docker_client):
    srv = start_server(tmp_path_factory.mktemp("pcbill"), POCKETCLOUD_TIME_SCALE=str(SCALE),
                       POCKETCLOUD_METER_INTERVAL=str(INTERVAL), POCKETCLOUD_BILLING_START=BILLING_START)
    yield srv
    stop_and_check_leaks(srv, docker_client)


@pytest.fixture
def buser(bserver):
    return bserver.new_user(f"b{next(_names)}-{bserver.port}")


def client(server, api, service: str):
    return boto3.client(service, endpoint_url=server.url, region_name="us-east-1", aws_access_key_id=api.key_id,
                        aws_secret_access_key=api.secret, config=BotoConfig(retries={"max_attempts": 1}))


def aws(server, api, *args: str) -> subprocess.CompletedProcess:
    """The unmodified aws CLI, configured by AWS_* variables only."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POCKETCLOUD_"))}
    env.update(AWS_ACCESS_KEY_ID=api.key_id, AWS_SECRET_ACCESS_KEY=api.secret, AWS_DEFAULT_REGION="us-east-1",
               AWS_ENDPOINT_URL=server.url, AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null")
    return subprocess.run([AWS, *args], env=env, capture_output=True, text=True, timeout=120)


def account_id(api) -> str:
    return api.ok("GET", "/accounts/me")["id"]
