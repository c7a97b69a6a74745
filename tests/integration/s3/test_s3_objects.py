"""Core S3 operations with unmodified boto3 through the running server, against its real engine."""
from __future__ import annotations

import hashlib
import os

import pytest
from botocore.exceptions import ClientError

from .conftest import code_of

pytestmark = pytest.mark.integration


def test_bucket_lifecycle_and_errors(s3_of, alice, bob, bucket_name):
    s3 = s3_of(alice)
    s3.create_bucket(Bucket=bucket_name)
    try:
        assert bucket_name in [b["Name"] for b in s3.list_buckets()["Buckets"]]
        assert bucket_name not in [b["Name"] for b in s3_of(bob).list_buckets()["Buckets"]]
        s3.head_bucket(Bucket=bucket_name)
        assert s3.get_bucket_location(Bucket=bucket_name)["LocationConstraint"] in (None, "")
        with pytest.raises(ClientError) as e:
            s3.create_bucket(Bucket=bucket_name)
        assert code_of(e) == ("BucketAlreadyOwnedByYou", 409)
        with pytest.raises(ClientError) as e:
            s3_of(bob).create_bucket(Bucket=bucket_name)
        assert code_of(e) == ("BucketAlreadyExists", 409)
        s3.put_object(Bucket=bucket_name, Key="x", Body=b"1")
        with pytest.raises(ClientError) as e:
            s3.delete_bucket(Bucket=bucket_name)
        assert code_of(e) == ("BucketNotEmpty", 409)
        s3.delete_object(Bucket=bucket_name, Key="x")
        s3.delete_bucket(Bucket=bucket_name)
        assert alice.gone(bucket_name)
        with pytest.raises(ClientError) as e:
            s3.head_bucket(Bucket=bucket_name)
        assert code_of(e)[1] == 404
        with pytest.raises(ClientError) as e:
            s3.list_objects_v2(Bucket=bucket_name)
        assert code_of(e) == ("NoSuchBucket", 404)
    finally:
        alice.force_delete(bucket_name)


@pytest.mark.parametrize("name", ["ab", "UPPER", "has_underscore", "-dash", "a..b", "192.168.1.1", "x" * 64])
def test_invalid_bucket_names(s3_of, alice, name):
    with pytest.raises(ClientError) as e:
        s3_of(alice).create_bucket(Bucket=name)
    assert code_of(e) == ("InvalidBucketName", 400)


def test_put_get_head_range_delete(s3_of, alice, bucket):
    s3 = s3_of(alice)
    data = bytes(range(256)) * 4096  # 1 MiB + : streamed, not prefetched
    key = "dir/sub dir/ünïcode+plus&amp.bin"
    put = s3.put_object(Bucket=bucket, Key=key, Body=data, ContentType="application/x-test",
                        Metadata={"colour": "blue"})
    assert put["ETag"].strip('"') == hashlib.md5(data).hexdigest()
    got = s3.get_object(Bucket=bucket, Key=key)
    assert got["Body"].read() == data
    assert got["ContentType"] == "application/x-test"
    head = s3.head_object(Bucket=bucket, Key=key)
    assert head["ContentLength"] == len(data)
    part = s3.get_object(Bucket=bucket, Key=key, Range="bytes=1000-1999")
    assert part["Body"].read() == data[1000:2000] and part["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert alice.usage(bucket) == {"objects": 1, "bytes": len(data)}
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="missing")
    assert code_of(e) == ("NoSuchKey", 404)
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="missing")
    assert code_of(e)[1] == 404
    s3.delete_object(Bucket=bucket, Key=key)
    s3.delete_object(Bucket=bucket, Key="never-there")  # S3 says 204 too
    assert alice.usage(bucket) == {"objects": 0, "bytes": 0}


def test_listings_prefix_delimiter_pagination(s3_of, alice, bucket):
    s3 = s3_of(alice)
    keys = [f"logs/2024/{i:02d}.txt" for i in range(7)] + ["logs/readme", "other/x", "top"]
    for k in keys:
        s3.put_object(Bucket=bucket, Key=k, Body=k.encode())
    # v2 with pagination
    seen, token = [], None
    while True:
        kw = {"ContinuationToken": token} if token else {}
        page = s3.list_objects_v2(Bucket=bucket, MaxKeys=3, **kw)
        seen += [o["Key"] for o in page.get("Contents", [])]
        if not page["IsTruncated"]:
            break
        token = page["NextContinuationToken"]
    assert sorted(seen) == sorted(keys)
    # prefix + delimiter
    page = s3.list_objects_v2(Bucket=bucket, Prefix="logs/", Delimiter="/")
    assert [p["Prefix"] for p in page.get("CommonPrefixes", [])] == ["logs/2024/"]
    assert [o["Key"] for o in page.get("Contents", [])] == ["logs/readme"]
    # v1 with markers, via the paginator
    v1 = [o["Key"] for p in s3.get_paginator("list_objects").paginate(Bucket=bucket, PaginationConfig={"PageSize": 4})
          for o in p.get("Contents", [])]
    assert sorted(v1) == sorted(keys)
    # DeleteObjects
    out = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys]})
    assert sorted(d["Key"] for d in out["Deleted"]) == sorted(keys)
    assert s3.list_objects_v2(Bucket=bucket).get("Contents", []) == []


def test_copy_object(s3_of, alice, bob, bucket):
    s3 = s3_of(alice)
    s3.put_object(Bucket=bucket, Key="src", Body=b"copy me")
    s3.copy_object(Bucket=bucket, Key="dst/copy", CopySource={"Bucket": bucket, "Key": "src"})
    assert s3.get_object(Bucket=bucket, Key="dst/copy")["Body"].read() == b"copy me"
    assert alice.usage(bucket) == {"objects": 2, "bytes": 14}
    # bob may not copy out of alice's private bucket into his own
    bob_bucket = bucket + "-bob"
    s3_of(bob).create_bucket(Bucket=bob_bucket)
    try:
        with pytest.raises(ClientError) as e:
            s3_of(bob).copy_object(Bucket=bob_bucket, Key="stolen", CopySource={"Bucket": bucket, "Key": "src"})
        assert code_of(e) == ("AccessDenied", 403)
        assert s3_of(bob).list_objects_v2(Bucket=bob_bucket).get("Contents", []) == []
    finally:
        bob.force_delete(bob_bucket)


def test_multipart_create_upload_list_complete_abort(s3_of, alice, bucket):
    s3 = s3_of(alice)
    part1, part2 = b"a" * (5 * 1024 * 1024), b"b" * 1234
    up = s3.create_multipart_upload(Bucket=bucket, Key="mp/obj")
    uid = up["UploadId"]
    e1 = s3.upload_part(Bucket=bucket, Key="mp/obj", UploadId=uid, PartNumber=1, Body=part1)["ETag"]
    e2 = s3.upload_part(Bucket=bucket, Key="mp/obj", UploadId=uid, PartNumber=2, Body=part2)["ETag"]
    parts = s3.list_parts(Bucket=bucket, Key="mp/obj", UploadId=uid)["Parts"]
    assert [(p["PartNumber"], p["Size"]) for p in parts] == [(1, len(part1)), (2, len(part2))]
    uploads = s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    assert uid in [u["UploadId"] for u in uploads]
    s3.complete_multipart_upload(Bucket=bucket, Key="mp/obj", UploadId=uid, MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]})
    assert s3.get_object(Bucket=bucket, Key="mp/obj")["Body"].read() == part1 + part2
    assert alice.usage(bucket)["bytes"] == len(part1) + len(part2)
    # abort leaves nothing
    uid2 = s3.create_multipart_upload(Bucket=bucket, Key="mp/aborted")["UploadId"]
    s3.upload_part(Bucket=bucket, Key="mp/aborted", UploadId=uid2, PartNumber=1, Body=b"zz")
    s3.abort_multipart_upload(Bucket=bucket, Key="mp/aborted", UploadId=uid2)
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="mp/aborted")
    assert code_of(e)[1] == 404
    with pytest.raises(ClientError) as e:
        s3.upload_part(Bucket=bucket, Key="mp/aborted", UploadId=uid2, PartNumber=2, Body=b"zz")
    assert code_of(e) == ("NoSuchUpload", 404)


def test_boto3_upload_file_in_5_mib_parts_round_trips(s3_of, alice, bucket, tmp_path):
    """boto3's transfer manager with a small part size: a multipart upload of 4 parts
    through the server, downloaded (in ranged parts) byte for byte."""
    from boto3.s3.transfer import TransferConfig

    s3 = s3_of(alice)
    calls: list[tuple[str, int]] = []
    s3.meta.events.register("after-call.s3.*", lambda http_response, model, **kw: calls.append(
        (model.name, http_response.status_code)))
    src, back = tmp_path / "src.bin", tmp_path / "back.bin"
    src.write_bytes(os.urandom(17 * 1024 * 1024 + 3))
    cfg = TransferConfig(multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024)
    s3.upload_file(str(src), bucket, "via/upload_file.bin", Config=cfg)
    assert sorted(calls) == sorted([("CreateMultipartUpload", 200)] + [("UploadPart", 200)] * 4 +
                                   [("CompleteMultipartUpload", 200)])
    head = s3.head_object(Bucket=bucket, Key="via/upload_file.bin")
    assert head["ContentLength"] == src.stat().st_size
    assert alice.usage(bucket) == {"objects": 1, "bytes": src.stat().st_size}
    assert alice.account_usage()["multipart_pending_bytes"] == 0
    s3.download_file(bucket, "via/upload_file.bin", str(back), Config=cfg)
    assert back.read_bytes() == src.read_bytes()


def test_unsupported_operations_say_not_implemented(s3_of, alice, bucket):
    s3 = s3_of(alice)
    with pytest.raises(ClientError) as e:     # reading it answers S3's not-found (test_s3_unkept_settings.py)
        s3.put_bucket_website(Bucket=bucket, WebsiteConfiguration={"IndexDocument": {"Suffix": "index.html"}})
    assert code_of(e) == ("NotImplemented", 501)
    with pytest.raises(ClientError) as e:
        s3.put_bucket_replication(Bucket=bucket, ReplicationConfiguration={"Role": "r", "Rules": []})
    assert code_of(e) == ("NotImplemented", 501)


def test_bucket_with_deep_keys_deletes_once_emptied(s3_of, alice, bucket_name):
    """Deleting every object leaves a bucket empty, whatever folders the engine kept on disk."""
    s3 = s3_of(alice)
    s3.create_bucket(Bucket=bucket_name)
    try:
        keys = [f"d{i % 3}/sub{i % 2}/k{i}.txt" for i in range(30)]
        for key in keys:
            s3.put_object(Bucket=bucket_name, Key=key, Body=b"data")
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(10) as pool:  # as `aws s3 rm --recursive` does
            list(pool.map(lambda k: s3.delete_object(Bucket=bucket_name, Key=k), keys))
        s3.delete_bucket(Bucket=bucket_name)
        assert alice.gone(bucket_name)
    finally:
        alice.force_delete(bucket_name)
