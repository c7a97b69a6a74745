"""Credential lifecycle (issue 11, item 7) against the real server, with every client a
user has: REST (Basic), boto3 S3 and EC2 (SigV4), presigned URLs (SigV4 and SigV2), the
CLI. Keys rotate (create, deactivate, delete) and disabled accounts are refused
everywhere at once; nobody reaches another account's keys; presigned URLs live 7 days at
most; no log line keeps a signature or a secret."""
from __future__ import annotations

import re
import time

import boto3
import pytest
import requests
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError

from .cloud import Api
from .test_cli import Cli

pytestmark = pytest.mark.integration
ONE_TRY = BotoConfig(retries={"max_attempts": 1, "mode": "standard"})


def s3(server, api, **config):
    return boto3.client("s3", endpoint_url=server.url, region_name="us-east-1", aws_access_key_id=api.key_id,
                        aws_secret_access_key=api.secret, config=ONE_TRY.merge(BotoConfig(**config)))


def ec2(server, api):
    return boto3.client("ec2", endpoint_url=server.url, region_name="us-east-1", aws_access_key_id=api.key_id,
                        aws_secret_access_key=api.secret, config=ONE_TRY)


def outcomes(server, api) -> dict[str, str]:
    """What each protocol answers this key: 'ok' or the error code."""
    status, body = api("GET", "/accounts/me")
    out = {"rest": "ok" if status == 200 else body["error"]["code"]}
    for name, call in (("s3", lambda: s3(server, api).list_buckets()),
                       ("ec2", lambda: ec2(server, api).describe_regions())):
        try:
            call()
            out[name] = "ok"
        except ClientError as e:
            out[name] = e.response["Error"]["Code"]
    return out


ALL_OK = {"rest": "ok", "s3": "ok", "ec2": "ok"}


@pytest.fixture
def object_url(server, user):
    """A private object of `user`, and a function presigning it with any of its keys."""
    bucket = f"creds-{server.port}-{int(time.time() * 1000) % 100000}"
    client = s3(server, user)
    client.create_bucket(Bucket=bucket)
    client.put_object(Bucket=bucket, Key="note.txt", Body=b"private note")

    def presign(api, expires=600, v2=False):
        c = s3(server, api, signature_version="s3" if v2 else "s3v4")
        return c.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "note.txt"},
                                        ExpiresIn=expires)
    presign.owner = user  # a test that retires this key names the one to clean up with
    yield presign
    client = s3(server, presign.owner)
    client.delete_object(Bucket=bucket, Key="note.txt")
    client.delete_bucket(Bucket=bucket)


def test_rotation_create_deactivate_delete(server, user, object_url):
    made = user.ok("POST", "/access-keys", 201, json={})
    assert made["status"] == "Active" and len(made["secret_access_key"]) == 40
    new = Api(server.url, made["access_key_id"], made["secret_access_key"])
    assert outcomes(server, new) == ALL_OK and outcomes(server, user) == ALL_OK
    status, body = user("POST", "/access-keys", json={})
    assert (status, body["error"]["code"]) == (403, "LimitExceeded"), body
    listed = user.ok("GET", "/access-keys")["access_keys"]
    assert {k["access_key_id"] for k in listed} == {user.key_id, new.key_id}
    assert user.secret not in str(listed) and new.secret not in str(listed)
    old_url = object_url(user)
    assert requests.get(old_url, timeout=30).content == b"private note"

    assert new.ok("PATCH", f"/access-keys/{user.key_id}", json={"status": "Inactive"})["status"] == "Inactive"
    assert outcomes(server, user) == {"rest": "InvalidAccessKeyId", "s3": "InvalidAccessKeyId", "ec2": "AuthFailure"}
    assert requests.get(old_url, timeout=30).status_code == 403, "a URL presigned with the old key dies with it"
    assert outcomes(server, new) == ALL_OK
    new.ok("PATCH", f"/access-keys/{user.key_id}", json={"status": "Active"})
    assert outcomes(server, user) == ALL_OK

    object_url.owner = new
    new.ok("DELETE", f"/access-keys/{user.key_id}", 204)
    assert outcomes(server, user)["rest"] == "InvalidAccessKeyId"
    assert [k["access_key_id"] for k in new.ok("GET", "/access-keys")["access_keys"]] == [new.key_id]
    status, body = new("PATCH", f"/access-keys/{new.key_id}", json={"status": "Off"})
    assert status == 400 and new.ok("GET", "/access-keys")["access_keys"][0]["status"] == "Active"


def test_another_accounts_keys_are_out_of_reach(server, user):
    other = server.new_user(f"other-{server.port}-{int(time.time() * 1000) % 100000}")
    other_name = other.ok("GET", "/accounts/me")["name"]
    for method, kw in (("PATCH", {"json": {"status": "Inactive"}}), ("DELETE", {})):
        status, body = user(method, f"/access-keys/{other.key_id}", **kw)
        assert (status, body["error"]["code"]) == (404, "NoSuchEntity"), body
    assert user("GET", "/access-keys", params={"account": other_name})[0] == 403
    assert user("POST", "/access-keys", json={"account": other_name})[0] == 403
    assert outcomes(server, other) == ALL_OK
    assert len(other.ok("GET", "/access-keys")["access_keys"]) == 1
    # an admin manages anyone's keys
    admin = server.admin
    made = admin.ok("POST", "/access-keys", 201, json={"account": other_name})
    assert made["account_name"] == other_name
    assert len(admin.ok("GET", "/access-keys", params={"account": other_name})["access_keys"]) == 2
    admin.ok("DELETE", f"/access-keys/{made['access_key_id']}", 204)


def test_a_disabled_account_is_refused_everywhere_and_keeps_its_instance(server, user, cleanup, docker_client):
    name = user.ok("GET", "/accounts/me")["name"]
    inst = user.ok("POST", "/instances", 201, json={"image": "tiny", "type": "t2.nano"})
    cleanup.append((server.admin, inst["id"]))
    admin = server.admin
    assert admin.ok("PATCH", f"/accounts/{name}", json={"disabled": True})["disabled"] is True
    assert outcomes(server, user) == {"rest": "AccountDisabled", "s3": "AccountDisabled", "ec2": "AccountDisabled"}
    mine = [i for i in admin.ok("GET", "/instances", params={"all": "1"})["instances"] if i["id"] == inst["id"]]
    assert mine and mine[0]["state"] == "running"
    container = docker_client.containers.get(mine[0]["engine_id"]) if mine[0].get("engine_id") else None
    assert container is None or container.status == "running"
    assert admin.ok("PATCH", f"/accounts/{name}", json={"disabled": False})["disabled"] is False
    assert outcomes(server, user) == ALL_OK
    user.ok("DELETE", f"/instances/{inst['id']}")
    admin_name = admin.ok("GET", "/accounts/me")["name"]
    status, body = admin("PATCH", f"/accounts/{admin_name}", json={"disabled": True})
    assert (status, body["error"]["code"]) == (409, "CannotDisableSelf")
    assert user("PATCH", f"/accounts/{name}", json={"disabled": True})[0] == 403


def test_presigned_urls_live_seven_days_at_most(server, user, object_url):
    week = 7 * 24 * 3600
    assert requests.get(object_url(user, week), timeout=30).status_code == 200
    r = requests.get(object_url(user, week + 1), timeout=30)
    assert r.status_code == 400 and b"AuthorizationQueryParametersError" in r.content
    assert requests.get(object_url(user, 3600, v2=True), timeout=30).status_code == 200
    until_2100 = int(time.mktime((2100, 1, 1, 0, 0, 0, 0, 0, 0)) - time.time())
    r = requests.get(object_url(user, until_2100, v2=True), timeout=30)
    assert r.status_code in (400, 403) and b"7 days" in r.content, r.content


def test_non_ascii_signatures_are_refused_not_crashed(server, user, object_url):
    from .signed import send

    for url in (object_url(user), object_url(user, v2=True)):
        forged = re.sub(r"Signature=[^&]+", "Signature=%C3%A9t%C3%A9", url)
        assert forged != url and requests.get(forged, timeout=30).status_code == 403, forged
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    for service in ("s3", "ec2"):
        auth = (f"AWS4-HMAC-SHA256 Credential={user.key_id}/{stamp[:8]}/us-east-1/{service}/aws4_request, "
                "SignedHeaders=host;x-amz-date, Signature=\u00e9t\u00e9")
        status, body = send("GET", f"{server.url}/?Action=DescribeRegions" if service == "ec2" else server.url + "/",
                            {"Host": f"127.0.0.1:{server.port}", "X-Amz-Date": stamp,
                             "X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD", "Authorization": auth.encode().decode("latin-1")})
        assert status in (401, 403) and b"SignatureDoesNotMatch" in body, (service, status, body)
    r = requests.get(f"{server.url}/api/v1/accounts/me", auth=(user.key_id, "s\u00e9cret"), timeout=30)
    assert r.status_code == 401


def test_logs_keep_no_signature_and_no_secret(server, user, object_url):
    fresh = server.new_user(f"logged-{server.port}-{int(time.time() * 1000) % 100000}")  # a secret in an answer
    v4, v2 = object_url(user), object_url(user, v2=True)
    for url in (v4, v2, v4 + "&x=1"):
        requests.get(url, timeout=30)
    requests.get(f"{server.url}/api/v1/accounts/me", auth=(user.key_id, "wrong"), timeout=30)
    requests.get(f"{server.url}/api/v1/nowhere?X-Amz-Signature=deadbeefdeadbeef", timeout=30)
    time.sleep(0.5)  # gunicorn writes the access log after the answer
    log = server.log_path.read_text(errors="replace")
    secrets = [v4.split("X-Amz-Signature=")[1].split("&")[0], v2.split("Signature=")[1].split("&")[0],
               "deadbeefdeadbeef", user.secret, fresh.secret, server.admin.secret]
    leaked = [s for s in secrets if s in log]
    assert not leaked, f"the server log carries {len(leaked)} of {len(secrets)} secrets"
    assert "X-Amz-Signature=REDACTED" in log and "Signature=REDACTED" in log


def test_cli_manages_keys_and_accounts(server, user, tmp_path):
    cli = Cli(server, user, tmp_path / "cli-home")
    made = cli.json("access-keys", "create")
    assert made["secret_access_key"] and made["status"] == "Active"
    table = cli("access-keys", "ls").stdout
    assert made["access_key_id"] in table and user.key_id in table and made["secret_access_key"] not in table
    assert cli.json("access-keys", "deactivate", made["access_key_id"])["status"] == "Inactive"
    assert cli.json("access-keys", "activate", made["access_key_id"])["status"] == "Active"
    cli("access-keys", "rm", made["access_key_id"])
    assert cli("access-keys", "rm", made["access_key_id"], rc=1).stderr.count("NoSuchEntity") == 1
    name = user.ok("GET", "/accounts/me")["name"]
    admin_cli = Cli(server, server.admin, tmp_path / "admin-home")
    assert admin_cli.json("accounts", "disable", name)["disabled"] is True
    assert cli("access-keys", "ls", rc=1).returncode == 1
    assert admin_cli.json("accounts", "enable", name)["disabled"] is False
    assert cli("access-keys", "ls").returncode == 0
