"""Conditional requests with unmodified boto3, on every engine the suite runs on, compared with
S3's documented answers: reads 304/412, copy sources 412, conditional writes (PutObject,
CopyObject, CompleteMultipartUpload) 412 / 404 with nothing changed."""
from __future__ import annotations

import datetime as dt

import pytest
from botocore.exceptions import ClientError

from .conftest import code_of

pytestmark = pytest.mark.integration

PAST = dt.datetime(2001, 1, 1, tzinfo=dt.timezone.utc)
FUTURE = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1)


def status_of(exc_info) -> int:
    return exc_info.value.response["ResponseMetadata"]["HTTPStatusCode"]


def test_conditional_reads(s3_of, alice, bucket):
    s3 = s3_of(alice)
    etag = s3.put_object(Bucket=bucket, Key="k", Body=b"0123456789")["ETag"]
    assert s3.get_object(Bucket=bucket, Key="k", IfMatch=etag)["Body"].read() == b"0123456789"
    assert s3.get_object(Bucket=bucket, Key="k", IfNoneMatch='"other"', IfModifiedSince=FUTURE)["ContentLength"] == 10
    part = s3.get_object(Bucket=bucket, Key="k", IfMatch=etag, Range="bytes=2-4")
    assert part["Body"].read() == b"234" and part["ResponseMetadata"]["HTTPStatusCode"] == 206
    for op in (s3.get_object, s3.head_object):
        for kw, status in (({"IfMatch": '"other"'}, 412), ({"IfUnmodifiedSince": PAST}, 412),
                           ({"IfNoneMatch": etag}, 304), ({"IfModifiedSince": FUTURE}, 304),
                           ({"IfNoneMatch": "*"}, 304)):
            with pytest.raises(ClientError) as e:
                op(Bucket=bucket, Key="k", **kw)
            assert status_of(e) == status, (op, kw)
            if status == 412 and op is s3.get_object:
                assert code_of(e) == ("PreconditionFailed", 412)
    # If-Match true beats If-Unmodified-Since false; If-None-Match false beats If-Modified-Since true
    assert s3.head_object(Bucket=bucket, Key="k", IfMatch=etag, IfUnmodifiedSince=PAST)["ETag"] == etag
    assert s3.head_object(Bucket=bucket, Key="k", IfNoneMatch='"x"', IfModifiedSince=FUTURE)["ETag"] == etag


def test_conditional_copy_source_and_destination(s3_of, alice, bucket):
    s3 = s3_of(alice)
    etag = s3.put_object(Bucket=bucket, Key="src", Body=b"source")["ETag"]
    src = {"Bucket": bucket, "Key": "src"}
    s3.copy_object(Bucket=bucket, Key="dst", CopySource=src, CopySourceIfMatch=etag)
    for kw in ({"CopySourceIfMatch": '"x"'}, {"CopySourceIfNoneMatch": etag},
               {"CopySourceIfModifiedSince": FUTURE}, {"CopySourceIfUnmodifiedSince": PAST}):
        with pytest.raises(ClientError) as e:
            s3.copy_object(Bucket=bucket, Key="other", CopySource=src, **kw)
        assert code_of(e) == ("PreconditionFailed", 412), kw
    with pytest.raises(ClientError) as e:
        s3.copy_object(Bucket=bucket, Key="dst", CopySource=src, IfNoneMatch="*")
    assert code_of(e) == ("PreconditionFailed", 412)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert keys == ["dst", "src"]   # no 'other' appeared


def test_conditional_writes(s3_of, alice, bucket):
    s3 = s3_of(alice)
    first = s3.put_object(Bucket=bucket, Key="once", Body=b"first", IfNoneMatch="*")["ETag"]
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="once", Body=b"second", IfNoneMatch="*")
    assert code_of(e) == ("PreconditionFailed", 412)
    assert s3.get_object(Bucket=bucket, Key="once")["Body"].read() == b"first"
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="once", Body=b"second", IfMatch='"0000"')
    assert code_of(e) == ("PreconditionFailed", 412)
    second = s3.put_object(Bucket=bucket, Key="once", Body=b"second", IfMatch=first)["ETag"]
    assert second != first and s3.get_object(Bucket=bucket, Key="once")["Body"].read() == b"second"
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="missing", Body=b"x", IfMatch=first)
    assert code_of(e) == ("NoSuchKey", 404)
    # CompleteMultipartUpload: refused while the key exists; the upload stays, and completes without it
    up = s3.create_multipart_upload(Bucket=bucket, Key="once")["UploadId"]
    part = s3.upload_part(Bucket=bucket, Key="once", UploadId=up, PartNumber=1, Body=b"parts")["ETag"]
    parts = {"Parts": [{"PartNumber": 1, "ETag": part}]}
    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(Bucket=bucket, Key="once", UploadId=up, MultipartUpload=parts, IfNoneMatch="*")
    assert code_of(e) == ("PreconditionFailed", 412)
    assert s3.get_object(Bucket=bucket, Key="once")["Body"].read() == b"second"
    s3.complete_multipart_upload(Bucket=bucket, Key="once", UploadId=up, MultipartUpload=parts, IfMatch=second)
    assert s3.get_object(Bucket=bucket, Key="once")["Body"].read() == b"parts"


def test_conditions_of_others_change_nothing(s3_of, alice, bob, bucket):
    s3_of(alice).put_object(Bucket=bucket, Key="k", Body=b"mine")
    with pytest.raises(ClientError) as e:
        s3_of(bob).put_object(Bucket=bucket, Key="k", Body=b"theirs", IfNoneMatch="*")
    assert code_of(e) == ("AccessDenied", 403)   # access is decided before any condition
    with pytest.raises(ClientError) as e:
        s3_of(bob).head_object(Bucket=bucket, Key="k", IfNoneMatch="*")
    assert status_of(e) == 403


def test_concurrent_create_only_writes_one_wins(s3_of, alice, bucket):
    """Eight writers race to create one key with If-None-Match: *: exactly one succeeds."""
    from concurrent.futures import ThreadPoolExecutor

    def attempt(i: int) -> int:
        try:
            s3_of(alice).put_object(Bucket=bucket, Key="lock", Body=f"writer {i}".encode(), IfNoneMatch="*")
            return 200
        except ClientError as e:
            return status_of_error(e)

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(attempt, range(8)))
    assert sorted(outcomes) == [200] + [412] * 7, outcomes
    body = s3_of(alice).get_object(Bucket=bucket, Key="lock")["Body"].read()
    assert body.startswith(b"writer ")


def status_of_error(e: ClientError) -> int:
    return e.response["ResponseMetadata"]["HTTPStatusCode"]
