"""SigV4 for the WSGI front ends: the request as emulator.sigv4 reads it, from a WSGI environ.

    scope = credential_scope(environ)            # 's3', 'ec2', ... or None (unsigned)
    auth = verify(environ, accounts.secret_for)  # -> Verified(account, key_id, scope, ...)
    body = RequestBody(environ, auth)            # iterate: the decoded, verified payload

The maths (canonical requests, verification, aws-chunked, checksums) is emulator.sigv4's;
this module only knows where a WSGI server puts the raw path, the headers and the body.
"""
from __future__ import annotations

import datetime as _dt
from urllib.parse import quote

from emulator import sigv4 as _sigv4
from emulator.errors import InvalidParameter
from emulator.sigv4 import PIECE, Payload, SecretLookup, SignedRequest, Verified

__all__ = ["PIECE", "RequestBody", "Verified", "credential_scope", "headers_of", "is_signed", "raw_path",
           "request_of", "verify"]


def raw_path(environ: dict) -> str:
    """The path exactly as the client sent it (still percent-encoded)."""
    uri = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if uri:
        if "://" in uri.split("?", 1)[0]:  # absolute-form request target
            uri = "/" + uri.split("://", 1)[1].split("/", 1)[-1]
        return uri.split("?", 1)[0] or "/"
    path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
    return quote(path.encode("latin-1").decode("utf-8", "replace"), safe="/~") or "/"


def headers_of(environ: dict) -> dict[str, str]:
    """The request headers, lowercase names."""
    out = {}
    for k, v in environ.items():
        if k.startswith("HTTP_"):
            out[k[5:].replace("_", "-").lower()] = v
    if environ.get("CONTENT_TYPE"):
        out["content-type"] = environ["CONTENT_TYPE"]
    if environ.get("CONTENT_LENGTH"):
        out["content-length"] = environ["CONTENT_LENGTH"]
    return out


def request_of(environ: dict) -> SignedRequest:
    return SignedRequest(environ.get("REQUEST_METHOD", "GET"), raw_path(environ), environ.get("QUERY_STRING", ""),
                         headers_of(environ))


def credential_scope(environ: dict) -> str | None:
    """The SigV4 service ('s3', 'ec2', ...) a request is signed for, or None when unsigned."""
    return _sigv4.scope_service(environ.get("HTTP_AUTHORIZATION", ""), environ.get("QUERY_STRING", ""))


def is_signed(environ: dict) -> bool:
    return _sigv4.is_signed(environ.get("HTTP_AUTHORIZATION", ""), environ.get("QUERY_STRING", ""))


def verify(environ: dict, secret_lookup: SecretLookup, *, body: bytes | None = None, region: str | None = None,
           service: str | None = None, now: _dt.datetime | None = None) -> Verified:
    """emulator.sigv4.verify on a WSGI request; see there."""
    return _sigv4.verify(request_of(environ), secret_lookup, body=body, region=region, service=service, now=now)


def RequestBody(environ: dict, auth: Verified | None) -> Payload:  # noqa: N802 - reads as the type it makes
    """The request's body as a verified stream (emulator.sigv4.Payload)."""
    headers = headers_of(environ)
    raw_len = headers.get("content-length")
    try:
        raw_len = int(raw_len) if raw_len not in (None, "") else None
    except ValueError:
        raise InvalidParameter("invalid Content-Length", code="InvalidArgument") from None
    if raw_len is None and not environ.get("wsgi.input_terminated") and \
            "chunked" not in headers.get("transfer-encoding", "").lower():
        raw_len = 0  # no length and no framing: there is no body
    return Payload(environ["wsgi.input"], headers, auth, raw_len)
