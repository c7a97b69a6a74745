"""Checking a request's AWS signature: the Authorization header (SigV4), a presigned query
string (SigV4, or S3's SigV2 form that `aws s3 presign` still makes), with expiry and skew.

Works on a `SignedRequest` (method, raw path, raw query, lowercase headers): the front end
builds it from its HTTP framework; nothing here reads a socket. The body is not read here
either: services that sign a whole small body (EC2 form posts) pass it as `body`; S3
bodies stream through `chunked.Payload`, which checks what `Verified.payload_hash` promises.

Failures raise emulator errors carrying the AWS codes (SignatureDoesNotMatch,
InvalidAccessKeyId, AccessDenied for expired URLs, RequestTimeTooSkewed, ...).
"""
from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import hmac
import re
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Callable, Mapping
from urllib.parse import quote, unquote

from ..errors import Forbidden, InvalidParameter, Unauthorized
from .signing import (ALGORITHM, AMZ_DATE_FORMAT, EMPTY_SHA256, STREAMING_PAYLOADS, UNSIGNED_PAYLOAD,
                      canonical_query, canonical_request, hmac_hex, query_pairs, same, scope_string, signing_key,
                      string_to_sign)

MAX_SKEW = 15 * 60          # seconds, as AWS
MAX_PRESIGN_EXPIRES = 7 * 24 * 3600

_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/(\d{8})/([^/,\s]+)/([a-z0-9-]+)/aws4_request")
_AUTH_FIELD = re.compile(r"(Credential|SignedHeaders|Signature)=([^,\s]*)")
HEX64 = re.compile(r"^[0-9a-f]{64}$")

SecretLookup = Callable[[str], "tuple[Any, str]"]


@dataclass(frozen=True)
class SignedRequest:
    method: str
    path: str                       # as the client sent it, still percent-encoded
    query: str                      # the raw query string
    headers: Mapping[str, str]      # lowercase names


@dataclass(frozen=True)
class Scope:
    key_id: str
    date: str
    region: str
    service: str

    def __str__(self) -> str:
        return scope_string(self.date, self.region, self.service)


@dataclass(frozen=True)
class Verified:
    account: Any
    key_id: str
    scope: Scope
    amz_date: str
    signature: str          # the seed signature for aws-chunked bodies
    signing_key: bytes
    payload_hash: str       # what the signature claims about the body
    presigned: bool


# -- which protocol -------------------------------------------------------------------

def scope_service(authorization: str, query: str) -> str | None:
    """The SigV4 service ('s3', 'ec2', ...) a request is signed for, or None when unsigned."""
    m = _CREDENTIAL.search(authorization)
    if m:
        return m.group(4)
    if "X-Amz-Credential" not in query:
        return None
    for k, v in query_pairs(query):
        if k == "X-Amz-Credential":
            parts = v.split("/")
            return parts[3] if len(parts) == 5 else None
    return None


def is_signed(authorization: str, query: str) -> bool:
    return bool(authorization) or "X-Amz-Signature=" in query or ("Signature=" in query and "AWSAccessKeyId=" in query)


# -- verification -----------------------------------------------------------------------

def verify(req: SignedRequest, secret_lookup: SecretLookup, *, body: bytes | None = None,
           region: str | None = None, service: str | None = None, now: _dt.datetime | None = None) -> Verified:
    """Check the request's signature; return who signed it and for which scope.

    `secret_lookup(key_id) -> (account, secret)` raises for unknown keys. `body`: the whole
    body for services that sign it at once (EC2 form posts); it must then hash to what was
    signed, whatever x-amz-content-sha256 claims. `region`/`service`: what this endpoint
    serves; a request signed for another scope is refused.
    """
    now = now or _dt.datetime.now(_dt.timezone.utc)
    auth = req.headers.get("authorization", "")
    if auth:
        verified = _verify_header(req, auth, secret_lookup, body, region, service, now)
    elif "X-Amz-Signature=" in req.query:
        verified = _verify_presigned(req, secret_lookup, region, service, now)
    elif "Signature=" in req.query and "AWSAccessKeyId=" in req.query:
        return _verify_v2_query(req, secret_lookup, region, now)
    else:
        raise Forbidden("the request is not signed", code="AccessDenied")
    if body is not None and verified.payload_hash != hashlib.sha256(body).hexdigest():
        # a signature over another body (or over none) says nothing about this one
        raise InvalidParameter("The provided 'x-amz-content-sha256' header does not match what was computed.",
                               code="XAmzContentSHA256Mismatch")
    return verified


def _mismatch() -> Unauthorized:
    return Unauthorized("The request signature we calculated does not match the signature you provided. "
                        "Check your key and signing method.", code="SignatureDoesNotMatch")


def _check_scope(scope: Scope, region: str | None, service: str | None, code: str) -> None:
    if service is not None and scope.service != service:
        raise InvalidParameter(f"the credential scope names service {scope.service[:32]!r}; this endpoint "
                               f"serves {service!r}", code=code)
    if region is not None and scope.region != region:
        raise InvalidParameter(f"the region {scope.region[:32]!r} is wrong; expecting {region!r}", code=code)


def canonical_paths(path: str, service: str) -> list[str]:
    """Candidate canonical URIs. S3 signs the path as sent; other services normalize and encode twice."""
    if service == "s3":
        alt = quote(unquote(path), safe="/~")
        return [path] if alt == path else [path, alt]
    segments: list[str] = []
    for seg in path.split("/"):
        if seg == "..":
            if segments:
                segments.pop()
        elif seg not in (".", ""):
            segments.append(seg)
    norm = "/" + "/".join(segments) + ("/" if path.endswith("/") and segments else "")
    return [quote(norm, safe="/~")]


def parse_amz_date(value: str, code: str = "AuthorizationHeaderMalformed") -> _dt.datetime:
    try:
        return _dt.datetime.strptime(value, AMZ_DATE_FORMAT).replace(tzinfo=_dt.timezone.utc)
    except (TypeError, ValueError):
        raise InvalidParameter(f"invalid X-Amz-Date {str(value)[:32]!r}: expected YYYYMMDD'T'HHMMSS'Z'",
                               code=code) from None


def _matches(req: SignedRequest, key: bytes, scope: Scope, amz_date: str, query: str, signed: list[str],
             payload_hash: str, given: str) -> bool:
    for path in canonical_paths(req.path, scope.service):
        creq = canonical_request(req.method, path, query, req.headers, signed, payload_hash)
        if same(hmac_hex(key, string_to_sign(amz_date, str(scope), creq)), given):
            return True
    return False


def _verify_header(req, auth, secret_lookup, body, region, service, now) -> Verified:
    algorithm, _, rest = auth.partition(" ")
    if algorithm != ALGORITHM:
        if algorithm == "AWS":
            raise InvalidParameter("Signature Version 2 is not supported; use AWS4-HMAC-SHA256",
                                   code="InvalidRequest")
        raise InvalidParameter(f"unsupported authorization type {algorithm[:40]!r}; use {ALGORITHM}",
                               code="AuthorizationHeaderMalformed")
    fields = dict(_AUTH_FIELD.findall(rest))
    cred = _CREDENTIAL.fullmatch("Credential=" + fields.get("Credential", ""))
    if not cred or not fields.get("SignedHeaders") or not fields.get("Signature"):
        raise InvalidParameter("the Authorization header is malformed: it needs Credential=KEY/DATE/REGION/"
                               "SERVICE/aws4_request, SignedHeaders= and Signature=",
                               code="AuthorizationHeaderMalformed")
    scope = Scope(*cred.groups())
    _check_scope(scope, region, service, "AuthorizationHeaderMalformed")
    headers = req.headers
    signed = fields["SignedHeaders"].split(";")
    if "host" not in signed:
        raise InvalidParameter("the host header must be signed", code="AuthorizationHeaderMalformed")
    amz_date = headers.get("x-amz-date")
    if amz_date:
        when = parse_amz_date(amz_date)
    elif headers.get("date"):
        try:
            when = parsedate_to_datetime(headers["date"]).astimezone(_dt.timezone.utc)
        except (TypeError, ValueError):
            raise InvalidParameter("invalid Date header", code="AuthorizationHeaderMalformed") from None
        amz_date = when.strftime(AMZ_DATE_FORMAT)
    else:
        raise Forbidden("the request has no X-Amz-Date or Date header", code="AccessDenied")
    if abs((now - when).total_seconds()) > MAX_SKEW:
        raise Forbidden("The difference between the request time and the current time is too large.",
                        code="RequestTimeTooSkewed")
    if amz_date[:8] != scope.date:
        raise InvalidParameter("the credential date does not match X-Amz-Date", code="AuthorizationHeaderMalformed")
    payload_hash = headers.get("x-amz-content-sha256")
    if payload_hash is None:
        if scope.service == "s3":
            raise InvalidParameter("missing required header x-amz-content-sha256", code="InvalidRequest")
        payload_hash = hashlib.sha256(body or b"").hexdigest()
    elif payload_hash not in (UNSIGNED_PAYLOAD, *STREAMING_PAYLOADS) and not HEX64.match(payload_hash):
        raise InvalidParameter("x-amz-content-sha256 must be a hex SHA-256, UNSIGNED-PAYLOAD or STREAMING-…",
                               code="InvalidArgument")
    account, secret = secret_lookup(scope.key_id)
    key = signing_key(secret, scope.date, scope.region, scope.service)
    given = fields["Signature"]
    if not _matches(req, key, scope, amz_date, canonical_query(query_pairs(req.query)), signed, payload_hash, given):
        raise _mismatch()
    return Verified(account, scope.key_id, scope, amz_date, given, key, payload_hash, False)


def _verify_presigned(req, secret_lookup, region, service, now) -> Verified:
    pairs = query_pairs(req.query)
    q = dict(pairs)
    code = "AuthorizationQueryParametersError"
    if q.get("X-Amz-Algorithm") != ALGORITHM:
        raise InvalidParameter(f"X-Amz-Algorithm must be {ALGORITHM}", code=code)
    cred = _CREDENTIAL.fullmatch("Credential=" + q.get("X-Amz-Credential", ""))
    if not cred or not q.get("X-Amz-SignedHeaders") or not q.get("X-Amz-Signature"):
        raise InvalidParameter("a presigned URL needs X-Amz-Credential, X-Amz-Date, X-Amz-Expires, "
                               "X-Amz-SignedHeaders and X-Amz-Signature", code=code)
    scope = Scope(*cred.groups())
    _check_scope(scope, region, service, code)
    amz_date = q.get("X-Amz-Date", "")
    when = parse_amz_date(amz_date, code)
    try:
        expires = int(q.get("X-Amz-Expires", ""))
    except ValueError:
        raise InvalidParameter("X-Amz-Expires must be a number of seconds", code=code) from None
    if not 0 < expires <= MAX_PRESIGN_EXPIRES:
        raise InvalidParameter("X-Amz-Expires must be between 1 and 604800 seconds", code=code)
    if amz_date[:8] != scope.date:
        raise InvalidParameter("the credential date does not match X-Amz-Date", code=code)
    if (when - now).total_seconds() > MAX_SKEW:
        raise Forbidden("Request is not valid yet", code="AccessDenied")
    if now > when + _dt.timedelta(seconds=expires):
        raise Forbidden("Request has expired", code="AccessDenied")
    signed = q["X-Amz-SignedHeaders"].split(";")
    if "host" not in signed:
        raise InvalidParameter("the host header must be signed", code=code)
    headers = req.headers
    payload_hash = q.get("X-Amz-Content-Sha256") or headers.get("x-amz-content-sha256") or UNSIGNED_PAYLOAD
    if scope.service != "s3" and payload_hash == UNSIGNED_PAYLOAD and "x-amz-content-sha256" not in headers:
        payload_hash = EMPTY_SHA256  # presigned non-S3 requests (rare) sign an empty payload
    account, secret = secret_lookup(scope.key_id)
    key = signing_key(secret, scope.date, scope.region, scope.service)
    query = canonical_query([(k, v) for k, v in pairs if k != "X-Amz-Signature"])
    given = q["X-Amz-Signature"]
    if not _matches(req, key, scope, amz_date, query, signed, payload_hash, given):
        raise _mismatch()
    return Verified(account, scope.key_id, scope, amz_date, given, key, payload_hash, True)


# Sub-resources that S3's Signature Version 2 signs (as botocore's HmacV1Auth lists them).
V2_SUBRESOURCES = {
    "accelerate", "acl", "cors", "defaultObjectAcl", "location", "logging", "partNumber", "policy",
    "requestPayment", "torrent", "versioning", "versionId", "versions", "website", "uploads", "uploadId",
    "response-content-type", "response-content-language", "response-expires", "response-cache-control",
    "response-content-disposition", "response-content-encoding", "delete", "lifecycle", "tagging", "restore",
    "storageClass", "notification", "replication", "analytics", "metrics", "inventory", "select", "select-type",
    "object-lock",
}


def _verify_v2_query(req, secret_lookup, region, now) -> Verified:
    """S3 presigned URLs in Signature Version 2 (AWSAccessKeyId, Expires, Signature).

    Only S3, and only as query strings: that is what `aws s3 presign` and boto3's
    generate_presigned_url produce by default. Header-signed SigV2 stays refused. SigV2
    names no signing time, so the expiry itself is capped as SigV4's is: 7 days from now.
    """
    # SigV2 signs 'acl' and 'acl=' differently, so this keeps which pairs had an '='
    pairs = [p.split("=", 1) if "=" in p else [p] for p in req.query.split("&") if p]
    q = {p[0]: unquote(p[1]) if len(p) > 1 else "" for p in pairs}
    key_id, given, expires = q.get("AWSAccessKeyId", ""), q.get("Signature", ""), q.get("Expires", "")
    code = "AuthorizationQueryParametersError"
    try:
        expires_at = int(expires)
    except ValueError:
        raise InvalidParameter("a presigned URL needs a numeric Expires", code=code) from None
    if now.timestamp() > expires_at:
        raise Forbidden("Request has expired", code="AccessDenied")
    if expires_at - now.timestamp() > MAX_PRESIGN_EXPIRES:
        raise InvalidParameter("a presigned URL may not be valid for more than 7 days (604800 seconds)", code=code)
    account, secret = secret_lookup(key_id)
    headers = req.headers
    amz = sorted((k, ",".join(v.strip() for v in headers[k].split(","))) for k in headers if k.startswith("x-amz-"))
    sub = sorted((p[0], unquote(p[1]) if len(p) > 1 else None) for p in pairs if p[0] in V2_SUBRESOURCES)
    resource = req.path
    if sub:
        resource += "?" + "&".join(k if v is None else f"{k}={v}" for k, v in sub)
    sts = "\n".join([req.method, headers.get("content-md5", ""), headers.get("content-type", ""),
                     str(expires_at)] + [f"{k}:{v}" for k, v in amz] + [resource])
    expected = base64.b64encode(hmac.new(secret.encode(), sts.encode(), hashlib.sha1).digest()).decode()
    if not same(expected, given):
        raise _mismatch()
    when = _dt.datetime.fromtimestamp(expires_at, _dt.timezone.utc)
    scope = Scope(key_id, when.strftime("%Y%m%d"), region or "us-east-1", "s3")
    return Verified(account, key_id, scope, when.strftime(AMZ_DATE_FORMAT), given, b"", UNSIGNED_PAYLOAD, True)
