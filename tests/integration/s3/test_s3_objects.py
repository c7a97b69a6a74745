"""Core S3 operations through the gateway with unmodified boto3, against the real stand-in."""
from __future__ import annotations

import hashlib
import io

import pytest
from botocore.exceptions import ClientError

pytestmark = pytest.mark.integration


def code_of(exc_info) -> tuple[str, int]:
    r = exc_info.value.response
    return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"]


@pytest.fixture
def bucket(s3_of, alice, bucket_name, s3_cloud):
    s3 = s3_of(alice)
    s3.create_bucket(Bucket=bucket_name)
    yield bucket_name
    if s3_cloud.storage.find_bucket(bucket_name):
        s3_cloud.storage.delete_bucket(alice.account, bucket_name, force=True)


def test_bucket_lifecycle_and_errors(s3_of, alice, bob, bucket_name, s3_cloud):
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
        assert s3_cloud.storage.find_bucket(bucket_name) is None
        with pytest.raises(ClientError) as e:
            s3.head_bucket(Bucket=bucket_name)
        assert code_of(e)[1] == 404
        with pytest.raises(ClientError) as e:
            s3.list_objects_v2(Bucket=bucket_name)
        assert code_of(e) == ("NoSuchBucket", 404)
    finally:
        if s3_cloud.storage.find_bucket(bucket_name):
            s3_cloud.storage.delete_bucket(alice.account, bucket_name, force=True)


@pytest.mark.parametrize("name", ["ab", "UPPER", "has_underscore", "-dash", "a..b", "192.168.1.1", "x" * 64])
def test_invalid_bucket_names(s3_of, alice, name):
    with pytest.raises(ClientError) as e:
        s3_of(alice).create_bucket(Bucket=name)
    assert code_of(e) == ("InvalidBucketName", 400)


def test_put_get_head_range_delete(s3_of, alice, bucket, s3_cloud):
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
    assert s3_cloud.storage.usage(bucket) == {"objects": 1, "bytes": len(data)}
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="missing")
    assert code_of(e) == ("NoSuchKey", 404)
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="missing")
    assert code_of(e)[1] == 404
    s3.delete_object(Bucket=bucket, Key=key)
    s3.delete_object(Bucket=bucket, Key="never-there")  # S3 says 204 too
    assert s3_cloud.storage.usage(bucket) == {"objects": 0, "bytes": 0}


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


def test_copy_object(s3_of, alice, bob, bucket, s3_cloud):
    s3 = s3_of(alice)
    s3.put_object(Bucket=bucket, Key="src", Body=b"copy me")
    s3.copy_object(Bucket=bucket, Key="dst/copy", CopySource={"Bucket": bucket, "Key": "src"})
    assert s3.get_object(Bucket=bucket, Key="dst/copy")["Body"].read() == b"copy me"
    assert s3_cloud.storage.usage(bucket) == {"objects": 2, "bytes": 14}
    # bob may not copy out of alice's private bucket into his own
    bob_bucket = bucket + "-bob"
    s3_of(bob).create_bucket(Bucket=bob_bucket)
    try:
        with pytest.raises(ClientError) as e:
            s3_of(bob).copy_object(Bucket=bob_bucket, Key="stolen", CopySource={"Bucket": bucket, "Key": "src"})
        assert code_of(e) == ("AccessDenied", 403)
        assert s3_of(bob).list_objects_v2(Bucket=bob_bucket).get("Contents", []) == []
    finally:
        s3_cloud.storage.delete_bucket(bob.account, bob_bucket, force=True)


def test_multipart_create_upload_list_complete_abort(s3_of, alice, bucket, s3_cloud):
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
    assert s3_cloud.storage.usage(bucket)["bytes"] == len(part1) + len(part2)
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


def test_upload_fileobj_uses_multipart_through_the_gateway(s3_of, alice, bucket):
    from boto3.s3.transfer import TransferConfig

    s3 = s3_of(alice)
    data = hashlib.sha256(b"seed").digest() * (12 * 1024 * 1024 // 32)
    cfg = TransferConfig(multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024)
    s3.upload_fileobj(io.BytesIO(data), bucket, "via-transfer", Config=cfg)
    out = io.BytesIO()
    s3.download_fileobj(bucket, "via-transfer", out, Config=cfg)
    assert hashlib.sha256(out.getvalue()).digest() == hashlib.sha256(data).digest()


def test_unsupported_operations_say_not_implemented(s3_of, alice, bucket):
    s3 = s3_of(alice)
    with pytest.raises(ClientError) as e:
        s3.get_bucket_lifecycle_configuration(Bucket=bucket)
    assert code_of(e) == ("NotImplemented", 501)
    with pytest.raises(ClientError) as e:
        s3.put_object_tagging(Bucket=bucket, Key="k", Tagging={"TagSet": []})
    assert code_of(e) == ("NotImplemented", 501)


def test_bucket_with_deep_keys_deletes_once_emptied(s3_of, alice, bucket_name, s3_cloud):
    """Deleting every object leaves a bucket empty, whatever folders the engine kept on disk."""
    s3 = s3_of(alice)
    s3.create_bucket(Bucket=bucket_name)
    keys = [f"d{i % 3}/sub{i % 2}/k{i}.txt" for i in range(30)]
    for key in keys:
        s3.put_object(Bucket=bucket_name, Key=key, Body=b"data")
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(10) as pool:  # as `aws s3 rm --recursive` does
        list(pool.map(lambda k: s3.delete_object(Bucket=bucket_name, Key=k), keys))
    s3.delete_bucket(Bucket=bucket_name)
    assert s3_cloud.storage.find_bucket(bucket_name) is None
