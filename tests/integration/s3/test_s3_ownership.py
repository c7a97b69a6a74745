"""Object ownership (ObjectWriter, BucketOwnerPreferred, BucketOwnerEnforced) as S3 defines it:
who owns an object another account writes, and what that owner, the bucket's owner and the
bucket's grants may then do with it; through the running server with other accounts and
anonymous callers, on every engine the suite runs on."""
from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from .conftest import anon, code_of, denied, grants_of

pytestmark = pytest.mark.integration


def ownership_bucket(s3, name: str, mode: str, writer) -> None:
    """A bucket with `mode` ownership whose ACL lets `writer` list and write."""
    s3.create_bucket(Bucket=name, ObjectOwnership=mode)
    s3.put_bucket_acl(Bucket=name, GrantRead=f'id="{writer.id}"', GrantWrite=f'id="{writer.id}"')


def test_object_writer_owns_what_it_writes(s3_of, alice, bob, tenant, bucket_name, s3_endpoint):
    carol = tenant("carol")
    a, b, c = s3_of(alice), s3_of(bob), s3_of(carol)
    ownership_bucket(a, bucket_name, "ObjectWriter", bob)
    try:
        a.put_bucket_policy(Bucket=bucket_name, Policy=(
            '{"Statement": [{"Effect": "Allow", "Principal": {"AWS": "%s"}, "Action": "s3:GetObject", '
            '"Resource": "arn:aws:s3:::%s/*"}]}' % (carol.id, bucket_name)))
        a.put_object(Bucket=bucket_name, Key="alices", Body=b"a")
        b.put_object(Bucket=bucket_name, Key="bobs", Body=b"b")
        got = b.get_object_acl(Bucket=bucket_name, Key="bobs")
        assert got["Owner"]["ID"] == bob.id and grants_of(got) == {(bob.id, "FULL_CONTROL")}
        assert b.get_object(Bucket=bucket_name, Key="bobs")["Body"].read() == b"b"
        # the bucket's owner lists it but may not read it; the bucket's policy does not reach it
        for call in (lambda: a.get_object(Bucket=bucket_name, Key="bobs"),
                     lambda: a.head_object(Bucket=bucket_name, Key="bobs"),
                     lambda: a.get_object_acl(Bucket=bucket_name, Key="bobs"),
                     lambda: a.copy_object(Bucket=bucket_name, Key="stolen", CopySource=f"{bucket_name}/bobs"),
                     lambda: c.get_object(Bucket=bucket_name, Key="bobs")):
            with pytest.raises(ClientError) as e:
                call()
            assert code_of(e)[1] == 403
        assert c.get_object(Bucket=bucket_name, Key="alices")["Body"].read() == b"a"
        # its tags are its owner's too
        b.put_object_tagging(Bucket=bucket_name, Key="bobs", Tagging={"TagSet": [{"Key": "by", "Value": "bob"}]})
        assert b.get_object_tagging(Bucket=bucket_name, Key="bobs")["TagSet"] == [{"Key": "by", "Value": "bob"}]
        denied(lambda: a.get_object_tagging(Bucket=bucket_name, Key="bobs"))
        denied(lambda: a.put_object_tagging(Bucket=bucket_name, Key="bobs", Tagging={"TagSet": []}))
        listed = a.list_objects_v2(Bucket=bucket_name, FetchOwner=True)["Contents"]
        assert {o["Key"]: o["Owner"]["ID"] for o in listed} == {"alices": alice.id, "bobs": bob.id}
        # bucket-owner-read / bucket-owner-full-control grant the bucket's owner what they say
        b.put_object(Bucket=bucket_name, Key="readable", Body=b"r", ACL="bucket-owner-read")
        assert a.get_object(Bucket=bucket_name, Key="readable")["Body"].read() == b"r"
        denied(lambda: a.get_object_acl(Bucket=bucket_name, Key="readable"))
        b.put_object(Bucket=bucket_name, Key="full", Body=b"f", ACL="bucket-owner-full-control")
        got = a.get_object_acl(Bucket=bucket_name, Key="full")
        assert got["Owner"]["ID"] == bob.id
        assert grants_of(got) == {(bob.id, "FULL_CONTROL"), (alice.id, "FULL_CONTROL")}
        a.put_object_acl(Bucket=bucket_name, Key="full", ACL="public-read")      # FULL_CONTROL: WRITE_ACP
        assert anon("GET", f"{s3_endpoint}/{bucket_name}/full").content == b"f"
        denied(lambda: a.get_object_acl(Bucket=bucket_name, Key="full"))  # alice's grant went with that ACL
        assert b.get_object_acl(Bucket=bucket_name, Key="full")["Owner"]["ID"] == bob.id
        # copies and multipart uploads are their writer's too
        b.copy_object(Bucket=bucket_name, Key="bobs-copy", CopySource=f"{bucket_name}/bobs")
        up = b.create_multipart_upload(Bucket=bucket_name, Key="bobs-parts")
        etag = b.upload_part(Bucket=bucket_name, Key="bobs-parts", UploadId=up["UploadId"], PartNumber=1,
                             Body=b"m")["ETag"]
        b.complete_multipart_upload(Bucket=bucket_name, Key="bobs-parts", UploadId=up["UploadId"],
                                    MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})
        for key in ("bobs-copy", "bobs-parts"):
            assert b.get_object_acl(Bucket=bucket_name, Key=key)["Owner"]["ID"] == bob.id
            denied(lambda: a.get_object(Bucket=bucket_name, Key=key))
        # the bucket's owner may still delete or overwrite it (a write to the bucket); then it is hers
        a.put_object(Bucket=bucket_name, Key="bobs", Body=b"alice's now")
        assert a.get_object_acl(Bucket=bucket_name, Key="bobs")["Owner"]["ID"] == alice.id
        denied(lambda: b.get_object(Bucket=bucket_name, Key="bobs"))
        assert a.delete_object(Bucket=bucket_name, Key="bobs-copy")["ResponseMetadata"]["HTTPStatusCode"] == 204
        assert alice.usage(bucket_name)["objects"] == 5           # counted against the bucket's owner
    finally:
        alice.force_delete(bucket_name)


def test_bucket_owner_preferred_and_enforced(s3_of, alice, bob, bucket_name, s3_endpoint):
    a, b = s3_of(alice), s3_of(bob)
    ownership_bucket(a, bucket_name, "BucketOwnerPreferred", bob)
    try:
        b.put_object(Bucket=bucket_name, Key="handed-over", Body=b"h", ACL="bucket-owner-full-control")
        got = a.get_object_acl(Bucket=bucket_name, Key="handed-over")
        assert got["Owner"]["ID"] == alice.id and grants_of(got) == {(alice.id, "FULL_CONTROL")}
        assert a.get_object(Bucket=bucket_name, Key="handed-over")["Body"].read() == b"h"
        denied(lambda: b.get_object(Bucket=bucket_name, Key="handed-over"))   # no longer the writer's
        b.put_object(Bucket=bucket_name, Key="kept", Body=b"k")               # without it, the writer keeps it
        assert b.get_object_acl(Bucket=bucket_name, Key="kept")["Owner"]["ID"] == bob.id
        denied(lambda: a.get_object(Bucket=bucket_name, Key="kept"))
        # BucketOwnerEnforced: the bucket's owner takes every object, for good
        a.put_bucket_ownership_controls(Bucket=bucket_name, OwnershipControls={
            "Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]})
        assert a.get_object(Bucket=bucket_name, Key="kept")["Body"].read() == b"k"
        assert a.get_object_acl(Bucket=bucket_name, Key="kept")["Owner"]["ID"] == alice.id
        denied(lambda: b.get_object(Bucket=bucket_name, Key="kept"))
        a.put_bucket_ownership_controls(Bucket=bucket_name, OwnershipControls={
            "Rules": [{"ObjectOwnership": "ObjectWriter"}]})
        assert a.get_object_acl(Bucket=bucket_name, Key="kept")["Owner"]["ID"] == alice.id
        listed = a.list_objects_v2(Bucket=bucket_name, FetchOwner=True)["Contents"]
        assert {o["Owner"]["ID"] for o in listed} == {alice.id}
        # anonymous writes (a public-read-write bucket) are the bucket owner's
        a.put_bucket_acl(Bucket=bucket_name, ACL="public-read-write")
        assert anon("PUT", f"{s3_endpoint}/{bucket_name}/anon", data=b"x").status_code == 200
        assert a.get_object_acl(Bucket=bucket_name, Key="anon")["Owner"]["ID"] == alice.id
    finally:
        alice.force_delete(bucket_name)
