"""Which protocol a request on the one port speaks, and which listener it came in on."""
from __future__ import annotations

from typing import Iterable
import re
from urllib.parse import quote, urlsplit

from .sigv4 import credential_scope

_HOSTNAME = re.compile(r"[A-Za-z0-9.-]{1,253}")


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


def is_console_path(path: str) -> bool:
    return path == "/ui" or path.startswith("/ui/")


def listener_port(environ: dict) -> int | None:
    """The local port the connection really came in on. gunicorn derives SERVER_PORT from
    the Host header, which a client chooses; the socket cannot lie."""
    sock = environ.get("gunicorn.socket")
    if sock is not None:
        try:
            return sock.getsockname()[1]
        except (OSError, IndexError, TypeError):
            pass
    try:
        return int(environ.get("SERVER_PORT", ""))
    except ValueError:
        return None


def console_redirect(environ: dict, start_response, console: tuple[str, int] | None):
    """/ui on the API port -> the same page on the console's origin, `console` = (bound host,
    port) (GET/HEAD; other methods answer 404 unread). On the console port (`console` None),
    anything outside /ui: / -> /ui/, else 404."""
    method = environ.get("REQUEST_METHOD", "GET")
    path = environ.get("PATH_INFO", "/")
    target = None
    if console is None:
        if path in ("", "/") and method in ("GET", "HEAD"):
            target = "/ui/"
    elif method in ("GET", "HEAD"):
        host, port = console
        if host in ("0.0.0.0", "::", ""):  # bound to every address: stay on the host the client used
            asked = urlsplit("//" + (environ.get("HTTP_HOST") or "")).hostname or ""
            host = asked if _HOSTNAME.fullmatch(asked) else "127.0.0.1"
        # PATH_INFO is decoded: encode it again, so no byte of it can break the header
        safe_path = quote(path.encode("latin-1", "replace"), safe="/~-._")
        qs = quote(environ.get("QUERY_STRING", "").encode("latin-1", "replace"), safe="=&%+~-._")
        target = f"http://{host}:{port}{safe_path}" + (f"?{qs}" if qs else "")
    if target is None:
        body = b"Not found. The console is served on its own port; `pocketcloud env` prints its address.\n"
        start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8"),
                                         ("Content-Length", str(len(body))), ("X-Content-Type-Options", "nosniff")])
        return [body]
    start_response("302 Found", [("Location", target), ("Content-Length", "0"), ("Cache-Control", "no-store")])
    return [b""]
