"""Ownership, sharing, public-read, presigned URLs, forged signatures and quotas, through the
running server."""
from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import time
import urllib.error
import urllib.request
from urllib.parse import urlsplit

import boto3
import pytest
import requests
from botocore.exceptions import ClientError

from emulator.sigv4 import scope_string, sign_headers, signing_key

from .conftest import code_of, set_limits

pytestmark = pytest.mark.integration


def http_get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url), timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


@pytest.fixture
def bucket(bucket, s3_of, alice):
    s3_of(alice).put_object(Bucket=bucket, Key="secret.txt", Body=b"alice's data")
    return bucket


def snapshot(s3, bucket):
    return sorted((o["Key"], o["Size"], o["ETag"]) for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))


def test_other_account_is_denied_everything_and_nothing_changes(s3_of, alice, bob, bucket):
    a, b = s3_of(alice), s3_of(bob)
    before = snapshot(a, bucket)
    usage = alice.usage(bucket)
    attempts = {
        "list": lambda: b.list_objects_v2(Bucket=bucket),
        "list-v1": lambda: b.list_objects(Bucket=bucket),
        "get": lambda: b.get_object(Bucket=bucket, Key="secret.txt"),
        "put": lambda: b.put_object(Bucket=bucket, Key="secret.txt", Body=b"overwritten by bob"),
        "put-new": lambda: b.put_object(Bucket=bucket, Key="bob.txt", Body=b"x"),
        "delete": lambda: b.delete_object(Bucket=bucket, Key="secret.txt"),
        "delete-many": lambda: b.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "secret.txt"}]}),
        "multipart": lambda: b.create_multipart_upload(Bucket=bucket, Key="m"),
        "delete-bucket": lambda: b.delete_bucket(Bucket=bucket),
        "policy": lambda: b.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Statement": [{
            "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/*"}]})),
    }
    for what, call in attempts.items():
        with pytest.raises(ClientError) as e:
            call()
        assert code_of(e) == ("AccessDenied", 403), what
    with pytest.raises(ClientError) as e:
        b.head_object(Bucket=bucket, Key="secret.txt")
    assert code_of(e)[1] == 403
    assert snapshot(a, bucket) == before
    assert alice.usage(bucket) == usage
    assert a.get_object(Bucket=bucket, Key="secret.txt")["Body"].read() == b"alice's data"


def test_shared_read_lets_bob_read_but_not_write(s3_of, alice, bob, bucket):
    a, b = s3_of(alice), s3_of(bob)
    policy = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{bob.id}:root"},
        "Action": ["s3:GetObject", "s3:ListBucket"], "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]}]}
    a.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
    assert [(g["account"], g["level"]) for g in alice.bucket(bucket)[1]["grants"]] == [(bob.id, "read")]
    assert json.loads(a.get_bucket_policy(Bucket=bucket)["Policy"])["Statement"][0]["Principal"]["AWS"] == \
        [f"arn:aws:iam::{bob.id}:root"]
    assert bucket in [x["Name"] for x in b.list_buckets()["Buckets"]]
    assert [o["Key"] for o in b.list_objects_v2(Bucket=bucket)["Contents"]] == ["secret.txt"]
    assert b.get_object(Bucket=bucket, Key="secret.txt")["Body"].read() == b"alice's data"
    for call in (lambda: b.put_object(Bucket=bucket, Key="secret.txt", Body=b"no"),
                 lambda: b.delete_object(Bucket=bucket, Key="secret.txt"),
                 lambda: b.get_bucket_policy(Bucket=bucket)):
        with pytest.raises(ClientError) as e:
            call()
        assert code_of(e) == ("AccessDenied", 403)
    assert a.get_object(Bucket=bucket, Key="secret.txt")["Body"].read() == b"alice's data"
    # upgrade to read-write through the REST API, then revoke entirely
    alice.api.ok("PUT", f"/buckets/{bucket}/shares/{bob.name}", json={"level": "read-write"})
    b.put_object(Bucket=bucket, Key="from-bob.txt", Body=b"hi")
    assert alice.usage(bucket)["objects"] == 2  # counted against alice, the owner
    assert alice.account_usage()["bytes"] == len(b"alice's data") + 2 and bob.account_usage()["bytes"] == 0
    a.delete_bucket_policy(Bucket=bucket)
    with pytest.raises(ClientError) as e:
        b.get_object(Bucket=bucket, Key="from-bob.txt")
    assert code_of(e) == ("AccessDenied", 403)
    with pytest.raises(ClientError) as e:
        a.get_bucket_policy(Bucket=bucket)
    assert code_of(e) == ("NoSuchBucketPolicy", 404)


def test_public_read_object_over_plain_http(s3_of, alice, bucket, s3_endpoint):
    a = s3_of(alice)
    url = f"{s3_endpoint}/{bucket}/secret.txt"
    status, body = http_get(url)
    assert status == 403 and b"<Code>AccessDenied</Code>" in body
    a.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [{
        "Sid": "PublicRead", "Effect": "Allow", "Principal": "*", "Action": ["s3:GetObject"],
        "Resource": [f"arn:aws:s3:::{bucket}/*"]}]}))
    assert http_get(url) == (200, b"alice's data")
    assert requests.head(url, timeout=30).status_code == 200
    # anonymous callers still cannot list, write or delete
    assert http_get(f"{s3_endpoint}/{bucket}")[0] == 403
    assert requests.put(f"{s3_endpoint}/{bucket}/anon.txt", data=b"x", timeout=30).status_code == 403
    assert requests.delete(url, timeout=30).status_code == 403
    # back to private with the canned ACL
    a.put_bucket_acl(Bucket=bucket, ACL="private")
    assert http_get(url)[0] == 403


def test_presigned_url_works_until_it_expires(s3_of, alice, bucket):
    for version in ("s3v4", None):  # SigV4 query, and boto3's default (SigV2 query) as `aws s3 presign`
        kw = {"signature_version": version} if version else {}
        s3 = s3_of(alice, **kw)
        url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "secret.txt"}, ExpiresIn=2)
        assert http_get(url) == (200, b"alice's data")
        time.sleep(3.2)
        status, body = http_get(url)
        assert status == 403 and b"expired" in body, body
    # a presigned PUT
    s3 = s3_of(alice, signature_version="s3v4")
    url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "uploaded.txt"}, ExpiresIn=60)
    assert requests.put(url, data=b"via presigned PUT", timeout=30).status_code == 200
    assert s3.get_object(Bucket=bucket, Key="uploaded.txt")["Body"].read() == b"via presigned PUT"


def test_tampered_signature_is_refused_and_writes_nothing(s3_endpoint, alice, bucket, s3_of):
    usage = alice.usage(bucket)
    host = urlsplit(s3_endpoint).netloc
    body = b"forged content"
    headers = sign_headers("PUT", f"/{bucket}/forged.txt", [], {"host": host},
                           access_key=alice.key_id, secret_key=alice.secret, region="us-east-1",
                           payload_hash=hashlib.sha256(body).hexdigest())
    headers["authorization"] = headers["authorization"][:-1] + ("0" if headers["authorization"][-1] != "0" else "1")
    r = requests.put(f"{s3_endpoint}/{bucket}/forged.txt", data=body, headers=headers, timeout=30)
    assert r.status_code == 403 and "<Code>SignatureDoesNotMatch</Code>" in r.text
    # right signature, wrong body: the payload hash does not match
    headers = sign_headers("PUT", f"/{bucket}/forged.txt", [], {"host": host},
                           access_key=alice.key_id, secret_key=alice.secret, region="us-east-1",
                           payload_hash=hashlib.sha256(body).hexdigest())
    r = requests.put(f"{s3_endpoint}/{bucket}/forged.txt", data=b"other content!", headers=headers, timeout=30)
    assert r.status_code == 400 and "XAmzContentSHA256Mismatch" in r.text
    # a large body whose hash fails only at the very end is not completed at the engine either
    big = b"z" * (3 * 1024 * 1024)
    headers = sign_headers("PUT", f"/{bucket}/forged-big.bin", [], {"host": host},
                           access_key=alice.key_id, secret_key=alice.secret, region="us-east-1",
                           payload_hash=hashlib.sha256(big).hexdigest())
    r = requests.put(f"{s3_endpoint}/{bucket}/forged-big.bin", data=big[:-1] + b"y", headers=headers, timeout=30)
    assert r.status_code == 400
    # unknown key id
    bad = sign_headers("GET", f"/{bucket}", [], {"host": host}, access_key="AKIA" + "Z" * 16,
                       secret_key="x" * 40, region="us-east-1")
    r = requests.get(f"{s3_endpoint}/{bucket}", headers=bad, timeout=30)
    assert r.status_code == 403 and "InvalidAccessKeyId" in r.text
    keys = [o["Key"] for o in s3_of(alice).list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert keys == ["secret.txt"]
    assert alice.usage(bucket) == usage


def _capture_aws_chunked(s3_endpoint, who, bucket, key, body: bytes):
    """The exact request current botocore sends over TLS (aws-chunked + CRC32 trailer)."""
    tls = s3_endpoint.replace("http://", "https://")
    s3 = boto3.client("s3", endpoint_url=tls, aws_access_key_id=who.key_id, aws_secret_access_key=who.secret,
                      region_name="us-east-1")
    cap = {}

    def before_send(request, **kw):
        data = request.body.read() if hasattr(request.body, "read") else request.body
        cap.update(url=request.url.replace("https://", "http://"), data=data,
                   headers={k: (v.decode() if isinstance(v, bytes) else v) for k, v in request.headers.items()})
        from botocore.awsrequest import AWSResponse

        class Raw:
            def stream(self, **kw):
                yield b""

        return AWSResponse(request.url, 200, {}, Raw())

    s3.meta.events.register("before-send.s3.PutObject", before_send)
    s3.put_object(Bucket=bucket, Key=key, Body=io.BytesIO(body))
    return cap


def _replay(cap, data: bytes):
    """Send as botocore does: HTTP chunked transfer (a generator body) around the aws-chunked payload."""
    headers = {k: v for k, v in cap["headers"].items() if k.lower() not in ("transfer-encoding", "content-length")}
    pieces = (data[i:i + 100_000] for i in range(0, len(data), 100_000))
    return requests.put(cap["url"], data=pieces, headers=headers, timeout=60)


def test_botocore_aws_chunked_upload_replayed_over_http(s3_endpoint, alice, bucket, s3_of):
    data = bytes(range(256)) * 10000
    cap = _capture_aws_chunked(s3_endpoint, alice, bucket, "chunked.bin", data)
    assert cap["headers"]["Content-Encoding"] == "aws-chunked"
    assert cap["headers"]["Transfer-Encoding"] == "chunked"
    r = _replay(cap, cap["data"])
    assert r.status_code == 200, r.text
    assert "x-amz-checksum-crc32" in {k.lower() for k in r.headers}
    assert s3_of(alice).get_object(Bucket=bucket, Key="chunked.bin")["Body"].read() == data
    # the same request with one data byte flipped: BadDigest, and the object is unchanged
    cap2 = _capture_aws_chunked(s3_endpoint, alice, bucket, "chunked.bin", data[::-1])
    forged = bytearray(cap2["data"])
    forged[len(forged) // 2] ^= 0xFF
    r = _replay(cap2, bytes(forged))
    assert r.status_code == 400 and "BadDigest" in r.text
    assert s3_of(alice).get_object(Bucket=bucket, Key="chunked.bin")["Body"].read() == data


def test_signed_aws_chunked_upload(s3_endpoint, alice, bucket, s3_of):
    from tests.unit.test_sigv4 import encode_signed_chunks

    data = b"signed chunks " * 100000
    now = dt.datetime.now(dt.timezone.utc)
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    host = urlsplit(s3_endpoint).netloc
    hdrs = {"host": host, "content-encoding": "aws-chunked", "x-amz-decoded-content-length": str(len(data))}
    signed = sign_headers("PUT", f"/{bucket}/signed.bin", [], hdrs, access_key=alice.key_id, secret_key=alice.secret,
                          region="us-east-1", payload_hash="STREAMING-AWS4-HMAC-SHA256-PAYLOAD", now=now)
    seed = signed["authorization"].rsplit("Signature=", 1)[1]
    key = signing_key(alice.secret, amz_date[:8], "us-east-1", "s3")
    body = encode_signed_chunks(data, seed, amz_date, scope_string(amz_date[:8], "us-east-1", "s3"), key)
    r = requests.put(f"{s3_endpoint}/{bucket}/signed.bin", data=body, headers=signed, timeout=60)
    assert r.status_code == 200, r.text
    assert s3_of(alice).get_object(Bucket=bucket, Key="signed.bin")["Body"].read() == data
    # flip a byte in the last data chunk: its chunk signature fails, nothing is written
    forged = bytearray(body)
    forged[-200] ^= 1
    r = requests.put(f"{s3_endpoint}/{bucket}/signed-forged.bin", data=bytes(forged), headers=signed, timeout=60)
    assert r.status_code == 403 and "SignatureDoesNotMatch" in r.text
    with pytest.raises(ClientError):
        s3_of(alice).head_object(Bucket=bucket, Key="signed-forged.bin")


def test_quota_refuses_put_and_multipart_completion(server, s3_of, alice, bucket):
    s3 = s3_of(alice)
    stored = alice.account_usage()["bytes"]
    set_limits(server, alice, storage_quota=stored + 6 * 1024 * 1024)
    try:
        s3.put_object(Bucket=bucket, Key="fits.bin", Body=b"f" * 1024 * 1024)
        before = alice.account_usage()
        with pytest.raises(ClientError) as e:
            s3.put_object(Bucket=bucket, Key="too-big.bin", Body=b"t" * (6 * 1024 * 1024))
        assert code_of(e) == ("QuotaExceeded", 403)
        assert "quota" in e.value.response["Error"]["Message"]
        with pytest.raises(ClientError):
            s3.head_object(Bucket=bucket, Key="too-big.bin")
        assert alice.account_usage() == before
        # overwriting frees the old size: replacing fits.bin with 5 MiB fits (1 + 5 - 1 <= 6 + stored)
        s3.put_object(Bucket=bucket, Key="fits.bin", Body=b"g" * 5 * 1024 * 1024)
        s3.put_object(Bucket=bucket, Key="fits.bin", Body=b"f" * 1024 * 1024)
        # multipart: parts fit one at a time, but their sum does not once another object lands
        before = alice.account_usage()
        uid = s3.create_multipart_upload(Bucket=bucket, Key="mp.bin")["UploadId"]
        e1 = s3.upload_part(Bucket=bucket, Key="mp.bin", UploadId=uid, PartNumber=1,
                            Body=b"1" * 5 * 1024 * 1024)["ETag"]
        with pytest.raises(ClientError) as e:  # the next part would pass the quota
            s3.upload_part(Bucket=bucket, Key="mp.bin", UploadId=uid, PartNumber=2, Body=b"2" * 1024 * 1024)
        assert code_of(e) == ("QuotaExceeded", 403)
        set_limits(server, alice, storage_quota=before["bytes"] + 4 * 1024 * 1024)
        with pytest.raises(ClientError) as e:
            s3.complete_multipart_upload(Bucket=bucket, Key="mp.bin", UploadId=uid,
                                         MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e1}]})
        assert code_of(e) == ("QuotaExceeded", 403)
        with pytest.raises(ClientError):
            s3.head_object(Bucket=bucket, Key="mp.bin")
        assert uid not in [u["UploadId"] for u in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])]
        after = alice.account_usage()
        assert (after["bytes"], after["objects"], after["multipart_pending_bytes"]) == \
            (before["bytes"], before["objects"], 0)
    finally:
        set_limits(server, alice, storage_quota=None)
