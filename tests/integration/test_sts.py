"""STS on the one port, through boto3 and the aws CLI unmodified, and over the raw wire."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import boto3
import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config as BotoConfig
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

pytestmark = pytest.mark.integration

AWS = str(Path(sys.executable).with_name("aws"))
NS = "{https://sts.amazonaws.com/doc/2011-06-15/}"


def sts_for(server, key_id: str, secret: str):
    return boto3.client("sts", endpoint_url=server.url, region_name="us-east-1", aws_access_key_id=key_id,
                        aws_secret_access_key=secret, config=BotoConfig(retries={"max_attempts": 1}))


def signed_post(server, api, body: str, service: str = "sts") -> requests.Response:
    req = AWSRequest(method="POST", url=server.url + "/", data=body,
                     headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
    SigV4Auth(Credentials(api.key_id, api.secret), service, "us-east-1").add_auth(req)
    return requests.post(server.url + "/", data=body, headers=dict(req.headers), timeout=30)


def test_caller_identity_is_the_signing_account(server, user):
    me = user.ok("GET", "/accounts/me")
    ident = sts_for(server, user.key_id, user.secret).get_caller_identity()
    assert ident["Account"] == me["id"] and len(ident["Account"]) == 12 and ident["Account"].isdigit()
    assert ident["Arn"] == f"arn:aws:iam::{me['id']}:user/{me['name']}"
    assert ident["UserId"].startswith("AIDA")
    assert sts_for(server, user.key_id, user.secret).get_caller_identity()["UserId"] == ident["UserId"]
    admin = sts_for(server, server.admin.key_id, server.admin.secret).get_caller_identity()
    assert admin["Account"] != ident["Account"] and admin["Arn"].endswith(":user/admin")

    env = {**os.environ, "AWS_ACCESS_KEY_ID": user.key_id, "AWS_SECRET_ACCESS_KEY": user.secret,
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": server.url, "AWS_CONFIG_FILE": "/dev/null",
           "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}
    out = subprocess.run([AWS, "sts", "get-caller-identity"], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["Arn"] == ident["Arn"]


def test_sts_errors(server, user):
    sts = sts_for(server, user.key_id, user.secret)
    for call in (lambda: sts.assume_role(RoleArn="arn:aws:iam::123456789012:role/x", RoleSessionName="lab"),
                 lambda: sts.get_session_token()):
        with pytest.raises(ClientError) as e:
            call()
        assert e.value.response["Error"]["Code"] == "NotImplemented"
        assert "temporary credentials" in e.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as e:
        sts_for(server, user.key_id, "wrong" * 8).get_caller_identity()
    assert e.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    with pytest.raises(ClientError) as e:
        sts_for(server, "AKIA0000000000000000", "x" * 40).get_caller_identity()
    assert e.value.response["Error"]["Code"] == "InvalidClientTokenId"

    # The error document itself, as STS sends it (botocore hides the shape)
    r = signed_post(server, user, "Action=GetSomethingElse&Version=2011-06-15")
    assert r.status_code == 400 and r.headers["Content-Type"].startswith("text/xml")
    root = ET.fromstring(r.text)
    assert root.tag == f"{NS}ErrorResponse"
    assert root.find(f"{NS}Error/{NS}Type").text == "Sender"
    assert root.find(f"{NS}Error/{NS}Code").text == "InvalidAction"
    assert "GetCallerIdentity" in root.find(f"{NS}Error/{NS}Message").text
    assert root.find(f"{NS}RequestId").text == r.headers["x-amzn-RequestId"]
    r = signed_post(server, user, "Version=2011-06-15")
    assert r.status_code == 400 and "<Code>MissingAction</Code>" in r.text
    r = signed_post(server, user, "Action=GetCallerIdentity&Version=2011-06-15")
    assert r.status_code == 200
    assert ET.fromstring(r.text).find(f"{NS}GetCallerIdentityResult/{NS}Arn").text.endswith(user.ok("GET", "/accounts/me")["name"])
