"""Explicit ACL grants (x-amz-grant-* headers and AccessControlPolicy documents) on buckets and
objects, as S3 defines them, with cross-account and anonymous callers, on every engine the
suite runs on; and every canned ACL on an object."""
from __future__ import annotations

import pytest
import requests
from botocore.exceptions import ClientError

from emulator.storage import ALL_USERS, AUTHENTICATED_USERS

from .conftest import code_of

pytestmark = pytest.mark.integration


def grants_of(acl: dict) -> set[tuple[str, str]]:
    return {(g["Grantee"].get("ID") or g["Grantee"].get("URI"), g["Permission"]) for g in acl["Grants"]}


def test_explicit_grants_on_objects(s3_of, alice, bob, tenant, bucket, s3_endpoint):
    carol = tenant("carol")
    a, b, c = s3_of(alice), s3_of(bob), s3_of(carol)
    a.put_object(Bucket=bucket, Key="for-bob", Body=b"hi bob", GrantRead=f'id="{bob.id}"')
    assert b.get_object(Bucket=bucket, Key="for-bob")["Body"].read() == b"hi bob"
    for caller in (lambda: c.get_object(Bucket=bucket, Key="for-bob"),
                   lambda: b.list_objects_v2(Bucket=bucket),                 # an object grant opens that object only
                   lambda: b.put_object(Bucket=bucket, Key="for-bob", Body=b"x")):
        with pytest.raises(ClientError) as e:
            caller()
        assert code_of(e) == ("AccessDenied", 403)
    assert requests.get(f"{s3_endpoint}/{bucket}/for-bob", timeout=30).status_code == 403
    assert grants_of(a.get_object_acl(Bucket=bucket, Key="for-bob")) == {(alice.id, "FULL_CONTROL"), (bob.id, "READ")}
    # an AccessControlPolicy with grants that are no canned ACL's
    owner = {"ID": alice.id}
    a.put_object_acl(Bucket=bucket, Key="for-bob", AccessControlPolicy={"Owner": owner, "Grants": [
        {"Grantee": {"Type": "CanonicalUser", "ID": alice.id}, "Permission": "FULL_CONTROL"},
        {"Grantee": {"Type": "CanonicalUser", "ID": carol.id}, "Permission": "FULL_CONTROL"},
        {"Grantee": {"Type": "Group", "URI": AUTHENTICATED_USERS}, "Permission": "READ_ACP"}]})
    assert c.get_object(Bucket=bucket, Key="for-bob")["Body"].read() == b"hi bob"
    with pytest.raises(ClientError):
        b.get_object(Bucket=bucket, Key="for-bob")
    assert grants_of(a.get_object_acl(Bucket=bucket, Key="for-bob")) == {
        (alice.id, "FULL_CONTROL"), (carol.id, "FULL_CONTROL"), (AUTHENTICATED_USERS, "READ_ACP")}
    # public through a group grant
    a.put_object(Bucket=bucket, Key="everyone", Body=b"1", GrantRead=f'uri="{ALL_USERS}"')
    assert requests.get(f"{s3_endpoint}/{bucket}/everyone", timeout=30).status_code == 200
    # refused: unknown account, e-mail grantees, canned and grants together, garbage
    for kw, code in (({"GrantRead": 'id="999999999999"'}, "InvalidArgument"),
                     ({"GrantRead": 'emailAddress="x@example.com"'}, "NotImplemented"),
                     ({"GrantRead": f'id="{bob.id}"', "ACL": "public-read"}, "InvalidRequest"),
                     ({"GrantRead": "nonsense"}, "InvalidArgument"),
                     ({"GrantRead": 'uri="http://acs.amazonaws.com/groups/global/Everyone"'}, "InvalidArgument")):
        with pytest.raises(ClientError) as e:
            a.put_object(Bucket=bucket, Key="refused", Body=b"x", **kw)
        assert code_of(e)[0] == code, kw
    assert "Contents" not in a.list_objects_v2(Bucket=bucket, Prefix="refused")


def test_explicit_grants_on_buckets(s3_of, alice, bob, tenant, bucket, s3_endpoint):
    carol = tenant("carol")
    a, b, c = s3_of(alice), s3_of(bob), s3_of(carol)
    a.put_object(Bucket=bucket, Key="k", Body=b"1")
    a.put_bucket_acl(Bucket=bucket, GrantRead=f'id="{bob.id}"', GrantWrite=f'id="{carol.id}"')
    assert [o["Key"] for o in b.list_objects_v2(Bucket=bucket)["Contents"]] == ["k"]
    with pytest.raises(ClientError):
        b.put_object(Bucket=bucket, Key="b", Body=b"x")
    c.put_object(Bucket=bucket, Key="from-carol", Body=b"x")
    with pytest.raises(ClientError):
        c.list_objects_v2(Bucket=bucket)
    assert grants_of(a.get_bucket_acl(Bucket=bucket)) >= {(alice.id, "FULL_CONTROL"), (bob.id, "READ"),
                                                          (carol.id, "WRITE")}
    assert requests.get(f"{s3_endpoint}/{bucket}?list-type=2", timeout=30).status_code == 403
    with pytest.raises(ClientError) as e:
        b.put_bucket_acl(Bucket=bucket, GrantFullControl=f'id="{bob.id}"')
    assert code_of(e) == ("AccessDenied", 403)
    a.put_bucket_acl(Bucket=bucket, ACL="private")
    with pytest.raises(ClientError):
        b.list_objects_v2(Bucket=bucket)


@pytest.mark.parametrize("acl, anonymous, other", [
    ("private", 403, False), ("public-read", 200, True), ("public-read-write", 200, True),
    ("authenticated-read", 403, True), ("bucket-owner-read", 403, False), ("bucket-owner-full-control", 403, False),
])
def test_every_canned_object_acl(s3_of, alice, bob, bucket, s3_endpoint, acl, anonymous, other):
    a, b = s3_of(alice), s3_of(bob)
    a.put_object(Bucket=bucket, Key="o", Body=b"1", ACL=acl)
    assert requests.get(f"{s3_endpoint}/{bucket}/o", timeout=30).status_code == anonymous
    try:
        b.get_object(Bucket=bucket, Key="o")
        read = True
    except ClientError as e:
        assert e.response["Error"]["Code"] == "AccessDenied"
        read = False
    assert read == other
    assert a.get_object(Bucket=bucket, Key="o")["Body"].read() == b"1"   # the owner, whatever the ACL
