"""AWS Signature Version 4 primitives: canonical requests, signing keys, signing and presigning.

Used by the engine client (which signs towards the S3 engine with its root credentials)
and by verify.py (which checks what clients send). Pure functions, no HTTP.
Reference: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import hmac
import re
from functools import lru_cache
from typing import Iterable, Mapping
from urllib.parse import quote, unquote

ALGORITHM = "AWS4-HMAC-SHA256"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
STREAMING_UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
STREAMING_SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
STREAMING_SIGNED_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
STREAMING_PAYLOADS = (STREAMING_UNSIGNED_TRAILER, STREAMING_SIGNED, STREAMING_SIGNED_TRAILER)
AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"

_SPACES = re.compile(r"\s+")


def uri_encode(value: str, *, keep_slash: bool = False) -> str:
    """RFC 3986 encoding as SigV4 wants it: everything but A-Z a-z 0-9 - _ . ~ (and '/' in paths)."""
    return quote(value, safe="-_.~/" if keep_slash else "-_.~")


def query_pairs(qs: str) -> list[tuple[str, str]]:
    """A raw query string as (name, value) pairs, in order, blanks kept ('acl' -> ('acl', '')).

    The one parser for signed requests: what is verified must be what is served, so the
    EC2 API, the S3 gateway and the verifier all read the query through it. '+' is a
    space, as form encoding has it (and as botocore signs it).
    """
    pairs = []
    for part in qs.split("&"):
        if not part:
            continue
        k, _, v = part.partition("=")
        pairs.append((unquote(k.replace("+", "%20")), unquote(v.replace("+", "%20"))))
    return pairs


def canonical_query(pairs: Iterable[tuple[str, str]]) -> str:
    encoded = sorted((uri_encode(k), uri_encode(v)) for k, v in pairs)
    return "&".join(f"{k}={v}" for k, v in encoded)


def canonical_header_value(value: str) -> str:
    return _SPACES.sub(" ", value.strip())


def canonical_request(method: str, path: str, query: str, headers: Mapping[str, str],
                      signed_headers: list[str], payload_hash: str) -> str:
    """`path` is already encoded as it goes on the wire; `headers` maps lowercase names to values."""
    lines = "".join(f"{name}:{canonical_header_value(headers.get(name, ''))}\n" for name in signed_headers)
    return "\n".join([method, path, query, lines, ";".join(signed_headers), payload_hash])


@lru_cache(maxsize=512)
def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    key = hmac.new(("AWS4" + secret).encode(), date.encode(), hashlib.sha256).digest()
    for part in (region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def scope_string(date: str, region: str, service: str) -> str:
    return f"{date}/{region}/{service}/aws4_request"


def string_to_sign(amz_date: str, scope: str, canonical: str) -> str:
    return "\n".join([ALGORITHM, amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])


def hmac_hex(key: bytes, msg: str) -> str:
    return hmac.new(key, msg.encode(), hashlib.sha256).hexdigest()


def same(expected: str, given: str) -> bool:
    """Constant-time equality that also takes what a client may send (non-ASCII included):
    hmac.compare_digest refuses non-ASCII str, which would turn a forged header into a 500."""
    return hmac.compare_digest(expected.encode("utf-8", "surrogateescape"),
                               given.encode("utf-8", "surrogateescape"))


def chunk_string_to_sign(amz_date: str, scope: str, previous_signature: str, chunk_sha256: str) -> str:
    return "\n".join([ALGORITHM + "-PAYLOAD", amz_date, scope, previous_signature, EMPTY_SHA256, chunk_sha256])


def trailer_string_to_sign(amz_date: str, scope: str, previous_signature: str, trailer_sha256: str) -> str:
    return "\n".join([ALGORITHM + "-TRAILER", amz_date, scope, previous_signature, trailer_sha256])


def amz_now(now: _dt.datetime | None = None) -> str:
    return (now or _dt.datetime.now(_dt.timezone.utc)).strftime(AMZ_DATE_FORMAT)


def sign_headers(method: str, path: str, query_pairs: Iterable[tuple[str, str]], headers: Mapping[str, str], *,
                 access_key: str, secret_key: str, region: str, service: str = "s3",
                 payload_hash: str = UNSIGNED_PAYLOAD, now: _dt.datetime | None = None) -> dict[str, str]:
    """Return `headers` plus x-amz-date, x-amz-content-sha256 and Authorization.

    Every header given is signed (the stand-in refuses unsigned x-amz-* headers, as AWS does).
    `headers` must contain host.
    """
    amz_date = amz_now(now)
    out = {k.lower(): str(v) for k, v in headers.items()}
    out["x-amz-date"] = amz_date
    out["x-amz-content-sha256"] = payload_hash
    names = sorted(out)
    date = amz_date[:8]
    scope = scope_string(date, region, service)
    creq = canonical_request(method, path, canonical_query(query_pairs), out, names, payload_hash)
    sig = hmac_hex(signing_key(secret_key, date, region, service), string_to_sign(amz_date, scope, creq))
    out["authorization"] = (
        f"{ALGORITHM} Credential={access_key}/{scope}, SignedHeaders={';'.join(names)}, Signature={sig}"
    )
    return out


def presign_query(method: str, host: str, path: str, query_pairs: Iterable[tuple[str, str]], *, access_key: str,
                  secret_key: str, region: str, service: str = "s3", expires: int = 3600,
                  now: _dt.datetime | None = None) -> str:
    """The query string (without '?') of a presigned URL; only `host` is signed, payload UNSIGNED."""
    amz_date = amz_now(now)
    date = amz_date[:8]
    scope = scope_string(date, region, service)
    pairs = list(query_pairs) + [
        ("X-Amz-Algorithm", ALGORITHM),
        ("X-Amz-Credential", f"{access_key}/{scope}"),
        ("X-Amz-Date", amz_date),
        ("X-Amz-Expires", str(int(expires))),
        ("X-Amz-SignedHeaders", "host"),
    ]
    cq = canonical_query(pairs)
    creq = canonical_request(method, path, cq, {"host": host}, ["host"], UNSIGNED_PAYLOAD)
    sig = hmac_hex(signing_key(secret_key, date, region, service), string_to_sign(amz_date, scope, creq))
    return f"{cq}&X-Amz-Signature={sig}"
