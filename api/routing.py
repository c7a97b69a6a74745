"""Which protocol a request on the one port speaks."""
from __future__ import annotations

import re
from urllib.parse import parse_qs

_SCOPE = re.compile(r"Credential=[^/,\s]+/\d{8}/[^/,\s]+/([a-z0-9-]+)/aws4_request")


def credential_scope(environ: dict) -> str | None:
    """The SigV4 service of a signed request ('s3', 'ec2', ...), or None when unsigned."""
    m = _SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
    if m:
        return m.group(1)
    qs = parse_qs(environ.get("QUERY_STRING", ""))
    cred = (qs.get("X-Amz-Credential") or [""])[0]
    parts = cred.split("/")
    return parts[3] if len(parts) == 5 else None


def protocol_of(environ: dict) -> str:
    path = environ.get("PATH_INFO", "/")
    if path == "/api" or path.startswith("/api/") or path == "/ui" or path.startswith("/ui/") or path == "/favicon.ico":
        return "web"
    scope = credential_scope(environ)
    if scope:
        return scope
    # Unsigned EC2 Query requests still deserve an EC2-shaped AuthFailure.
    if path == "/" and ("Action=" in environ.get("QUERY_STRING", "") or (
            environ.get("REQUEST_METHOD") == "POST"
            and environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"))):
        return "ec2"
    return "s3"
