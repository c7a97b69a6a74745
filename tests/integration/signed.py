"""Sending hand-made signed requests to the running server, for the attack tests: signed by
botocore itself (the same code real clients run), sent byte for byte with http.client
(requests would normalise '..' out of a path before the server could see it)."""
from __future__ import annotations

import http.client
from urllib.parse import urlsplit

from botocore.auth import S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


def sign(method: str, url: str, who, body: bytes = b"", headers: dict | None = None, service: str = "s3",
         region: str = "us-east-1") -> dict[str, str]:
    """The headers botocore sends for this request, Authorization included. A header given
    as X-Amz-Content-SHA256 is signed as the payload hash, as botocore does with it."""
    req = AWSRequest(method=method, url=url, data=body, headers={"Host": urlsplit(url).netloc, **(headers or {})})
    auth = S3SigV4Auth if service == "s3" else SigV4Auth
    auth(Credentials(who.key_id, who.secret), service, region).add_auth(req)
    return {k: (v.decode() if isinstance(v, bytes) else v) for k, v in req.headers.items()}


def send(method: str, url: str, headers: dict[str, str], body: bytes = b"") -> tuple[int, bytes]:
    """One request exactly as given (path untouched, Content-Length set to the body's)."""
    u = urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    try:
        conn.putrequest(method, u.path + ("?" + u.query if u.query else ""), skip_host=True,
                        skip_accept_encoding=True)
        for k, v in headers.items():
            if k.lower() != "content-length":
                conn.putheader(k, v)
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body or None)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()
