"""Canned ACLs on buckets and objects, the public access block and object ownership, as S3
defines them, checked for the owner, another account and anonymous callers through the
running server."""
from __future__ import annotations

import json

import pytest
import requests
from botocore.exceptions import ClientError

from emulator.storage.policy import ALL_USERS, AUTHENTICATED_USERS

from .conftest import code_of

pytestmark = pytest.mark.integration


def grants_of(acl: dict) -> set:
    return {(g["Grantee"].get("URI") or g["Grantee"].get("ID"), g["Permission"]) for g in acl["Grants"]}


def anon(method: str, url: str, **kw) -> int:
    return requests.request(method, url, timeout=30, **kw).status_code


def test_canned_bucket_acls_grant_what_s3_says(s3_of, alice, bob, bucket, s3_endpoint):
    a, b = s3_of(alice), s3_of(bob)
    a.put_object(Bucket=bucket, Key="k.txt", Body=b"alice's")
    url = f"{s3_endpoint}/{bucket}"
    assert grants_of(a.get_bucket_acl(Bucket=bucket)) == {(alice.id, "FULL_CONTROL")}
    assert anon("GET", url) == 403

    a.put_bucket_acl(Bucket=bucket, ACL="public-read")
    assert grants_of(a.get_bucket_acl(Bucket=bucket)) == {(alice.id, "FULL_CONTROL"), (ALL_USERS, "READ")}
    assert anon("GET", url) == 200                      # anyone lists...
    assert anon("GET", f"{url}/k.txt") == 403           # ...but the objects keep their own (private) ACL
    assert anon("PUT", f"{url}/anon.txt", data=b"x") == 403

    a.put_bucket_acl(Bucket=bucket, ACL="public-read-write")
    assert (ALL_USERS, "WRITE") in grants_of(a.get_bucket_acl(Bucket=bucket))
    assert anon("PUT", f"{url}/anon.txt", data=b"from nobody") == 200
    assert a.get_object(Bucket=bucket, Key="anon.txt")["Body"].read() == b"from nobody"
    assert alice.usage(bucket)["objects"] == 2          # counted against the owner
    assert anon("DELETE", f"{url}/anon.txt") == 204

    a.put_bucket_acl(Bucket=bucket, ACL="authenticated-read")
    assert grants_of(a.get_bucket_acl(Bucket=bucket)) == {(alice.id, "FULL_CONTROL"), (AUTHENTICATED_USERS, "READ")}
    assert anon("GET", url) == 403
    assert [o["Key"] for o in b.list_objects_v2(Bucket=bucket)["Contents"]] == ["k.txt"]
    with pytest.raises(ClientError) as e:
        b.put_object(Bucket=bucket, Key="bob.txt", Body=b"no")
    assert code_of(e) == ("AccessDenied", 403)
    with pytest.raises(ClientError) as e:             # reading the ACL is the owner's
        b.get_bucket_acl(Bucket=bucket)
    assert code_of(e) == ("AccessDenied", 403)
    with pytest.raises(ClientError) as e:
        b.put_bucket_acl(Bucket=bucket, ACL="public-read-write")
    assert code_of(e) == ("AccessDenied", 403)

    for canned in ("bucket-owner-read", "bucket-owner-full-control", "aws-exec-read", "private"):
        a.put_bucket_acl(Bucket=bucket, ACL=canned)
        assert anon("GET", url) == 403
        with pytest.raises(ClientError):
            b.list_objects_v2(Bucket=bucket)
    # the ACL as an AccessControlPolicy document, as a client that read it back sends it
    policy = a.get_bucket_acl(Bucket=bucket)
    policy.pop("ResponseMetadata")
    policy["Grants"].append({"Grantee": {"Type": "Group", "URI": ALL_USERS}, "Permission": "READ"})
    a.put_bucket_acl(Bucket=bucket, AccessControlPolicy=policy)
    assert anon("GET", url) == 200
    policy["Grants"].append({"Grantee": {"Type": "CanonicalUser", "ID": bob.id}, "Permission": "WRITE"})
    a.put_bucket_acl(Bucket=bucket, AccessControlPolicy=policy)   # explicit grants (test_s3_grants.py)
    b.put_object(Bucket=bucket, Key="from-bob", Body=b"x")
    assert anon("GET", url) == 200
    with pytest.raises(ClientError) as e:
        a.put_bucket_acl(Bucket=bucket, ACL="everyone")
    assert code_of(e)[1] == 400
    assert anon("GET", url) == 200                      # the refusals changed nothing


def test_bucket_created_with_a_canned_acl_and_ownership(s3_of, alice, bucket_name, s3_endpoint):
    a = s3_of(alice)
    a.create_bucket(Bucket=bucket_name, ACL="public-read", ObjectOwnership="BucketOwnerPreferred")
    try:
        assert anon("GET", f"{s3_endpoint}/{bucket_name}") == 200
        got = a.get_bucket_ownership_controls(Bucket=bucket_name)["OwnershipControls"]
        assert got == {"Rules": [{"ObjectOwnership": "BucketOwnerPreferred"}]}
    finally:
        alice.force_delete(bucket_name)
    with pytest.raises(ClientError) as e:
        a.create_bucket(Bucket=bucket_name, ACL="public-read", ObjectOwnership="BucketOwnerEnforced")
    assert code_of(e) == ("InvalidBucketAclWithObjectOwnership", 400)
    assert alice.gone(bucket_name)


def test_object_acls(s3_of, alice, bob, bucket, s3_endpoint):
    a, b = s3_of(alice), s3_of(bob)
    a.put_object(Bucket=bucket, Key="public.txt", Body=b"for everyone", ACL="public-read")
    a.put_object(Bucket=bucket, Key="members.txt", Body=b"for members", ACL="authenticated-read")
    a.put_object(Bucket=bucket, Key="private.txt", Body=b"mine")
    assert anon("GET", f"{s3_endpoint}/{bucket}/public.txt") == 200
    assert requests.get(f"{s3_endpoint}/{bucket}/public.txt", timeout=30).content == b"for everyone"
    assert anon("GET", f"{s3_endpoint}/{bucket}/members.txt") == 403
    assert b.get_object(Bucket=bucket, Key="members.txt")["Body"].read() == b"for members"
    for key in ("private.txt",):
        assert anon("GET", f"{s3_endpoint}/{bucket}/{key}") == 403
        with pytest.raises(ClientError):
            b.get_object(Bucket=bucket, Key=key)
    assert anon("GET", f"{s3_endpoint}/{bucket}") == 403      # an object ACL opens that object only
    assert grants_of(a.get_object_acl(Bucket=bucket, Key="public.txt")) == {(alice.id, "FULL_CONTROL"),
                                                                          (ALL_USERS, "READ")}
    a.put_object_acl(Bucket=bucket, Key="private.txt", ACL="public-read")
    assert anon("GET", f"{s3_endpoint}/{bucket}/private.txt") == 200
    a.put_object_acl(Bucket=bucket, Key="private.txt", ACL="private")
    assert anon("GET", f"{s3_endpoint}/{bucket}/private.txt") == 403
    # an overwrite without an ACL makes the object private again, as on S3
    a.put_object(Bucket=bucket, Key="public.txt", Body=b"now private")
    assert anon("GET", f"{s3_endpoint}/{bucket}/public.txt") == 403
    # a copy does not take the source's ACL
    a.put_object_acl(Bucket=bucket, Key="members.txt", ACL="public-read")
    a.copy_object(Bucket=bucket, Key="copied.txt", CopySource={"Bucket": bucket, "Key": "members.txt"})
    assert anon("GET", f"{s3_endpoint}/{bucket}/copied.txt") == 403
    with pytest.raises(ClientError) as e:
        b.put_object_acl(Bucket=bucket, Key="private.txt", ACL="public-read")
    assert code_of(e) == ("AccessDenied", 403)
    with pytest.raises(ClientError) as e:
        a.get_object_acl(Bucket=bucket, Key="missing")
    assert code_of(e) == ("NoSuchKey", 404)


def test_public_access_block(s3_of, alice, bucket, s3_endpoint, signed):
    a = s3_of(alice)
    a.put_object(Bucket=bucket, Key="o.txt", Body=b"o", ACL="public-read")
    with pytest.raises(ClientError) as e:
        a.get_public_access_block(Bucket=bucket)
    assert code_of(e) == ("NoSuchPublicAccessBlockConfiguration", 404)
    url = f"{s3_endpoint}/{bucket}/o.txt"
    assert anon("GET", url) == 200
    a.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration={"IgnorePublicAcls": True})
    assert a.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": False, "IgnorePublicAcls": True, "BlockPublicPolicy": False, "RestrictPublicBuckets": False}
    assert anon("GET", url) == 403                      # the public ACL is ignored...
    a.put_bucket_acl(Bucket=bucket, ACL="public-read")  # ...and may still be set
    assert anon("GET", f"{s3_endpoint}/{bucket}") == 403

    a.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": False, "BlockPublicPolicy": True, "RestrictPublicBuckets": False})
    for call in (lambda: a.put_bucket_acl(Bucket=bucket, ACL="public-read-write"),
                 lambda: a.put_object(Bucket=bucket, Key="p.txt", Body=b"p", ACL="public-read"),
                 lambda: a.put_object_acl(Bucket=bucket, Key="o.txt", ACL="authenticated-read"),
                 lambda: a.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Statement": [{
                     "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                     "Resource": f"arn:aws:s3:::{bucket}/*"}]}))):
        with pytest.raises(ClientError) as e:
            call()
        assert code_of(e) == ("AccessDenied", 403)
    status, body = alice.api("PUT", f"/buckets/{bucket}/access", json={"access": "public-read"})
    assert status == 403, body                          # the REST way to a public policy is blocked too
    with pytest.raises(ClientError):
        a.head_object(Bucket=bucket, Key="p.txt")
    assert anon("GET", url) == 200                      # existing public ACLs still count (not ignored now)

    # RestrictPublicBuckets: a public policy no longer opens the bucket to anyone
    a.delete_public_access_block(Bucket=bucket)
    a.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Statement": [{
        "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/*"}]}))
    a.put_object(Bucket=bucket, Key="by-policy.txt", Body=b"b")
    assert anon("GET", f"{s3_endpoint}/{bucket}/by-policy.txt") == 200
    a.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration={"RestrictPublicBuckets": True})
    assert anon("GET", f"{s3_endpoint}/{bucket}/by-policy.txt") == 403
    for doc in (b"<PublicAccessBlockConfiguration><BlockEverything>true</BlockEverything>"
                b"</PublicAccessBlockConfiguration>",
                b"<PublicAccessBlockConfiguration><BlockPublicAcls>maybe</BlockPublicAcls>"
                b"</PublicAccessBlockConfiguration>", b"<not-closed>"):
        r = signed(alice, "PUT", f"/{bucket}", [("publicAccessBlock", "")], doc)
        assert r.status_code == 400 and "<Code>MalformedXML</Code>" in r.text, r.text
    assert a.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]["RestrictPublicBuckets"]


def test_ownership_controls_disable_acls(s3_of, alice, bob, bucket, s3_endpoint):
    a = s3_of(alice)
    with pytest.raises(ClientError) as e:
        a.get_bucket_ownership_controls(Bucket=bucket)
    assert code_of(e) == ("OwnershipControlsNotFoundError", 404)
    a.put_object(Bucket=bucket, Key="o.txt", Body=b"o", ACL="public-read")
    a.put_bucket_ownership_controls(Bucket=bucket, OwnershipControls={
        "Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]})
    assert a.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]["Rules"] == [
        {"ObjectOwnership": "BucketOwnerEnforced"}]
    assert anon("GET", f"{s3_endpoint}/{bucket}/o.txt") == 403       # ACLs no longer count
    assert grants_of(a.get_object_acl(Bucket=bucket, Key="o.txt")) == {(alice.id, "FULL_CONTROL")}
    for call in (lambda: a.put_bucket_acl(Bucket=bucket, ACL="public-read"),
                 lambda: a.put_object(Bucket=bucket, Key="p.txt", Body=b"p", ACL="public-read")):
        with pytest.raises(ClientError) as e:
            call()
        assert code_of(e) == ("AccessControlListNotSupported", 400)
    a.put_object(Bucket=bucket, Key="p.txt", Body=b"p", ACL="bucket-owner-full-control")  # still accepted
    with pytest.raises(ClientError) as e:
        a.put_bucket_ownership_controls(Bucket=bucket, OwnershipControls={"Rules": [{"ObjectOwnership": "Nobody"}]})
    assert code_of(e) == ("MalformedXML", 400)
    with pytest.raises(ClientError) as e:
        s3_of(bob).delete_bucket_ownership_controls(Bucket=bucket)
    assert code_of(e) == ("AccessDenied", 403)
    a.put_bucket_ownership_controls(Bucket=bucket, OwnershipControls={"Rules": [{"ObjectOwnership": "ObjectWriter"}]})
    assert anon("GET", f"{s3_endpoint}/{bucket}/o.txt") == 200       # ACLs count again
    a.delete_bucket_ownership_controls(Bucket=bucket)
    with pytest.raises(ClientError):
        a.get_bucket_ownership_controls(Bucket=bucket)
