"""Storage through the JSON REST API with curl (HTTP Basic), on the server's one port."""
from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

pytestmark = pytest.mark.integration


def curl(*args, data: bytes | None = None) -> tuple[int, bytes]:
    out = subprocess.run(["curl", "-sS", "--noproxy", "*", "-w", "\n%{http_code}", *args], input=data,
                         capture_output=True, timeout=120)
    assert out.returncode == 0, out.stderr
    body, _, code = out.stdout.rpartition(b"\n")
    return int(code), body


def api(who, method, url, payload=None):
    args = ["-u", f"{who.key_id}:{who.secret}", "-X", method, url]
    if payload is not None:
        args += ["-H", "Content-Type: application/json", "--data-binary", json.dumps(payload)]
    code, body = curl(*args)
    return code, (json.loads(body) if body.strip().startswith((b"{", b"[")) else body)


def test_rest_buckets_objects_sharing_presign(s3_endpoint, alice, bob, bucket_name, tmp_path):
    base = f"{s3_endpoint}/api/v1"
    try:
        code, b = api(alice, "POST", f"{base}/buckets", {"name": bucket_name})
        assert code == 201 and b["name"] == bucket_name and b["access"] == "private"
        code, b = api(alice, "POST", f"{base}/buckets", {"name": "Bad_Name"})
        assert code == 400 and b["error"]["code"] == "InvalidBucketName"
        for nameless in ({}, {"name": None}, {"name": 7}):  # the fuzzer's 500: a name that is no string
            code, b = api(alice, "POST", f"{base}/buckets", nameless)
            assert code == 400 and b["error"]["code"] == "InvalidBucketName", (nameless, code, b)
        f = tmp_path / "hello.txt"
        f.write_bytes(os.urandom(2 * 1024 * 1024 + 5))
        code, body = curl("-u", f"{alice.key_id}:{alice.secret}", "-T", str(f),
                          f"{base}/buckets/{bucket_name}/objects/dir/hello.txt")
        assert code == 201 and json.loads(body)["size"] == f.stat().st_size
        code, got = curl("-u", f"{alice.key_id}:{alice.secret}", f"{base}/buckets/{bucket_name}/objects/dir/hello.txt")
        assert code == 200 and got == f.read_bytes()
        code, got = curl("-u", f"{alice.key_id}:{alice.secret}", "-H", "Range: bytes=0-9",
                         f"{base}/buckets/{bucket_name}/objects/dir/hello.txt")
        assert code == 206 and got == f.read_bytes()[:10]
        code, listing = api(alice, "GET", f"{base}/buckets/{bucket_name}/objects?prefix=dir/")
        assert [o["key"] for o in listing["objects"]] == ["dir/hello.txt"]
        code, lst = api(alice, "GET", f"{base}/buckets")
        mine = next(x for x in lst["buckets"] if x["name"] == bucket_name)
        assert mine["usage"] == {"objects": 1, "bytes": f.stat().st_size}
        assert lst["usage"]["bytes"] >= f.stat().st_size
        # bob: nothing, then read after a share, never write
        assert api(bob, "GET", f"{base}/buckets/{bucket_name}/objects")[0] == 403
        assert bucket_name not in [x["name"] for x in api(bob, "GET", f"{base}/buckets")[1]["buckets"]]
        code, b = api(alice, "PUT", f"{base}/buckets/{bucket_name}/shares/{bob.name}", {"level": "read"})
        assert code == 200 and b["grants"][0]["level"] == "read"
        code, got = curl("-u", f"{bob.key_id}:{bob.secret}", f"{base}/buckets/{bucket_name}/objects/dir/hello.txt")
        assert code == 200 and got == f.read_bytes()
        code, _ = curl("-u", f"{bob.key_id}:{bob.secret}", "-T", str(f), f"{base}/buckets/{bucket_name}/objects/x")
        assert code == 403
        assert api(bob, "DELETE", f"{base}/buckets/{bucket_name}/objects/dir/hello.txt")[0] == 403
        api(alice, "DELETE", f"{base}/buckets/{bucket_name}/shares/{bob.name}")
        assert api(bob, "GET", f"{base}/buckets/{bucket_name}/objects")[0] == 403
        # public-read: plain curl, no credentials, straight from the S3 path
        public = f"{s3_endpoint}/{bucket_name}/dir/hello.txt"
        assert curl(public)[0] == 403
        assert api(alice, "PUT", f"{base}/buckets/{bucket_name}/access", {"access": "public-read"})[0] == 200
        code, got = curl(public)
        assert code == 200 and got == f.read_bytes()
        api(alice, "PUT", f"{base}/buckets/{bucket_name}/access", {"access": "private"})
        # presign: works with curl until it expires
        code, p = api(alice, "POST", f"{base}/buckets/{bucket_name}/presign", {"key": "dir/hello.txt", "expires": 2})
        assert code == 200 and p["url"].startswith(s3_endpoint)
        code, got = curl(p["url"])
        assert code == 200 and got == f.read_bytes()
        time.sleep(3.2)
        code, got = curl(p["url"])
        assert code == 403 and b"expired" in got
        # delete: 409 while not empty, force empties it
        code, b = api(alice, "DELETE", f"{base}/buckets/{bucket_name}")
        assert code == 409 and b["error"]["code"] == "BucketNotEmpty"
        assert api(alice, "DELETE", f"{base}/buckets/{bucket_name}?force=true")[0] == 204
        assert alice.gone(bucket_name)
    finally:
        alice.force_delete(bucket_name)


def test_info_names_the_storage_engine(server, s3_endpoint, alice):
    code, info = api(alice, "GET", f"{s3_endpoint}/api/v1/info")
    assert code == 200
    storage = info["storage"]
    assert storage["engine"] and storage["status"] == "running" and storage["name"] and storage["reason"]
    secret = server.home / "storage" / ("ceph/keys/rgw-user.json" if storage["engine"] == "ceph"
                                        else "root-credentials.json")
    root = json.loads(secret.read_text())
    assert root["secret_key"] not in json.dumps(info)  # the engine's root secret never leaves the server
    code, mine = api(alice, "GET", f"{s3_endpoint}/api/v1/storage")
    assert code == 200 and mine["usage"]["quota_bytes"] is None and "engine" not in mine
