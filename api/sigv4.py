"""AWS Signature Version 4 verification for every signed front end (S3 today, EC2 too).

    scope = credential_scope(environ)            # 's3', 'ec2', ... or None (unsigned)
    auth = verify(environ, accounts.secret_for)  # -> Verified(account, key_id, scope, ...)
    body = RequestBody(environ, auth)            # iterate: the decoded, verified payload

`verify` checks the Authorization header or a presigned query string (with its expiry)
against the caller's secret. It does not read the body: `RequestBody` streams it and
checks what the signature promised about it — a hex SHA-256, UNSIGNED-PAYLOAD, or an
`aws-chunked` encoding (STREAMING-UNSIGNED-PAYLOAD-TRAILER, STREAMING-AWS4-HMAC-SHA256-
PAYLOAD[-TRAILER]) whose chunk and trailer signatures and checksum trailers it verifies
while decoding. The last piece of data is held back until every check has passed, so a
consumer that forwards the pieces with a fixed Content-Length never completes a request
whose body turns out to be forged: the receiver sees a short body and discards it.

Failures raise emulator errors carrying the AWS codes (SignatureDoesNotMatch,
InvalidAccessKeyId, AccessDenied for expired URLs, RequestTimeTooSkewed, ...).
"""
from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import hmac
import re
import zlib
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Callable, Iterator
from urllib.parse import quote, unquote

from emulator.errors import Forbidden, InvalidParameter, Unauthorized
from emulator.storage.signing import (ALGORITHM, AMZ_DATE_FORMAT, EMPTY_SHA256, STREAMING_PAYLOADS,
                                      STREAMING_SIGNED, STREAMING_SIGNED_TRAILER, STREAMING_UNSIGNED_TRAILER,
                                      UNSIGNED_PAYLOAD, canonical_query, canonical_request, chunk_string_to_sign,
                                      hmac_hex, scope_string, signing_key, string_to_sign, trailer_string_to_sign)

MAX_SKEW = 15 * 60          # seconds, as AWS
MAX_PRESIGN_EXPIRES = 7 * 24 * 3600
PIECE = 1024 * 1024         # how much of the body is read at once
MAX_CHUNK_HEADER = 4096

_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/(\d{8})/([^/,\s]+)/([a-z0-9-]+)/aws4_request")
_AUTH_FIELD = re.compile(r"(Credential|SignedHeaders|Signature)=([^,\s]*)")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")

SecretLookup = Callable[[str], "tuple[Any, str]"]


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

def credential_scope(environ: dict) -> str | None:
    """The SigV4 service ('s3', 'ec2', ...) a request is signed for, or None when unsigned."""
    m = _CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
    if m:
        return m.group(4)
    qs = environ.get("QUERY_STRING", "")
    if "X-Amz-Credential" not in qs:
        return None
    for k, v in _query_pairs(qs):
        if k == "X-Amz-Credential":
            parts = v.split("/")
            return parts[3] if len(parts) == 5 else None
    return None


def is_signed(environ: dict) -> bool:
    qs = environ.get("QUERY_STRING", "")
    return bool(environ.get("HTTP_AUTHORIZATION")) or "X-Amz-Signature=" in qs or (
        "Signature=" in qs and "AWSAccessKeyId=" in qs)


# -- request parts ----------------------------------------------------------------------

def _query_pairs(qs: str) -> list[tuple[str, str]]:
    pairs = []
    for part in qs.split("&"):
        if not part:
            continue
        k, _, v = part.partition("=")
        pairs.append((unquote(k.replace("+", "%20")), unquote(v.replace("+", "%20"))))
    return pairs


def raw_path(environ: dict) -> str:
    """The path exactly as the client sent it (still percent-encoded)."""
    uri = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if uri:
        if "://" in uri.split("?", 1)[0]:  # absolute-form request target
            uri = "/" + uri.split("://", 1)[1].split("/", 1)[-1]
        return uri.split("?", 1)[0] or "/"
    path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
    return quote(path.encode("latin-1").decode("utf-8", "replace"), safe="/~") or "/"


def _headers(environ: dict) -> dict[str, str]:
    out = {}
    for k, v in environ.items():
        if k.startswith("HTTP_"):
            out[k[5:].replace("_", "-").lower()] = v
    if environ.get("CONTENT_TYPE"):
        out["content-type"] = environ["CONTENT_TYPE"]
    if environ.get("CONTENT_LENGTH"):
        out["content-length"] = environ["CONTENT_LENGTH"]
    return out


def _canonical_paths(environ: dict, service: str) -> list[str]:
    """Candidate canonical URIs. S3 signs the path as sent; other services normalize and encode twice."""
    raw = raw_path(environ)
    if service == "s3":
        decoded = unquote(raw)
        alt = quote(decoded, safe="/~")
        return [raw] if alt == raw else [raw, alt]
    segments = []
    for seg in raw.split("/"):
        if seg == "..":
            if segments:
                segments.pop()
        elif seg not in (".", ""):
            segments.append(seg)
    norm = "/" + "/".join(segments) + ("/" if raw.endswith("/") and segments else "")
    return [quote(norm, safe="/~")]


def _parse_amz_date(value: str) -> _dt.datetime:
    try:
        return _dt.datetime.strptime(value, AMZ_DATE_FORMAT).replace(tzinfo=_dt.timezone.utc)
    except (TypeError, ValueError):
        raise InvalidParameter(f"invalid X-Amz-Date {str(value)[:32]!r}: expected YYYYMMDD'T'HHMMSS'Z'",
                               code="AuthorizationHeaderMalformed") from None


# -- verification -----------------------------------------------------------------------

def verify(environ: dict, secret_lookup: SecretLookup, *, body: bytes | None = None,
           now: _dt.datetime | None = None) -> Verified:
    """Check the request's SigV4 signature; return who signed it and for which scope.

    `secret_lookup(key_id) -> (account, secret)` raises for unknown keys. `body` is only
    needed for services that do not send x-amz-content-sha256 (EC2 form posts).
    """
    now = now or _dt.datetime.now(_dt.timezone.utc)
    auth = environ.get("HTTP_AUTHORIZATION", "")
    if auth:
        return _verify_header(environ, auth, secret_lookup, body, now)
    if "X-Amz-Signature=" in environ.get("QUERY_STRING", ""):
        return _verify_presigned(environ, secret_lookup, now)
    if "Signature=" in environ.get("QUERY_STRING", "") and "AWSAccessKeyId=" in environ.get("QUERY_STRING", ""):
        return _verify_v2_query(environ, secret_lookup, now)
    raise Forbidden("the request is not signed", code="AccessDenied")


def _check_signature(expected: str, given: str, creq: str, sts: str) -> None:
    if not hmac.compare_digest(expected, given):
        raise Unauthorized(
            "The request signature we calculated does not match the signature you provided. "
            "Check your key and signing method.",
            code="SignatureDoesNotMatch",
        )


def _verify_header(environ, auth, secret_lookup, body, now) -> Verified:
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
    headers = _headers(environ)
    signed = fields["SignedHeaders"].split(";")
    if "host" not in signed:
        raise InvalidParameter("the host header must be signed", code="AuthorizationHeaderMalformed")
    amz_date = headers.get("x-amz-date")
    if amz_date:
        when = _parse_amz_date(amz_date)
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
    elif payload_hash not in (UNSIGNED_PAYLOAD, *STREAMING_PAYLOADS) and not _HEX64.match(payload_hash):
        raise InvalidParameter("x-amz-content-sha256 must be a hex SHA-256, UNSIGNED-PAYLOAD or STREAMING-…",
                               code="InvalidArgument")
    account, secret = secret_lookup(scope.key_id)
    key = signing_key(secret, scope.date, scope.region, scope.service)
    query = canonical_query(_query_pairs(environ.get("QUERY_STRING", "")))
    method = environ.get("REQUEST_METHOD", "GET")
    given = fields["Signature"]
    creq = sts = ""
    for path in _canonical_paths(environ, scope.service):
        creq = canonical_request(method, path, query, headers, signed, payload_hash)
        sts = string_to_sign(amz_date, str(scope), creq)
        if hmac.compare_digest(hmac_hex(key, sts), given):
            break
    else:
        _check_signature("", given or "-", creq, sts)
    return Verified(account, scope.key_id, scope, amz_date, given, key, payload_hash, False)


def _verify_presigned(environ, secret_lookup, now) -> Verified:
    pairs = _query_pairs(environ.get("QUERY_STRING", ""))
    q = dict(pairs)
    if q.get("X-Amz-Algorithm") != ALGORITHM:
        raise InvalidParameter(f"X-Amz-Algorithm must be {ALGORITHM}", code="AuthorizationQueryParametersError")
    cred = _CREDENTIAL.fullmatch("Credential=" + q.get("X-Amz-Credential", ""))
    if not cred or not q.get("X-Amz-SignedHeaders") or not q.get("X-Amz-Signature"):
        raise InvalidParameter("a presigned URL needs X-Amz-Credential, X-Amz-Date, X-Amz-Expires, "
                               "X-Amz-SignedHeaders and X-Amz-Signature", code="AuthorizationQueryParametersError")
    scope = Scope(*cred.groups())
    amz_date = q.get("X-Amz-Date", "")
    when = _parse_amz_date(amz_date)
    try:
        expires = int(q.get("X-Amz-Expires", ""))
    except ValueError:
        raise InvalidParameter("X-Amz-Expires must be a number of seconds",
                               code="AuthorizationQueryParametersError") from None
    if not 0 < expires <= MAX_PRESIGN_EXPIRES:
        raise InvalidParameter("X-Amz-Expires must be between 1 and 604800 seconds",
                               code="AuthorizationQueryParametersError")
    if amz_date[:8] != scope.date:
        raise InvalidParameter("the credential date does not match X-Amz-Date",
                               code="AuthorizationQueryParametersError")
    if (when - now).total_seconds() > MAX_SKEW:
        raise Forbidden("Request is not valid yet", code="AccessDenied")
    if now > when + _dt.timedelta(seconds=expires):
        raise Forbidden("Request has expired", code="AccessDenied")
    signed = q["X-Amz-SignedHeaders"].split(";")
    if "host" not in signed:
        raise InvalidParameter("the host header must be signed", code="AuthorizationQueryParametersError")
    headers = _headers(environ)
    payload_hash = q.get("X-Amz-Content-Sha256") or headers.get("x-amz-content-sha256") or UNSIGNED_PAYLOAD
    if scope.service != "s3" and payload_hash == UNSIGNED_PAYLOAD and "x-amz-content-sha256" not in headers:
        payload_hash = EMPTY_SHA256  # presigned non-S3 requests (rare) sign an empty payload
    account, secret = secret_lookup(scope.key_id)
    key = signing_key(secret, scope.date, scope.region, scope.service)
    query = canonical_query([(k, v) for k, v in pairs if k != "X-Amz-Signature"])
    method = environ.get("REQUEST_METHOD", "GET")
    given = q["X-Amz-Signature"]
    for path in _canonical_paths(environ, scope.service):
        creq = canonical_request(method, path, query, headers, signed, payload_hash)
        if hmac.compare_digest(hmac_hex(key, string_to_sign(amz_date, str(scope), creq)), given):
            break
    else:
        _check_signature("", given or "-", "", "")
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


def _verify_v2_query(environ, secret_lookup, now) -> Verified:
    """S3 presigned URLs in Signature Version 2 (AWSAccessKeyId, Expires, Signature).

    Only S3, and only as query strings: that is what `aws s3 presign` and boto3's
    generate_presigned_url produce by default. Header-signed SigV2 stays refused.
    """
    qs = environ.get("QUERY_STRING", "")
    pairs = [p.split("=", 1) if "=" in p else [p] for p in qs.split("&") if p]
    q = {p[0]: unquote(p[1]) if len(p) > 1 else "" for p in pairs}
    key_id, given, expires = q.get("AWSAccessKeyId", ""), q.get("Signature", ""), q.get("Expires", "")
    try:
        expires_at = int(expires)
    except ValueError:
        raise InvalidParameter("a presigned URL needs a numeric Expires", code="AuthorizationQueryParametersError") \
            from None
    if now.timestamp() > expires_at:
        raise Forbidden("Request has expired", code="AccessDenied")
    account, secret = secret_lookup(key_id)
    headers = _headers(environ)
    amz = sorted((k, ",".join(v.strip() for v in headers[k].split(","))) for k in headers if k.startswith("x-amz-"))
    sub = sorted((p[0], unquote(p[1]) if len(p) > 1 else None) for p in pairs if p[0] in V2_SUBRESOURCES)
    resource = raw_path(environ)
    if sub:
        resource += "?" + "&".join(k if v is None else f"{k}={v}" for k, v in sub)
    sts = "\n".join([environ.get("REQUEST_METHOD", "GET"), headers.get("content-md5", ""),
                     headers.get("content-type", ""), str(expires_at)] + [f"{k}:{v}" for k, v in amz] + [resource])
    expected = base64.b64encode(hmac.new(secret.encode(), sts.encode(), hashlib.sha1).digest()).decode()
    if not hmac.compare_digest(expected, given):
        _check_signature("", given or "-", "", sts)
    when = _dt.datetime.fromtimestamp(expires_at, _dt.timezone.utc)
    scope = Scope(key_id, when.strftime("%Y%m%d"), "us-east-1", "s3")
    return Verified(account, key_id, scope, when.strftime(AMZ_DATE_FORMAT), given, b"", UNSIGNED_PAYLOAD, True)


# -- the body -----------------------------------------------------------------------------

class _Crc32:
    def __init__(self):
        self.value = 0

    def update(self, data: bytes) -> None:
        self.value = zlib.crc32(data, self.value)

    def digest(self) -> bytes:
        return self.value.to_bytes(4, "big")


def _crc32c_factory():
    try:  # awscrt ships a fast CRC32C; without it the checksum is accepted unverified
        from awscrt import checksums  # type: ignore
    except Exception:  # noqa: BLE001
        return None

    class _Crc32c:
        def __init__(self):
            self.value = 0

        def update(self, data: bytes) -> None:
            self.value = checksums.crc32c(data, self.value)

        def digest(self) -> bytes:
            return self.value.to_bytes(4, "big")

    return _Crc32c


CHECKSUMS: dict[str, Callable[[], Any] | None] = {
    "crc32": _Crc32,
    "crc32c": _crc32c_factory(),
    "sha1": hashlib.sha1,
    "sha256": hashlib.sha256,
    "crc64nvme": None,
}


class _Reader:
    """Buffered reads over a WSGI input stream, bounded by the declared length."""

    def __init__(self, stream, remaining: int | None):
        self.stream = stream
        self.remaining = remaining
        self.buf = b""

    def _fill(self, n: int) -> bool:
        if self.remaining is not None:
            n = min(n, self.remaining)
            if n <= 0:
                return False
        data = self.stream.read(n)
        if not data:
            return False
        if self.remaining is not None:
            self.remaining -= len(data)
        self.buf += data
        return True

    def read(self, n: int) -> bytes:
        """Up to n bytes (fewer only at the end)."""
        if not self.buf:
            self._fill(n)
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def readline(self, limit: int = MAX_CHUNK_HEADER) -> bytes:
        while b"\n" not in self.buf:
            if len(self.buf) > limit or not self._fill(PIECE if self.remaining is None else min(PIECE, 8192)):
                break
        i = self.buf.find(b"\n")
        if i < 0 or i > limit:
            raise InvalidParameter("malformed aws-chunked body", code="IncompleteBody")
        line, self.buf = self.buf[:i + 1], self.buf[i + 1:]
        return line


class RequestBody:
    """The request payload, decoded and verified while it streams.

    `length` is the decoded size when known (Content-Length, or x-amz-decoded-content-length
    for aws-chunked). Iterate once. `checksum` is (name, base64 value) of a verified
    x-amz-checksum-* (header or trailer), to echo back as S3 does.
    """

    def __init__(self, environ: dict, auth: Verified | None, stream=None):
        self.environ = environ
        self.auth = auth
        headers = _headers(environ)
        self.headers = headers
        if stream is None:
            stream = environ["wsgi.input"]
        raw_len = headers.get("content-length")
        try:
            raw_len = int(raw_len) if raw_len not in (None, "") else None
        except ValueError:
            raise InvalidParameter("invalid Content-Length", code="InvalidArgument") from None
        if raw_len is None and not environ.get("wsgi.input_terminated") and \
                "chunked" not in headers.get("transfer-encoding", "").lower():
            raw_len = 0
        self.payload_hash = (auth.payload_hash if auth else headers.get("x-amz-content-sha256")) or UNSIGNED_PAYLOAD
        self.chunked = self.payload_hash in STREAMING_PAYLOADS or \
            "aws-chunked" in headers.get("content-encoding", "").lower()
        if self.chunked:
            if self.payload_hash not in STREAMING_PAYLOADS:
                # aws-chunked without a streaming payload hash: treat as unsigned trailer encoding
                self.payload_hash = STREAMING_UNSIGNED_TRAILER
            try:
                self.length = int(headers["x-amz-decoded-content-length"])
            except (KeyError, ValueError):
                raise InvalidParameter("aws-chunked bodies need x-amz-decoded-content-length",
                                       code="MissingContentLength") from None
        else:
            self.length = raw_len
        self._reader = _Reader(stream, raw_len)
        self.checksum: tuple[str, str] | None = None
        self._checksum_name, self._checksum_value, self._checksum = self._checksum_setup(headers)
        self._consumed = False

    # checksums: x-amz-checksum-ALG as a header, or announced in x-amz-trailer
    def _checksum_setup(self, headers):
        trailer = headers.get("x-amz-trailer", "").strip().lower()
        name = value = None
        if trailer.startswith("x-amz-checksum-"):
            name = trailer
        else:
            for k in headers:
                if k.startswith("x-amz-checksum-") and k != "x-amz-checksum-algorithm" and k != "x-amz-checksum-type":
                    name, value = k, headers[k]
                    break
        if not name:
            return None, None, None
        factory = CHECKSUMS.get(name[len("x-amz-checksum-"):])
        return name, value, factory() if factory else None

    def __iter__(self) -> Iterator[bytes]:
        if self._consumed:
            raise RuntimeError("the request body can be read once")
        self._consumed = True
        held = None
        for piece in self._pieces():
            if not piece:
                continue
            if held is not None:
                yield held
            held = piece
        if held is not None:
            yield held

    def read_all(self, limit: int) -> bytes:
        """The whole (small) body, verified; InvalidParameter beyond `limit` bytes."""
        out = bytearray()
        for piece in self:
            out += piece
            if len(out) > limit:
                raise InvalidParameter(f"request body larger than {limit} bytes", code="MaxMessageLengthExceeded")
        return bytes(out)

    def _pieces(self) -> Iterator[bytes]:
        if self.chunked:
            yield from self._chunked_pieces()
        else:
            yield from self._plain_pieces()
        self._finish_checksum()

    def _plain_pieces(self) -> Iterator[bytes]:
        want = self.payload_hash
        hasher = hashlib.sha256() if _HEX64.match(want) else None
        total = 0
        while True:
            piece = self._reader.read(PIECE)
            if not piece:
                break
            total += len(piece)
            if hasher:
                hasher.update(piece)
            if self._checksum:
                self._checksum.update(piece)
            yield piece
        if self.length is not None and total != self.length:
            raise InvalidParameter(f"the body ended after {total} of {self.length} bytes", code="IncompleteBody")
        if hasher and hasher.hexdigest() != want:
            raise InvalidParameter("The provided 'x-amz-content-sha256' header does not match what was computed.",
                                   code="XAmzContentSHA256Mismatch")

    def _chunked_pieces(self) -> Iterator[bytes]:
        signed = self.payload_hash in (STREAMING_SIGNED, STREAMING_SIGNED_TRAILER)
        if signed and self.auth is None:
            raise Forbidden("a signed aws-chunked body needs a signed request", code="AccessDenied")
        prev_sig = self.auth.signature if signed else ""
        scope = str(self.auth.scope) if self.auth else ""
        total = 0
        reader = self._reader
        while True:
            line = reader.readline()
            header = line.rstrip(b"\r\n").decode("latin-1")
            size_hex, _, ext = header.partition(";")
            try:
                size = int(size_hex.strip(), 16)
            except ValueError:
                raise InvalidParameter("malformed aws-chunked chunk header", code="IncompleteBody") from None
            chunk_sig = None
            if ext.strip().startswith("chunk-signature="):
                chunk_sig = ext.strip()[len("chunk-signature="):]
            if signed and not chunk_sig:
                raise Unauthorized("aws-chunked chunk without chunk-signature", code="SignatureDoesNotMatch")
            hasher = hashlib.sha256() if signed else None
            left = size
            while left:
                piece = reader.read(min(left, PIECE))
                if not piece:
                    raise InvalidParameter("the aws-chunked body ended inside a chunk", code="IncompleteBody")
                left -= len(piece)
                total += len(piece)
                if total > self.length:
                    raise InvalidParameter("the aws-chunked body is longer than x-amz-decoded-content-length",
                                           code="IncompleteBody")
                if hasher:
                    hasher.update(piece)
                if self._checksum:
                    self._checksum.update(piece)
                yield piece
            if signed:
                sts = chunk_string_to_sign(self.auth.amz_date, scope, prev_sig, hasher.hexdigest())
                expected = hmac_hex(self.auth.signing_key, sts)
                if not hmac.compare_digest(expected, chunk_sig):
                    raise Unauthorized("aws-chunked chunk signature does not match", code="SignatureDoesNotMatch")
                prev_sig = expected
            if size == 0:
                break
            if reader.read(2) != b"\r\n":
                raise InvalidParameter("malformed aws-chunked body (no CRLF after chunk data)", code="IncompleteBody")
        # trailers (for -TRAILER variants), then an empty line
        trailers: list[tuple[str, str]] = []
        trailer_sig = None
        while True:
            try:
                line = reader.readline()
            except InvalidParameter:
                break  # body ended right after the last chunk: no trailer section
            text = line.rstrip(b"\r\n").decode("latin-1")
            if not text:
                break
            name, _, value = text.partition(":")
            name = name.strip().lower()
            if name == "x-amz-trailer-signature":
                trailer_sig = value.strip()
            else:
                trailers.append((name, value.strip()))
        if total != self.length:
            raise InvalidParameter(f"the aws-chunked body decoded to {total} bytes, "
                                   f"x-amz-decoded-content-length says {self.length}", code="IncompleteBody")
        if self.payload_hash == STREAMING_SIGNED_TRAILER and trailers:
            blob = "".join(f"{n}:{v}\n" for n, v in trailers).encode()
            sts = trailer_string_to_sign(self.auth.amz_date, scope, prev_sig, hashlib.sha256(blob).hexdigest())
            if not trailer_sig or not hmac.compare_digest(hmac_hex(self.auth.signing_key, sts), trailer_sig):
                raise Unauthorized("aws-chunked trailer signature does not match", code="SignatureDoesNotMatch")
        for name, value in trailers:
            if name == self._checksum_name:
                self._checksum_value = value

    def _finish_checksum(self) -> None:
        if not self._checksum_name:
            return
        if self._checksum_value is None:
            raise InvalidParameter(f"the announced trailer {self._checksum_name} was not sent",
                                   code="InvalidRequest")
        if self._checksum is None:
            return  # an algorithm we cannot compute here: accepted as sent
        got = base64.b64encode(self._checksum.digest()).decode()
        if got != self._checksum_value:
            raise InvalidParameter(f"Value for {self._checksum_name} header is invalid.", code="BadDigest")
        self.checksum = (self._checksum_name, got)
