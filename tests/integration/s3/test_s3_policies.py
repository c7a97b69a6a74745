"""Bucket policies as S3 evaluates them, over HTTP with boto3 and anonymous requests, on every
engine the suite runs on: explicit Deny, the condition operators people use (and IfExists),
principals as pocketcloud account ids, GetBucketPolicyStatus; cross-account and anonymous
callers for each form."""
from __future__ import annotations

import json

import pytest
import requests
from botocore.exceptions import ClientError

from .conftest import code_of

pytestmark = pytest.mark.integration


def put_policy(s3, bucket, *statements):
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": list(statements)}))


def denied(call) -> bool:
    try:
        call()
    except ClientError as e:
        assert (e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]) == ("AccessDenied", 403)
        return True
    return False


def test_deny_insecure_transport_binds_the_owner_too_but_not_over_its_policy(s3_of, alice, bucket):
    s3 = s3_of(alice)
    s3.put_object(Bucket=bucket, Key="k", Body=b"1")
    put_policy(s3, bucket, {"Sid": "TLSOnly", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
                            "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
                            "Condition": {"Bool": {"aws:SecureTransport": "false"}}})
    assert denied(lambda: s3.get_object(Bucket=bucket, Key="k"))      # this endpoint is plain HTTP
    assert denied(lambda: s3.put_object(Bucket=bucket, Key="k2", Body=b"2"))
    assert denied(lambda: s3.list_objects_v2(Bucket=bucket))
    assert s3.get_bucket_policy_status(Bucket=bucket)["PolicyStatus"]["IsPublic"] is False
    s3.delete_bucket_policy(Bucket=bucket)                            # the owner can always undo it
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"1"


def test_conditions_on_source_ip_prefix_max_keys_and_time(s3_of, alice, bob, bucket, s3_endpoint):
    s3, theirs = s3_of(alice), s3_of(bob)
    for key in ("pub/a", "pub/b", "bob/x", "secret"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"1")
    arn = f"arn:aws:s3:::{bucket}"
    put_policy(s3, bucket,
               {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"{arn}/pub/*",
                "Condition": {"IpAddress": {"aws:SourceIp": "127.0.0.0/8"}}},
               {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"{arn}/secret",
                "Condition": {"NotIpAddress": {"aws:SourceIp": "127.0.0.0/8"}}},
               {"Effect": "Allow", "Principal": {"AWS": bob.id}, "Action": "s3:ListBucket", "Resource": arn,
                "Condition": {"StringLike": {"s3:prefix": "bob/*"}, "NumericLessThanIfExists": {"s3:max-keys": "10"}}},
               {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{bob.id}:root"}, "Action": "s3:GetObject",
                "Resource": f"{arn}/bob/*", "Condition": {"DateLessThan": {"aws:CurrentTime": "2999-01-01T00:00:00Z"}}},
               {"Effect": "Allow", "Principal": {"AWS": bob.id}, "Action": "s3:PutObject", "Resource": f"{arn}/bob/*",
                "Condition": {"DateLessThan": {"aws:CurrentTime": "2001-01-01T00:00:00Z"}}})
    assert requests.get(f"{s3_endpoint}/{bucket}/pub/a", timeout=30).status_code == 200   # from 127.0.0.1
    assert requests.get(f"{s3_endpoint}/{bucket}/secret", timeout=30).status_code == 403
    assert requests.get(f"{s3_endpoint}/{bucket}?list-type=2", timeout=30).status_code == 403
    assert [o["Key"] for o in theirs.list_objects_v2(Bucket=bucket, Prefix="bob/", MaxKeys=5)["Contents"]] == ["bob/x"]
    assert denied(lambda: theirs.list_objects_v2(Bucket=bucket, Prefix="bob/", MaxKeys=50))
    assert denied(lambda: theirs.list_objects_v2(Bucket=bucket))                     # no prefix: no s3:prefix
    assert theirs.get_object(Bucket=bucket, Key="bob/x")["Body"].read() == b"1"
    assert theirs.get_object(Bucket=bucket, Key="pub/b")["Body"].read() == b"1"   # '*' is signed callers too
    assert denied(lambda: theirs.put_object(Bucket=bucket, Key="bob/new", Body=b"x"))   # expired
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["bob/x", "pub/a", "pub/b", "secret"]
    assert s3.get_bucket_policy_status(Bucket=bucket)["PolicyStatus"]["IsPublic"] is False   # '*' pinned to IPs
    with pytest.raises(ClientError) as e:
        theirs.get_bucket_policy_status(Bucket=bucket)
    assert code_of(e) == ("AccessDenied", 403)
    assert denied(lambda: theirs.delete_bucket_policy(Bucket=bucket))


def test_deny_beats_allow_and_string_equals(s3_of, alice, bob, bucket, s3_endpoint):
    s3, theirs = s3_of(alice), s3_of(bob)
    s3.put_object(Bucket=bucket, Key="open", Body=b"1")
    s3.put_object(Bucket=bucket, Key="closed", Body=b"1")
    arn = f"arn:aws:s3:::{bucket}"
    put_policy(s3, bucket,
               {"Effect": "Allow", "Principal": "*", "Action": ["s3:GetObject", "s3:PutObject"], "Resource": f"{arn}/*"},
               {"Effect": "Deny", "Principal": "*", "Action": "s3:GetObject", "Resource": f"{arn}/closed"},
               {"Effect": "Deny", "Principal": "*", "Action": "s3:PutObject", "Resource": f"{arn}/*",
                "Condition": {"StringNotEquals": {"s3:x-amz-acl": "bucket-owner-full-control"}}})
    assert s3.get_bucket_policy_status(Bucket=bucket)["PolicyStatus"]["IsPublic"] is True
    assert requests.get(f"{s3_endpoint}/{bucket}/open", timeout=30).status_code == 200
    assert requests.get(f"{s3_endpoint}/{bucket}/closed", timeout=30).status_code == 403
    assert denied(lambda: s3.get_object(Bucket=bucket, Key="closed"))              # Deny binds the owner too
    assert denied(lambda: theirs.put_object(Bucket=bucket, Key="b", Body=b"x"))
    theirs.put_object(Bucket=bucket, Key="b", Body=b"x", ACL="bucket-owner-full-control")
    assert s3.get_object(Bucket=bucket, Key="b")["Body"].read() == b"x"
    with pytest.raises(ClientError) as e:
        put_policy(s3, bucket, {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                                "Resource": f"{arn}/*", "Condition": {"StringSortOf": {"s3:prefix": "x"}}})
    assert code_of(e) == ("MalformedPolicy", 400)
    with pytest.raises(ClientError) as e:
        put_policy(s3, bucket, {"Effect": "Allow", "Principal": {"AWS": "999999999999"}, "Action": "s3:GetObject",
                                "Resource": f"{arn}/*"})
    assert code_of(e)[1] == 400   # no such account


def test_copy_source_is_checked_as_its_own_object(s3_of, alice, bob, bucket, tenant):
    a, b = s3_of(alice), s3_of(bob)
    a.put_object(Bucket=bucket, Key="shared/x", Body=b"shared")
    a.put_object(Bucket=bucket, Key="private/y", Body=b"private")
    put_policy(a, bucket, {"Effect": "Allow", "Principal": {"AWS": bob.id}, "Action": "s3:GetObject",
                           "Resource": f"arn:aws:s3:::{bucket}/shared/*"})
    mine = f"bob-{bucket}"
    b.create_bucket(Bucket=mine)
    try:
        b.copy_object(Bucket=mine, Key="private/y", CopySource={"Bucket": bucket, "Key": "shared/x"})
        assert b.get_object(Bucket=mine, Key="private/y")["Body"].read() == b"shared"
        assert denied(lambda: b.copy_object(Bucket=mine, Key="shared/x",
                                            CopySource={"Bucket": bucket, "Key": "private/y"}))
    finally:
        bob.force_delete(mine)
