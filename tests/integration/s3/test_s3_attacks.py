"""Attacks on the S3 gateway through the running server (issue 11, items 4 and 9): each was
possible before and must now be refused without changing anything."""
from __future__ import annotations

import base64
import hashlib
import zlib

import pytest
from botocore.exceptions import ClientError

from tests.integration.signed import send, sign

from .conftest import client_for, code_of

pytestmark = pytest.mark.integration


def _capture_put(s3, bucket: str, key: str, body: bytes) -> dict[str, str]:
    """The headers of a PutObject as boto3 sends it over plain HTTP (x-amz-content-sha256: the
    body's hex digest), while really sending it."""
    seen = {}

    def before_send(request, **kw):
        # names in lower case: botocore signing with awscrt (botocore[crt]) sends them so
        seen.update({k.lower(): (v.decode() if isinstance(v, bytes) else v) for k, v in request.headers.items()})
        seen["host"] = request.url.split("/")[2]

    s3.meta.events.register("before-send.s3.PutObject", before_send)
    s3.put_object(Bucket=bucket, Key=key, Body=body)
    s3.meta.events.unregister("before-send.s3.PutObject", before_send)
    return seen


def _unsigned_chunks(data: bytes, checksum: str | None = None) -> bytes:
    out = b"%x\r\n%s\r\n0\r\n" % (len(data), data)
    if checksum:
        out += f"x-amz-checksum-crc32:{checksum}\r\n".encode()
    return out + b"\r\n"


@pytest.mark.parametrize("checksums", ["when_supported", "when_required"])
def test_captured_put_replayed_as_unsigned_aws_chunked_is_refused(s3_endpoint, s3_of, alice, bucket, checksums):
    """A captured PUT whose signature covers its body's SHA-256 is replayed with an unsigned
    Content-Encoding: aws-chunked (and, where the capture carries a CRC32 header, a trailer
    announced by an unsigned x-amz-trailer) around another body: refused, object unchanged."""
    s3 = s3_of(alice, request_checksum_calculation=checksums)
    good, evil = b"the owner's content", b"an attacker's content!"
    headers = _capture_put(s3, bucket, "doc.txt", good)
    assert headers["x-amz-content-sha256"] == hashlib.sha256(good).hexdigest()
    crc = base64.b64encode(zlib.crc32(evil).to_bytes(4, "big")).decode()
    forged = dict(headers, **{"Content-Encoding": "aws-chunked", "x-amz-decoded-content-length": str(len(evil))})
    if "x-amz-checksum-crc32" in headers:
        forged["x-amz-trailer"] = "x-amz-checksum-crc32"
    status, body = send("PUT", f"{s3_endpoint}/{bucket}/doc.txt", forged,
                        _unsigned_chunks(evil, crc if "x-amz-trailer" in forged else None))
    assert status == 400 and b"<Code>InvalidArgument</Code>" in body, (status, body)
    assert s3.get_object(Bucket=bucket, Key="doc.txt")["Body"].read() == good
    assert alice.usage(bucket) == {"objects": 1, "bytes": len(good)}


def test_dot_segments_cannot_reach_another_bucket(s3_endpoint, s3_of, alice, bob, bucket, bucket_name):
    """Bob owns a bucket next to alice's; keys with '..' (in the path, percent-encoded, as a
    copy source, in DeleteObjects) would name her objects on an engine that stores keys as
    paths. pocketcloud refuses them itself (the stand-in happens to refuse most of them too;
    another engine may not)."""
    s3_of(alice).put_object(Bucket=bucket, Key="secret.txt", Body=b"alice's secret")
    mine = bucket_name + "-bob"
    b = s3_of(bob)
    b.create_bucket(Bucket=mine)
    try:
        for path in (f"/{mine}/../{bucket}/secret.txt", f"/{mine}/%2E%2E/{bucket}/secret.txt",
                     f"/{mine}/x/../../{bucket}/secret.txt"):
            url = s3_endpoint + path
            status, body = send("GET", url, sign("GET", url, bob))
            # refused by pocketcloud itself, whatever a given engine would make of the path
            assert status == 400 and b"path segments are not allowed" in body, (path, body)
            status, body = send("PUT", url, sign("PUT", url, bob, b"overwritten"), b"overwritten")
            assert status == 400, (path, body)
        for attempt in (lambda: b.copy_object(Bucket=mine, Key="stolen.txt",
                                              CopySource=f"{mine}/../{bucket}/secret.txt"),
                        lambda: b.delete_objects(Bucket=mine, Delete={"Objects": [{"Key": f"../{bucket}/secret.txt"}]})):
            with pytest.raises(ClientError) as e:
                attempt()
            assert code_of(e) == ("InvalidArgument", 400) and "path segments" in e.value.response["Error"]["Message"]
        assert b.list_objects_v2(Bucket=mine).get("Contents", []) == []
        assert s3_of(alice).get_object(Bucket=bucket, Key="secret.txt")["Body"].read() == b"alice's secret"
    finally:
        bob.force_delete(mine)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16"])
def test_xml_entities_are_refused_in_any_encoding(s3_endpoint, s3_of, alice, bucket, encoding):
    """A DeleteObjects document whose key comes from an entity (a DTD hidden from byte
    searches by UTF-16): MalformedXML, and the object it names stays."""
    s3_of(alice).put_object(Bucket=bucket, Key="victim.txt", Body=b"still here")
    doc = (f'<?xml version="1.0" encoding="{encoding}"?><!DOCTYPE d [<!ENTITY k "victim.txt">]>'
           '<Delete><Object><Key>&k;</Key></Object></Delete>').encode(encoding)
    url = f"{s3_endpoint}/{bucket}?delete"
    md5 = base64.b64encode(hashlib.md5(doc).digest()).decode()
    status, body = send("POST", url, sign("POST", url, alice, doc, {"Content-MD5": md5}), doc)
    assert status == 400 and b"MalformedXML" in body, (status, body)
    assert s3_of(alice).get_object(Bucket=bucket, Key="victim.txt")["Body"].read() == b"still here"


def test_non_ascii_signature_is_a_403_not_a_500(s3_endpoint, alice, bucket):
    url = f"{s3_endpoint}/{bucket}"
    headers = sign("GET", url, alice)
    headers["Authorization"] = headers["Authorization"][:-2] + "\u00e9\u00e9"
    status, body = send("GET", url, headers)
    assert status == 403 and b"<Code>SignatureDoesNotMatch</Code>" in body, (status, body)


def test_signing_region_and_service_must_be_the_endpoints(s3_endpoint, alice, bucket):
    """Requests validly signed for another region, or for another service that lands on the
    S3 endpoint, are refused: a signature is only good where it was meant to be used."""
    other = client_for(s3_endpoint, alice, region="eu-west-1")
    with pytest.raises(ClientError) as e:
        other.list_objects_v2(Bucket=bucket)
    assert code_of(e) == ("AuthorizationHeaderMalformed", 400)
    assert "eu-west-1" in e.value.response["Error"]["Message"]
    url = f"{s3_endpoint}/{bucket}"
    status, body = send("GET", url, sign("GET", url, alice, service="sqs"))  # a service not served here
    assert status == 400 and b"AuthorizationHeaderMalformed" in body, (status, body)
