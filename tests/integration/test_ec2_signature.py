"""Attacks on the EC2 API's signature check through the running server (issue 11, items 4
and 9): each was possible before and must now be refused, with nothing changed."""
from __future__ import annotations

import hashlib
import time

import boto3
import pytest
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError

from tests.integration.signed import send, sign

pytestmark = pytest.mark.integration

DESCRIBE = b"Action=DescribeInstances&Version=2016-11-15"
FORM = "application/x-www-form-urlencoded; charset=utf-8"


def launch(user, cleanup) -> str:
    inst = user.ok("POST", "/instances", 201, json={"image": "tiny", "type": "t2.nano"})
    cleanup.append((user, inst["id"]))
    deadline = time.monotonic() + 120
    while inst["state"] != "running" and time.monotonic() < deadline:
        time.sleep(0.5)
        inst = user.ok("GET", f"/instances/{inst['id']}")
    assert inst["state"] == "running", inst
    return inst["id"]


@pytest.mark.parametrize("claimed", ["digest", "UNSIGNED-PAYLOAD"])
def test_captured_describe_cannot_be_replayed_as_terminate(server, user, cleanup, claimed):
    """A DescribeInstances whose signature covers an x-amz-content-sha256 header (its body's
    digest, or UNSIGNED-PAYLOAD) is replayed with a TerminateInstances body: refused, and
    the instance keeps running."""
    iid = launch(user, cleanup)
    sha = hashlib.sha256(DESCRIBE).hexdigest() if claimed == "digest" else claimed
    headers = sign("POST", f"{server.url}/", user, DESCRIBE, {"Content-Type": FORM, "X-Amz-Content-SHA256": sha},
                   service="ec2")
    assert "x-amz-content-sha256" in headers["Authorization"]
    if claimed == "digest":
        status, body = send("POST", f"{server.url}/", headers, DESCRIBE)
        assert status == 200 and iid.encode() in body, body  # the captured request itself is good
    evil = f"Action=TerminateInstances&InstanceId.1={iid}&Version=2016-11-15".encode()
    status, body = send("POST", f"{server.url}/", headers, evil)
    assert status == 400 and b"<Code>XAmzContentSHA256Mismatch</Code>" in body, (status, body)
    assert user.ok("GET", f"/instances/{iid}")["state"] == "running"


def test_non_ascii_signature_is_refused_not_a_crash(server, user):
    headers = sign("POST", f"{server.url}/", user, DESCRIBE, {"Content-Type": FORM}, service="ec2")
    headers["Authorization"] = headers["Authorization"][:-2] + "\u00e9\u00e9"
    status, body = send("POST", f"{server.url}/", headers, DESCRIBE)
    assert status == 401 and b"<Code>SignatureDoesNotMatch</Code>" in body, (status, body)


def test_signing_region_must_be_the_endpoints(server, user):
    ec2 = boto3.client("ec2", endpoint_url=server.url, region_name="eu-west-1", aws_access_key_id=user.key_id,
                       aws_secret_access_key=user.secret, config=BotoConfig(retries={"max_attempts": 1}))
    with pytest.raises(ClientError) as e:
        ec2.describe_instances()
    assert e.value.response["Error"]["Code"] == "AuthorizationHeaderMalformed"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
