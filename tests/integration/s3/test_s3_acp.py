"""READ_ACP / WRITE_ACP grants (FULL_CONTROL has both) on buckets and objects as S3 defines
them: reading and replacing that ACL, nothing else; checked with other accounts and anonymous
callers through the running server, on every engine the suite runs on (the gateway decides;
the engine only ever sees the cloud's root credentials)."""
from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from emulator.storage import ALL_USERS, AUTHENTICATED_USERS

from .conftest import anon, code_of, denied, grants_of

pytestmark = pytest.mark.integration


def test_acp_grants_on_a_bucket(s3_of, alice, bob, tenant, bucket, s3_endpoint):
    carol, dave = tenant("carol"), tenant("dave")
    a, b, c, d = s3_of(alice), s3_of(bob), s3_of(carol), s3_of(dave)
    a.put_object(Bucket=bucket, Key="k", Body=b"alice's")
    a.put_bucket_acl(Bucket=bucket, GrantReadACP=f'id="{bob.id}"', GrantWriteACP=f'id="{carol.id}"',
                     GrantFullControl=f'id="{dave.id}"')
    expected = {(alice.id, "FULL_CONTROL"), (bob.id, "READ_ACP"), (carol.id, "WRITE_ACP"), (dave.id, "FULL_CONTROL")}
    # READ_ACP: reading the bucket's ACL, and nothing else
    got = b.get_bucket_acl(Bucket=bucket)
    assert grants_of(got) == expected and got["Owner"]["ID"] == alice.id
    for call in (lambda: b.put_bucket_acl(Bucket=bucket, ACL="public-read"), lambda: b.list_objects_v2(Bucket=bucket),
                 lambda: b.get_object(Bucket=bucket, Key="k"), lambda: b.put_object(Bucket=bucket, Key="b", Body=b"")):
        denied(call)
    # FULL_CONTROL: both, and what READ and WRITE give on a bucket (list, write)
    assert grants_of(d.get_bucket_acl(Bucket=bucket)) == expected
    assert [o["Key"] for o in d.list_objects_v2(Bucket=bucket)["Contents"]] == ["k"]
    d.put_object(Bucket=bucket, Key="from-dave", Body=b"d")
    denied(lambda: d.get_object(Bucket=bucket, Key="k"))      # objects keep their own ACL
    # WRITE_ACP: replacing the ACL (blind: reading it is READ_ACP), and nothing else
    denied(lambda: c.get_bucket_acl(Bucket=bucket))
    denied(lambda: c.list_objects_v2(Bucket=bucket))
    c.put_bucket_acl(Bucket=bucket, GrantRead=f'id="{carol.id}"', GrantWriteACP=f'id="{carol.id}"')
    assert [o["Key"] for o in c.list_objects_v2(Bucket=bucket)["Contents"]] == ["from-dave", "k"]
    got = a.get_bucket_acl(Bucket=bucket)                      # the owner stays; the grants are carol's
    assert got["Owner"]["ID"] == alice.id
    assert grants_of(got) == {(alice.id, "FULL_CONTROL"), (carol.id, "READ"), (carol.id, "WRITE_ACP")}
    denied(lambda: b.get_bucket_acl(Bucket=bucket))            # bob's READ_ACP went with the old ACL
    denied(lambda: d.list_objects_v2(Bucket=bucket))
    # groups: anyone, any signed-in account
    url = f"{s3_endpoint}/{bucket}?acl"
    assert anon("GET", url).status_code == 403
    a.put_bucket_acl(Bucket=bucket, GrantReadACP=f'uri="{AUTHENTICATED_USERS}"')
    assert anon("GET", url).status_code == 403
    assert grants_of(b.get_bucket_acl(Bucket=bucket)) == {(alice.id, "FULL_CONTROL"), (AUTHENTICATED_USERS, "READ_ACP")}
    a.put_bucket_acl(Bucket=bucket, GrantReadACP=f'uri="{ALL_USERS}"')
    r = anon("GET", url)
    assert r.status_code == 200 and ALL_USERS in r.text and "READ_ACP" in r.text
    assert anon("GET", f"{s3_endpoint}/{bucket}?list-type=2").status_code == 403
    assert anon("PUT", url, headers={"x-amz-acl": "public-read-write"}).status_code == 403
    a.put_bucket_acl(Bucket=bucket, GrantWriteACP=f'uri="{ALL_USERS}"')
    assert anon("GET", url).status_code == 403                 # WRITE_ACP alone does not read it
    assert anon("PUT", url, headers={"x-amz-acl": "public-read"}).status_code == 200
    assert anon("GET", f"{s3_endpoint}/{bucket}?list-type=2").status_code == 200
    assert grants_of(a.get_bucket_acl(Bucket=bucket)) == {(alice.id, "FULL_CONTROL"), (ALL_USERS, "READ")}
    # BucketOwnerEnforced: ACLs off, their grants too
    a.put_bucket_acl(Bucket=bucket, GrantReadACP=f'id="{bob.id}"')
    a.put_bucket_ownership_controls(Bucket=bucket, OwnershipControls={
        "Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]})
    denied(lambda: b.get_bucket_acl(Bucket=bucket))
    assert grants_of(a.get_bucket_acl(Bucket=bucket)) == {(alice.id, "FULL_CONTROL")}


def test_acp_grants_on_an_object(s3_of, alice, bob, tenant, bucket, s3_endpoint):
    carol, dave = tenant("carol"), tenant("dave")
    a, b, c, d = s3_of(alice), s3_of(bob), s3_of(carol), s3_of(dave)
    a.put_object(Bucket=bucket, Key="o", Body=b"alice's", GrantReadACP=f'id="{bob.id}"',
                 GrantWriteACP=f'id="{carol.id}"', GrantFullControl=f'id="{dave.id}"')
    a.put_object(Bucket=bucket, Key="plain", Body=b"p")
    expected = {(alice.id, "FULL_CONTROL"), (bob.id, "READ_ACP"), (carol.id, "WRITE_ACP"), (dave.id, "FULL_CONTROL")}
    got = b.get_object_acl(Bucket=bucket, Key="o")
    assert grants_of(got) == expected and got["Owner"]["ID"] == alice.id
    for call in (lambda: b.get_object(Bucket=bucket, Key="o"), lambda: b.head_object(Bucket=bucket, Key="o"),
                 lambda: b.put_object_acl(Bucket=bucket, Key="o", ACL="public-read"),
                 lambda: b.get_object_acl(Bucket=bucket, Key="plain")):   # an object grant is that object's
        with pytest.raises(ClientError) as e:
            call()
        assert code_of(e)[1] == 403
    # FULL_CONTROL on an object: read it and its ACL, write its ACL; not overwrite or delete it
    assert d.get_object(Bucket=bucket, Key="o")["Body"].read() == b"alice's"
    assert grants_of(d.get_object_acl(Bucket=bucket, Key="o")) == expected
    denied(lambda: d.put_object(Bucket=bucket, Key="o", Body=b"dave's"))
    denied(lambda: d.delete_object(Bucket=bucket, Key="o"))
    # WRITE_ACP: replace the ACL; the owner stays alice
    denied(lambda: c.get_object_acl(Bucket=bucket, Key="o"))
    denied(lambda: c.get_object(Bucket=bucket, Key="o"))
    assert anon("GET", f"{s3_endpoint}/{bucket}/o").status_code == 403
    c.put_object_acl(Bucket=bucket, Key="o", ACL="public-read")
    assert anon("GET", f"{s3_endpoint}/{bucket}/o").content == b"alice's"
    got = a.get_object_acl(Bucket=bucket, Key="o")
    assert got["Owner"]["ID"] == alice.id and grants_of(got) == {(alice.id, "FULL_CONTROL"), (ALL_USERS, "READ")}
    denied(lambda: c.put_object_acl(Bucket=bucket, Key="o", ACL="private"))   # its WRITE_ACP is gone with it
    # a bucket's READ_ACP is the bucket's ACL only
    a.put_bucket_acl(Bucket=bucket, GrantReadACP=f'id="{bob.id}"')
    b.get_bucket_acl(Bucket=bucket)
    denied(lambda: b.get_object_acl(Bucket=bucket, Key="plain"))
    # groups on an object: anonymous reads the ACL, not the object
    a.put_object_acl(Bucket=bucket, Key="plain", GrantReadACP=f'uri="{ALL_USERS}"')
    assert anon("GET", f"{s3_endpoint}/{bucket}/plain?acl").status_code == 200
    assert anon("GET", f"{s3_endpoint}/{bucket}/plain").status_code == 403
    assert anon("PUT", f"{s3_endpoint}/{bucket}/plain?acl", headers={"x-amz-acl": "public-read"}).status_code == 403
    with pytest.raises(ClientError) as e:                     # a missing key is 404 for whoever may ask...
        a.get_object_acl(Bucket=bucket, Key="missing")
    assert code_of(e) == ("NoSuchKey", 404)
    for call in (lambda: b.get_object_acl(Bucket=bucket, Key="missing"),   # ...and AccessDenied for others
                 lambda: b.put_object_acl(Bucket=bucket, Key="missing", ACL="public-read")):
        denied(call)
    assert anon("GET", f"{s3_endpoint}/{bucket}/missing?acl").status_code == 403
