"""The differential check of issue 19: the same requests go to the raw engine (with the
cloud's root credentials, as the gateway talks to it) and to the gateway on it, and each answer
is reduced to what S3 documents (status, error code, the field that matters). The gateway must
give AWS's documented answer (AWS) on every engine. The raw engine gives it too, except where
KNOWN_DEVIATIONS says otherwise: that table is the suite's record of where each engine departs
from S3 and the gateway answers for it. An engine that stops deviating (or starts) fails the
test, so the table stays true. Single-account probes only: the raw engine has one user."""
from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from .conftest import client_for

pytestmark = pytest.mark.integration


def outcome(call) -> str:
    """'200' (the status of a success), or 'STATUS Code' of an S3 error."""
    try:
        return str(call()["ResponseMetadata"]["HTTPStatusCode"])
    except ClientError as e:
        return f'{e.response["ResponseMetadata"]["HTTPStatusCode"]} {e.response["Error"]["Code"]}'


def put_if_none_match_on_existing_key(s3, bucket):
    s3.put_object(Bucket=bucket, Key="inm", Body=b"first")
    got = outcome(lambda: s3.put_object(Bucket=bucket, Key="inm", Body=b"second", IfNoneMatch="*"))
    return got + (" overwritten" if s3.get_object(Bucket=bucket, Key="inm")["Body"].read() == b"second" else "")


def get_if_match_other_etag(s3, bucket):
    s3.put_object(Bucket=bucket, Key="im", Body=b"x")
    return outcome(lambda: s3.get_object(Bucket=bucket, Key="im", IfMatch='"0123456789abcdef0123456789abcdef"'))


def get_object_attributes(s3, bucket):
    s3.put_object(Bucket=bucket, Key="attrs", Body=b"0123456789")
    try:
        got = s3.get_object_attributes(Bucket=bucket, Key="attrs", ObjectAttributes=["ETag", "ObjectSize"])
    except ClientError as e:
        return f'{e.response["ResponseMetadata"]["HTTPStatusCode"]} {e.response["Error"]["Code"]}'
    return f'200 size={got.get("ObjectSize")}'


def complete_multipart_etag(s3, bucket):
    up = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    etag = s3.upload_part(Bucket=bucket, Key="mp", UploadId=up, PartNumber=1, Body=b"part")["ETag"]
    done = s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=up,
                                        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})
    return "etag" if done.get("ETag", "").strip('"') else "no etag"


def object_and_folder_coexist(s3, bucket):
    # this order: the other (dir/file first) leaves the stand-in's directory cache wrong for minutes
    s3.put_object(Bucket=bucket, Key="dir", Body=b"2")
    return outcome(lambda: s3.put_object(Bucket=bucket, Key="dir/file", Body=b"1"))


def key_with_trailing_slash_listed(s3, bucket):
    s3.put_object(Bucket=bucket, Key="marker/", Body=b"")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="marker").get("Contents", [])]
    return "listed" if keys == ["marker/"] else f"listed as {keys}"


def other_delimiter(s3, bucket):
    for key in ("dl/x-1", "dl/x-2", "dl/y"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"1")
    page = s3.list_objects_v2(Bucket=bucket, Prefix="dl/", Delimiter="-")
    return f'prefixes={[p["Prefix"] for p in page.get("CommonPrefixes", [])]}'


def v2_continuation_token_echoed(s3, bucket):
    for key in ("ct/1", "ct/2"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"1")
    first = s3.list_objects_v2(Bucket=bucket, Prefix="ct/", MaxKeys=1)
    second = s3.list_objects_v2(Bucket=bucket, Prefix="ct/", MaxKeys=1, ContinuationToken=first["NextContinuationToken"])
    return "echoed" if second.get("ContinuationToken") == first["NextContinuationToken"] else "not echoed"


def url_encoded_listing(s3, bucket):
    s3.put_object(Bucket=bucket, Key="enc/a b+c%", Body=b"1")
    page = s3.list_objects_v2(Bucket=bucket, Prefix="enc/", EncodingType="url")
    return f'keys={[o["Key"] for o in page.get("Contents", [])]}'


def metadata_over_2_kb(s3, bucket):
    return outcome(lambda: s3.put_object(Bucket=bucket, Key="meta", Body=b"1", Metadata={"k": "v" * 2048}))


def crc32_returned(s3, bucket):
    s3.put_object(Bucket=bucket, Key="sum", Body=b"checksum me", ChecksumAlgorithm="CRC32")
    head = s3.head_object(Bucket=bucket, Key="sum", ChecksumMode="ENABLED")
    return "returned" if head.get("ChecksumCRC32") else "not returned"


def expected_bucket_owner_other(s3, bucket):
    return outcome(lambda: s3.list_objects_v2(Bucket=bucket, ExpectedBucketOwner="999999999999"))


def read_acp_grant_kept(s3, bucket):
    s3.put_object(Bucket=bucket, Key="acp", Body=b"1",
                  GrantReadACP='uri="http://acs.amazonaws.com/groups/global/AuthenticatedUsers"')
    grants = {(g["Grantee"].get("URI", g["Grantee"].get("ID")), g["Permission"])
              for g in s3.get_object_acl(Bucket=bucket, Key="acp")["Grants"]}
    return "kept" if ("http://acs.amazonaws.com/groups/global/AuthenticatedUsers", "READ_ACP") in grants else "lost"


def unset_setting(call: str):
    def probe(s3, bucket):
        try:
            got = getattr(s3, call)(Bucket=bucket)
        except ClientError as e:
            return f'{e.response["ResponseMetadata"]["HTTPStatusCode"]} {e.response["Error"]["Code"]}'
        fields = sorted(k for k in got if k != "ResponseMetadata")
        return f"200 {fields}"
    probe.__name__ = call
    return probe


PROBES = [put_if_none_match_on_existing_key, get_if_match_other_etag, get_object_attributes, complete_multipart_etag,
          object_and_folder_coexist, key_with_trailing_slash_listed, other_delimiter, v2_continuation_token_echoed,
          url_encoded_listing, metadata_over_2_kb, crc32_returned, expected_bucket_owner_other, read_acp_grant_kept,
          *(unset_setting(c) for c in ("get_bucket_logging", "get_bucket_accelerate_configuration",
                                       "get_bucket_website", "get_bucket_replication", "get_bucket_encryption",
                                       "get_object_lock_configuration"))]

# What AWS documents (for an unset encryption: the answer before 2023, see docs/s3.md).
AWS = {
    "put_if_none_match_on_existing_key": "412 PreconditionFailed",
    "get_if_match_other_etag": "412 PreconditionFailed",
    "get_object_attributes": "200 size=10",
    "complete_multipart_etag": "etag",
    "object_and_folder_coexist": "200",
    "key_with_trailing_slash_listed": "listed",
    "other_delimiter": "prefixes=['dl/x-']",
    "v2_continuation_token_echoed": "echoed",
    "url_encoded_listing": "keys=['enc/a%20b%2Bc%25']",
    "metadata_over_2_kb": "400 MetadataTooLarge",
    "crc32_returned": "returned",
    "expected_bucket_owner_other": "403 AccessDenied",
    "read_acp_grant_kept": "kept",
    "get_bucket_logging": "200 []",
    "get_bucket_accelerate_configuration": "200 []",
    "get_bucket_website": "404 NoSuchWebsiteConfiguration",
    "get_bucket_replication": "404 ReplicationConfigurationNotFoundError",
    "get_bucket_encryption": "404 ServerSideEncryptionConfigurationNotFoundError",
    "get_object_lock_configuration": "404 ObjectLockConfigurationNotFoundError",
}

# Where each raw engine answers otherwise (found by this test; the gateway answers AWS's).
KNOWN_DEVIATIONS: dict[str, dict[str, str]] = {
    # rclone serve s3 (the embedded stand-in; rclone v1.75.2): a filesystem with S3's words
    "rclone": {
        "put_if_none_match_on_existing_key": "200 overwritten",   # conditions on writes ignored
        "get_if_match_other_etag": "200",                         # ...and on reads
        "get_object_attributes": "500 500",
        "object_and_folder_coexist": "500 InternalError",         # 'dir' a file, so no 'dir/file'
        "key_with_trailing_slash_listed": "listed as ['marker']",  # 'marker/' becomes a folder
        "other_delimiter": "prefixes=[]",                          # only '/' delimits
        "url_encoded_listing": "keys=['enc/a+b%2Bc%25']",          # a space as '+'
        "expected_bucket_owner_other": "200",                      # x-amz-expected-bucket-owner ignored
        "read_acp_grant_kept": "raised 500 500",                   # grant headers refused
        "get_bucket_website": "200 []",                            # unset settings read as set
        "get_bucket_replication": "200 ['ReplicationConfiguration']",
        "get_bucket_encryption": "200 ['ServerSideEncryptionConfiguration']",
        "get_object_lock_configuration": "200 ['ObjectLockConfiguration']",
    },
    # Ceph RGW 16.2 (Debian's packages), one user
    "ceph": {
        "get_object_attributes": "500 500",
        "complete_multipart_etag": "no etag",                      # the result's ETag left empty
        "url_encoded_listing": "keys=['enc%2Fa%20b%2Bc%25']",      # '/' encoded too
        "metadata_over_2_kb": "200",                               # no 2 KB limit on user metadata
        "crc32_returned": "not returned",                          # checksums not kept
        "expected_bucket_owner_other": "200",                      # x-amz-expected-bucket-owner ignored
        "get_bucket_website": "405 MethodNotAllowed",              # website off in this RGW
        "get_bucket_replication": "200 ['ReplicationConfiguration']",   # unset settings read as set
        "get_bucket_encryption": "200 ['ServerSideEncryptionConfiguration']",
    },
}


def root_client(server, engine: dict):
    keys = server.home / "storage" / ("ceph/keys/rgw-user.json" if engine["engine"] == "ceph"
                                      else "root-credentials.json")
    root = json.loads(keys.read_text())
    who = type("Root", (), {"key_id": root["access_key"], "secret": root["secret_key"]})
    return client_for(engine["endpoint"], who)


def remove_raw_bucket(raw, name: str, engine: dict) -> None:
    """The probes' engine bucket and what they wrote in it. The stand-in stores keys as paths,
    and some probes leave what its listing no longer shows (a file under a folder a key now
    names, a folder for a key ending in '/'): it is emptied by the paths on its disk, files
    first, then folders deepest first, each deleted through it so that its cache follows."""
    if engine["engine"] == "rclone":
        root = Path(engine["data_dir"]) / name
        paths = sorted(root.rglob("*"), key=lambda p: len(p.parts), reverse=True)
        for p in [p for p in paths if p.is_file()] + [p for p in paths if p.is_dir()]:
            raw.delete_object(Bucket=name, Key=p.relative_to(root).as_posix() + ("/" if p.is_dir() else ""))
    for page in raw.get_paginator("list_objects_v2").paginate(Bucket=name):
        for o in page.get("Contents", []):
            raw.delete_object(Bucket=name, Key=o["Key"])
    raw.delete_bucket(Bucket=name)


def run(probe, s3, bucket) -> str:
    try:
        return probe(s3, bucket)
    except ClientError as e:
        return f'raised {e.response["ResponseMetadata"]["HTTPStatusCode"]} {e.response["Error"]["Code"]}'


def test_gateway_answers_as_aws_where_the_engine_deviates(server, engine, s3_of, alice, bucket):
    raw = root_client(server, engine)
    raw_bucket = f"pc-raw-{secrets.token_hex(4)}"
    raw.create_bucket(Bucket=raw_bucket)
    try:
        seen_raw = {p.__name__: run(p, raw, raw_bucket) for p in PROBES}
    finally:
        remove_raw_bucket(raw, raw_bucket, engine)
    s3 = s3_of(alice)
    seen_gateway = {p.__name__: run(p, s3, bucket) for p in PROBES}
    print(json.dumps({"engine": engine["engine"], "raw": seen_raw, "gateway": seen_gateway}, indent=1))
    assert seen_gateway == AWS
    expected_raw = {**AWS, **KNOWN_DEVIATIONS[engine["engine"]]}
    assert seen_raw == expected_raw, {k: v for k, v in seen_raw.items() if v != expected_raw[k]}
