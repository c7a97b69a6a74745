"""Which protocol a request on the one port speaks."""
from __future__ import annotations

from .sigv4 import credential_scope


JSON_TARGETS = {"AWSInsightsIndexService.": "ce", "AWSBudgetServiceGateway.": "budgets"}


def protocol_of(environ: dict) -> str:
    path = environ.get("PATH_INFO", "/")
    if path == "/api" or path.startswith("/api/") or path == "/ui" or path.startswith("/ui/") or path == "/favicon.ico":
        return "web"
    scope = credential_scope(environ)
    if scope:
        return scope
    # Unsigned JSON 1.1 requests still deserve their service's MissingAuthenticationToken.
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    for prefix, service in JSON_TARGETS.items():
        if target.startswith(prefix):
            return service
    # Unsigned EC2 Query requests still deserve an EC2-shaped AuthFailure.
    if path == "/" and ("Action=" in environ.get("QUERY_STRING", "") or (
            environ.get("REQUEST_METHOD") == "POST"
            and environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"))):
        return "ec2"
    return "s3"
