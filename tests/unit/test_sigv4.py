"""SigV4 verification: requests signed by botocore itself, verified by emulator/sigv4 (through
api/sigv4.py, which reads them from a WSGI environ as the server does)."""
from __future__ import annotations

import datetime as dt
import hashlib
import io
from types import SimpleNamespace
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.auth import S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from api import sigv4
from emulator.errors import Forbidden, InvalidParameter, Unauthorized
from emulator.sigv4 import chunk_string_to_sign, hmac_hex, scope_string, signing_key, \
    trailer_string_to_sign

KEY_ID = "AKIAEXAMPLEEXAMPLE12"
SECRET = "s3cr3t/s3cr3t+s3cr3t/s3cr3t+s3cr3t/abcd"
ACCOUNT = SimpleNamespace(id="111122223333", name="alice")


def lookup(key_id):
    if key_id != KEY_ID:
        raise Unauthorized("unknown access key id", code="InvalidAccessKeyId")
    return ACCOUNT, SECRET


def environ_of(method: str, url: str, headers, body: bytes = b"") -> dict:
    u = urlsplit(url)
    env = {
        "REQUEST_METHOD": method,
        "PATH_INFO": u.path,  # not what a server gives (decoded), but RAW_URI wins
        "RAW_URI": u.path + ("?" + u.query if u.query else ""),
        "QUERY_STRING": u.query,
        "wsgi.input": io.BytesIO(body),
    }
    for k, v in headers.items():
        k = k.lower()
        if isinstance(v, bytes):
            v = v.decode()
        if k == "content-type":
            env["CONTENT_TYPE"] = v
        elif k == "content-length":
            env["CONTENT_LENGTH"] = v
        else:
            env["HTTP_" + k.upper().replace("-", "_")] = v
    if "CONTENT_LENGTH" not in env and body:
        env["CONTENT_LENGTH"] = str(len(body))
    return env


def botocore_signed(method="PUT", url="http://127.0.0.1:4566/bucket/some%20key/x.txt?acl=", body=b"hello",
                    service="s3", payload_hash=None, region="us-east-1"):
    headers = {"Host": urlsplit(url).netloc}
    if payload_hash is not None:
        headers["X-Amz-Content-SHA256"] = payload_hash
    req = AWSRequest(method=method, url=url, data=body, headers=headers)
    creds = Credentials(KEY_ID, SECRET)
    (S3SigV4Auth if service == "s3" else SigV4Auth)(creds, service, region).add_auth(req)
    return environ_of(method, url, dict(req.headers.items()), body)


def test_header_signature_verifies_and_names_the_scope():
    env = botocore_signed()
    assert sigv4.credential_scope(env) == "s3"
    auth = sigv4.verify(env, lookup)
    assert auth.account is ACCOUNT and auth.scope.service == "s3" and auth.scope.region == "us-east-1"
    assert auth.key_id == KEY_ID and not auth.presigned
    assert b"".join(sigv4.RequestBody(env, auth)) == b"hello"


def test_ec2_scope_and_form_body():
    body = b"Action=DescribeInstances&Version=2016-11-15"
    env = botocore_signed("POST", "http://127.0.0.1:4566/", body, service="ec2")
    env.pop("HTTP_X_AMZ_CONTENT_SHA256", None)  # EC2 clients do not send it: the body is hashed
    assert sigv4.credential_scope(env) == "ec2"
    auth = sigv4.verify(env, lookup, body=body)
    assert auth.scope.service == "ec2"
    with pytest.raises(Unauthorized) as e:
        sigv4.verify(env, lookup, body=body + b"&X=1")
    assert e.value.code == "SignatureDoesNotMatch"


def test_unsigned_request_has_no_scope():
    env = environ_of("GET", "http://127.0.0.1:4566/bucket/key", {"Host": "127.0.0.1:4566"})
    assert sigv4.credential_scope(env) is None and not sigv4.is_signed(env)
    with pytest.raises(Forbidden):
        sigv4.verify(env, lookup)


@pytest.mark.parametrize("tamper", ["path", "query", "header", "method", "signature"])
def test_tampered_requests_do_not_match(tamper):
    env = botocore_signed()
    if tamper == "path":
        env["RAW_URI"] = env["RAW_URI"].replace("x.txt", "y.txt")
    elif tamper == "query":
        env["QUERY_STRING"] = "acl=&x=1"
    elif tamper == "header":
        # one second later (a fixed "00" would be no change at all when signed at :00)
        seconds = (int(env["HTTP_X_AMZ_DATE"][-3:-1]) + 1) % 60
        env["HTTP_X_AMZ_DATE"] = env["HTTP_X_AMZ_DATE"][:-3] + f"{seconds:02d}Z"
    elif tamper == "method":
        env["REQUEST_METHOD"] = "DELETE"
    else:
        env["HTTP_AUTHORIZATION"] = env["HTTP_AUTHORIZATION"][:-4] + "0000"
    with pytest.raises(Unauthorized) as e:
        sigv4.verify(env, lookup)
    assert e.value.code == "SignatureDoesNotMatch"


def test_wrong_secret_and_unknown_key():
    env = botocore_signed()
    with pytest.raises(Unauthorized) as e:
        sigv4.verify(env, lambda k: (ACCOUNT, SECRET + "x"))
    assert e.value.code == "SignatureDoesNotMatch"
    with pytest.raises(Unauthorized) as e:
        sigv4.verify(env, lambda k: lookup("AKIAOTHEROTHEROTHER1"))
    assert e.value.code == "InvalidAccessKeyId"


def test_clock_skew_is_refused():
    env = botocore_signed()
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=20)
    with pytest.raises(Forbidden) as e:
        sigv4.verify(env, lookup, now=later)
    assert e.value.code == "RequestTimeTooSkewed"


def test_signed_payload_hash_is_checked_while_streaming():
    env = botocore_signed(body=b"hello")
    env["wsgi.input"] = io.BytesIO(b"HELLO")
    auth = sigv4.verify(env, lookup)
    with pytest.raises(InvalidParameter) as e:
        b"".join(sigv4.RequestBody(env, auth))
    assert e.value.code == "XAmzContentSHA256Mismatch"


def test_last_piece_is_held_back_until_verified():
    """A consumer never receives the final bytes of a body whose hash is wrong."""
    big = b"a" * (3 * sigv4.PIECE + 10)
    env = botocore_signed(body=big)
    env["wsgi.input"] = io.BytesIO(big[:-1] + b"b")
    auth = sigv4.verify(env, lookup)
    got = bytearray()
    with pytest.raises(InvalidParameter):
        for piece in sigv4.RequestBody(env, auth):
            got += piece
    assert len(got) < len(big)


def _presigned(expires=60, method="get_object", version="s3v4"):
    from botocore.config import Config as BotoConfig

    s3 = boto3.client("s3", endpoint_url="http://127.0.0.1:4566", aws_access_key_id=KEY_ID,
                      aws_secret_access_key=SECRET, region_name="us-east-1",
                      config=BotoConfig(signature_version=version))
    url = s3.generate_presigned_url(method, Params={"Bucket": "bucket", "Key": "dir/a b+c.txt"}, ExpiresIn=expires)
    return environ_of("GET" if method == "get_object" else "PUT", url, {"Host": "127.0.0.1:4566"})


def test_presigned_url_verifies_until_it_expires():
    env = _presigned(expires=60)
    assert sigv4.credential_scope(env) == "s3"
    auth = sigv4.verify(env, lookup)
    assert auth.presigned and auth.payload_hash == "UNSIGNED-PAYLOAD"
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=61)
    with pytest.raises(Forbidden) as e:
        sigv4.verify(env, lookup, now=later)
    assert e.value.code == "AccessDenied" and "expired" in str(e.value)


def test_sigv2_presigned_url_as_the_aws_cli_makes_it():
    """`aws s3 presign` and boto3's default presigner still produce Signature Version 2 URLs."""
    s3 = boto3.client("s3", endpoint_url="http://127.0.0.1:4566", aws_access_key_id=KEY_ID,
                      aws_secret_access_key=SECRET, region_name="us-east-1")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": "bucket", "Key": "dir/a b+c.txt"}, ExpiresIn=60)
    assert "AWSAccessKeyId=" in url
    env = environ_of("GET", url, {"Host": "127.0.0.1:4566"})
    assert sigv4.is_signed(env) and sigv4.credential_scope(env) is None
    auth = sigv4.verify(env, lookup)
    assert auth.account is ACCOUNT and auth.presigned
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=61)
    with pytest.raises(Forbidden) as e:
        sigv4.verify(env, lookup, now=later)
    assert "expired" in str(e.value)
    env["RAW_URI"] = env["RAW_URI"].replace("a%20b", "a%20c")
    with pytest.raises(Unauthorized) as e:
        sigv4.verify(env, lookup)
    assert e.value.code == "SignatureDoesNotMatch"


def test_presigned_url_tampered():
    env = _presigned()
    env["QUERY_STRING"] = env["QUERY_STRING"].replace("X-Amz-Expires=60", "X-Amz-Expires=600")
    with pytest.raises(Unauthorized) as e:
        sigv4.verify(env, lookup)
    assert e.value.code == "SignatureDoesNotMatch"
    env = _presigned()
    env["RAW_URI"] = env["RAW_URI"].replace("a%20b", "a%20c")
    with pytest.raises(Unauthorized):
        sigv4.verify(env, lookup)


def _capture_botocore_aws_chunked(body: bytes):
    """What current botocore sends for PutObject over TLS: aws-chunked with a CRC32 trailer."""
    s3 = boto3.client("s3", endpoint_url="https://127.0.0.1:4566", aws_access_key_id=KEY_ID,
                      aws_secret_access_key=SECRET, region_name="us-east-1")
    captured = {}

    def before_send(request, **kw):
        data = request.body
        if hasattr(data, "read"):
            data = data.read()
        headers = dict(request.headers.items())
        headers.setdefault("Host", urlsplit(request.url).netloc)  # added by the HTTP layer, signed by botocore
        captured.update(method=request.method, url=request.url, headers=headers, body=data)
        from botocore.awsrequest import AWSResponse

        class Raw:
            def stream(self, **kw):
                yield b""

        return AWSResponse(request.url, 200, {"ETag": '"x"'}, Raw())

    s3.meta.events.register("before-send.s3.PutObject", before_send)
    s3.put_object(Bucket="bucket", Key="k", Body=io.BytesIO(body))
    return captured


def test_botocore_aws_chunked_trailer_is_decoded_and_checked():
    data = bytes(range(256)) * 9000  # > 2 MiB: several chunks
    cap = _capture_botocore_aws_chunked(data)
    # header names as botocore spells them, or in lower case when it signs with awscrt (botocore[crt])
    sha = {k.lower(): v for k, v in cap["headers"].items()}["x-amz-content-sha256"]
    assert sha in ("STREAMING-UNSIGNED-PAYLOAD-TRAILER", b"STREAMING-UNSIGNED-PAYLOAD-TRAILER")
    env = environ_of(cap["method"], cap["url"], cap["headers"], cap["body"])
    auth = sigv4.verify(env, lookup)
    body = sigv4.RequestBody(env, auth)
    assert body.length == len(data)
    assert b"".join(body) == data
    assert body.checksum and body.checksum[0] == "x-amz-checksum-crc32"
    # flip one data byte: the CRC32 trailer no longer matches
    tampered = bytearray(cap["body"])
    tampered[100] ^= 1
    env = environ_of(cap["method"], cap["url"], cap["headers"], bytes(tampered))
    with pytest.raises(InvalidParameter) as e:
        b"".join(sigv4.RequestBody(env, sigv4.verify(env, lookup)))
    assert e.value.code == "BadDigest"


# The worked example of the S3 docs ("Signature calculation: transfer payload in multiple chunks").
AWS_EXAMPLE = dict(
    key_id="AKIAIOSFODNN7EXAMPLE", secret="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    seed="4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9",
    chunks=["ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
            "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
            "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9"],
)


def _aws_example_environ(body: bytes):
    e = AWS_EXAMPLE
    headers = {
        "Host": "s3.amazonaws.com", "x-amz-date": "20130524T000000Z", "x-amz-storage-class": "REDUCED_REDUNDANCY",
        "Authorization": "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
                         "SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;"
                         f"x-amz-decoded-content-length;x-amz-storage-class,Signature={e['seed']}",
        "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", "Content-Encoding": "aws-chunked",
        "x-amz-decoded-content-length": "66560", "Content-Length": str(len(body)),
    }
    return environ_of("PUT", "http://s3.amazonaws.com/examplebucket/chunkObject.txt", headers, body)


def _aws_example_body(sigs):
    parts = []
    for size, sig in zip((65536, 1024, 0), sigs):
        parts.append(b"%x;chunk-signature=%s\r\n%s\r\n" % (size, sig.encode(), b"a" * size))
    return b"".join(parts)


def test_signed_aws_chunked_matches_the_aws_worked_example():
    e = AWS_EXAMPLE
    now = dt.datetime(2013, 5, 24, 0, 1, tzinfo=dt.timezone.utc)
    lookup_example = lambda k: (ACCOUNT, e["secret"])  # noqa: E731
    body = _aws_example_body(e["chunks"])
    assert len(body) == 66824
    env = _aws_example_environ(body)
    auth = sigv4.verify(env, lookup_example, now=now)
    assert b"".join(sigv4.RequestBody(env, auth)) == b"a" * 66560
    # a wrong signature on the second chunk
    bad = _aws_example_body([e["chunks"][0], "0" * 64, e["chunks"][2]])
    env = _aws_example_environ(bad)
    auth = sigv4.verify(env, lookup_example, now=now)
    with pytest.raises(Unauthorized) as exc:
        b"".join(sigv4.RequestBody(env, auth))
    assert exc.value.code == "SignatureDoesNotMatch"


def encode_signed_chunks(data: bytes, auth_seed: str, amz_date: str, scope: str, key: bytes, chunk: int = 65536,
                         trailer: tuple[str, str] | None = None) -> bytes:
    """An aws-chunked body as SDKs that sign chunks produce it (used by the tests only)."""
    out, prev = [], auth_seed
    pieces = [data[i:i + chunk] for i in range(0, len(data), chunk)] + [b""]
    for p in pieces:
        sig = hmac_hex(key, chunk_string_to_sign(amz_date, scope, prev, hashlib.sha256(p).hexdigest()))
        out.append(b"%x;chunk-signature=%s\r\n%s" % (len(p), sig.encode(), p))
        out.append(b"\r\n" if p else b"")
        prev = sig
    if trailer:
        blob = f"{trailer[0]}:{trailer[1]}\n".encode()
        tsig = hmac_hex(key, trailer_string_to_sign(amz_date, scope, prev, hashlib.sha256(blob).hexdigest()))
        out.append(f"{trailer[0]}:{trailer[1]}\r\nx-amz-trailer-signature:{tsig}\r\n\r\n".encode())
    else:
        out.append(b"\r\n")
    return b"".join(out)


def test_signed_chunks_with_signed_trailer():
    import base64
    import zlib

    data = b"0123456789" * 20000
    crc = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
    now = dt.datetime.now(dt.timezone.utc)
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    scope = scope_string(amz_date[:8], "us-east-1", "s3")
    key = signing_key(SECRET, amz_date[:8], "us-east-1", "s3")
    headers = {"Host": "127.0.0.1:4566", "x-amz-date": amz_date, "Content-Encoding": "aws-chunked",
               "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
               "x-amz-decoded-content-length": str(len(data)), "x-amz-trailer": "x-amz-checksum-crc32"}
    # sign the headers with botocore-independent code: our signer is checked against botocore above
    from emulator.sigv4 import sign_headers
    signed = sign_headers("PUT", "/bucket/key", [], {k.lower(): v for k, v in headers.items()
                                                     if k.lower() not in ("x-amz-date", "x-amz-content-sha256")},
                          access_key=KEY_ID, secret_key=SECRET, region="us-east-1",
                          payload_hash="STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER", now=now)
    seed = signed["authorization"].rsplit("Signature=", 1)[1]
    body = encode_signed_chunks(data, seed, amz_date, scope, key, trailer=("x-amz-checksum-crc32", crc))
    env = environ_of("PUT", "http://127.0.0.1:4566/bucket/key", signed, body)
    auth = sigv4.verify(env, lookup)
    rb = sigv4.RequestBody(env, auth)
    assert b"".join(rb) == data and rb.checksum == ("x-amz-checksum-crc32", crc)
    # a forged trailer value (with the old trailer signature) is refused
    forged = body.replace(crc.encode(), b"AAAAAA==")
    env = environ_of("PUT", "http://127.0.0.1:4566/bucket/key", signed, forged)
    with pytest.raises((Unauthorized, InvalidParameter)):
        b"".join(sigv4.RequestBody(env, sigv4.verify(env, lookup)))


def test_our_signer_agrees_with_botocore():
    """The backend client's signer produces what botocore produces for the same request."""
    from emulator.sigv4 import sign_headers

    now = dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    ours = sign_headers("GET", "/bucket/a%20b", [("list-type", "2"), ("prefix", "x y")],
                        {"host": "127.0.0.1:9000"}, access_key=KEY_ID, secret_key=SECRET, region="us-east-1",
                        now=now)
    env = environ_of("GET", "http://127.0.0.1:9000/bucket/a%20b?list-type=2&prefix=x%20y", ours)
    auth = sigv4.verify(env, lookup, now=now)
    assert auth.payload_hash == "UNSIGNED-PAYLOAD"


# -- issue 11: the signature binds the body, the scope and nothing can crash the check --------------

def test_unsigned_aws_chunked_header_does_not_unbind_a_signed_digest():
    """A PUT signed over one body's SHA-256, replayed with Content-Encoding: aws-chunked added
    (not signed) and another body framed as unsigned chunks, is refused: the signed digest rules."""
    env = botocore_signed(body=b"hello")
    forged = b"5\r\nEVIL!\r\n0\r\n\r\n"
    env.update({"wsgi.input": io.BytesIO(forged), "CONTENT_LENGTH": str(len(forged)),
                "HTTP_CONTENT_ENCODING": "aws-chunked", "HTTP_X_AMZ_DECODED_CONTENT_LENGTH": "5"})
    auth = sigv4.verify(env, lookup)  # the headers that were signed are intact
    with pytest.raises(InvalidParameter) as e:
        b"".join(sigv4.RequestBody(env, auth))
    assert e.value.code == "InvalidArgument"


def test_ec2_body_must_hash_to_the_signed_payload_hash():
    """x-amz-content-sha256 on an EC2 request is compared with the body: a captured
    DescribeInstances carrying it cannot be replayed with a TerminateInstances body."""
    body = b"Action=DescribeInstances&Version=2016-11-15"
    env = botocore_signed("POST", "http://127.0.0.1:4566/", body, service="ec2",
                          payload_hash=hashlib.sha256(body).hexdigest())
    assert "HTTP_X_AMZ_CONTENT_SHA256" in env
    assert sigv4.verify(env, lookup, body=body).scope.service == "ec2"
    evil = b"Action=TerminateInstances&InstanceId.1=i-0123456789abcdef0&Version=2016-11-15"
    with pytest.raises(InvalidParameter) as e:
        sigv4.verify(env, lookup, body=evil)
    assert e.value.code == "XAmzContentSHA256Mismatch"
    env = botocore_signed("POST", "http://127.0.0.1:4566/", body, service="ec2", payload_hash="UNSIGNED-PAYLOAD")
    with pytest.raises(InvalidParameter):
        sigv4.verify(env, lookup, body=evil)


@pytest.mark.parametrize("where", ["signature", "chunk"])
def test_non_ascii_signatures_are_a_mismatch_not_a_crash(where):
    if where == "signature":
        env = botocore_signed()
        env["HTTP_AUTHORIZATION"] = env["HTTP_AUTHORIZATION"][:-1] + "\u00e9"
        with pytest.raises(Unauthorized) as e:
            sigv4.verify(env, lookup)
        assert e.value.code == "SignatureDoesNotMatch"
        return
    e_ = AWS_EXAMPLE
    now = dt.datetime(2013, 5, 24, 0, 1, tzinfo=dt.timezone.utc)
    env = _aws_example_environ(_aws_example_body([e_["chunks"][0], "\u00e9" * 32, e_["chunks"][2]]))
    auth = sigv4.verify(env, lambda k: (ACCOUNT, e_["secret"]), now=now)
    with pytest.raises(Unauthorized):
        b"".join(sigv4.RequestBody(env, auth))


def test_scope_must_be_the_endpoints():
    env = botocore_signed(region="eu-west-1")
    sigv4.verify(env, lookup)  # valid on its own terms
    with pytest.raises(InvalidParameter) as e:
        sigv4.verify(env, lookup, region="us-east-1", service="s3")
    assert e.value.code == "AuthorizationHeaderMalformed" and "eu-west-1" in str(e.value)
    with pytest.raises(InvalidParameter) as e:
        sigv4.verify(botocore_signed(), lookup, region="us-east-1", service="ec2")
    assert e.value.code == "AuthorizationHeaderMalformed"
    env = _presigned()
    assert sigv4.verify(env, lookup, region="us-east-1", service="s3").presigned
    with pytest.raises(InvalidParameter) as e:
        sigv4.verify(env, lookup, region="ap-south-1", service="s3")
    assert e.value.code == "AuthorizationQueryParametersError"


def test_sigv2_presigned_expiry_is_capped_at_seven_days():
    s3 = boto3.client("s3", endpoint_url="http://127.0.0.1:4566", aws_access_key_id=KEY_ID,
                      aws_secret_access_key=SECRET, region_name="us-east-1")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": "b", "Key": "k"}, ExpiresIn=8 * 24 * 3600)
    with pytest.raises(InvalidParameter) as e:
        sigv4.verify(environ_of("GET", url, {"Host": "127.0.0.1:4566"}), lookup)
    assert e.value.code == "AuthorizationQueryParametersError"
    far = environ_of("GET", url, {"Host": "127.0.0.1:4566"})
    far["QUERY_STRING"] = far["QUERY_STRING"].replace("Expires=", "Expires=99999999999999")
    with pytest.raises(InvalidParameter):
        sigv4.verify(far, lookup)


def test_one_query_parser():
    from emulator.sigv4 import query_pairs

    assert query_pairs("acl&b=&c=a%20b+c&c=2&%2F=%3D") == [("acl", ""), ("b", ""), ("c", "a b c"), ("c", "2"),
                                                           ("/", "=")]
    assert query_pairs("") == []
