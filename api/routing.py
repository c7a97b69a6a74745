"""Which protocol a request on the one port speaks."""
from __future__ import annotations

from .sigv4 import credential_scope


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
