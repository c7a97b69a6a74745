"""Which protocol a request on the one port speaks."""
from __future__ import annotations

from typing import Iterable

from .sigv4 import credential_scope


JSON_TARGETS = {"AWSInsightsIndexService.": "ce", "AWSBudgetServiceGateway.": "budgets"}


def virtual_host_bucket(environ: dict, domains: Iterable[str]) -> str | None:
    """The bucket a virtual-hosted-style S3 request names in its Host (BUCKET.DOMAIN[:port]),
    or None for a path-style request."""
    host = environ.get("HTTP_HOST", "").strip().lower()
    if host.startswith("["):
        return None  # an IPv6 literal
    host = host.rsplit(":", 1)[0] if ":" in host else host
    for domain in domains:
        if host.endswith("." + domain) and len(host) > len(domain) + 1:
            return host[:-len(domain) - 1]
    return None


def protocol_of(environ: dict, s3_domains: Iterable[str] = ()) -> str:
    path = environ.get("PATH_INFO", "/")
    if s3_domains and virtual_host_bucket(environ, s3_domains):
        return credential_scope(environ) or "s3"  # every path under a bucket's host is one of its keys
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
