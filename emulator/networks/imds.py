"""The instance metadata service (169.254.169.254) as a plain WSGI app, IMDSv2 included.

How a request gets here: an instance connects to 169.254.169.254:80; the cloud's `nat-pre`
chain DNATs it to 127.0.0.1:<imds_port> *without* touching the source, so `REMOTE_ADDR`
is the instance's own address. That address is trustworthy because the bridge table pins
every port to its address (a forged source is dropped before it reaches the IP layer),
which is why the app needs no other credential to tell instances apart - exactly AWS's
model. The app asks a `lookup(ip) -> dict | None` callback for the caller's metadata, so
it holds no state and knows nothing about the database (phase 2 wires the callback).

IMDSv2: `PUT /latest/api/token` with `X-aws-ec2-metadata-token-ttl-seconds` (1-21600)
returns a token bound to the caller's address (HMAC, stateless); GETs then carry
`X-aws-ec2-metadata-token`. A metadata dict with `http_tokens: required` refuses GETs
without a valid token (401), as `MetadataOptions.HttpTokens=required` does on EC2;
`http_endpoint: disabled` refuses everything. A PUT carrying `X-Forwarded-For` is refused,
as AWS does, so a reverse proxy on the instance cannot be turned into a token fetcher.
The hop limit (`HttpPutResponseHopLimit`) is not emulated: the DNAT happens one hop away.

Metadata keys the lookup may return (all optional except instance_id and local_ipv4):
instance_id, ami_id, instance_type, local_ipv4, public_ipv4, hostname, availability_zone,
region, security_groups (names), security_group_ids, public_keys ({name: openssh key}),
user_data (str/bytes), mac, vpc_id, subnet_id, subnet_cidr, vpc_cidr, account_id,
launch_time (ISO 8601), architecture, http_tokens (optional|required), http_endpoint.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import socketserver
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

Lookup = Callable[[str], "dict[str, Any] | None"]
MAX_TTL = 21600
VERSIONS = ("1.0", "2007-01-19", "2007-03-01", "2008-02-01", "2009-04-04", "2011-01-01", "2012-01-12",
            "2014-02-25", "2016-09-02", "2018-09-24", "2021-03-23", "latest")
VERSION = re.compile(r"^(latest|1\.0|\d{4}-\d{2}-\d{2})$")


def tree(md: dict[str, Any]) -> dict[str, Any]:
    """The meta-data/ hierarchy for one instance (leaves are strings)."""
    ip, mac = md["local_ipv4"], md.get("mac", "")
    host = md.get("hostname") or "ip-" + ip.replace(".", "-")
    region = md.get("region", "us-east-1")
    domain = "ec2.internal" if region == "us-east-1" else f"{region}.compute.internal"
    fqdn = host if "." in host else f"{host}.{domain}"
    groups, group_ids = list(md.get("security_groups") or []), list(md.get("security_group_ids") or [])
    meta: dict[str, Any] = {
        "ami-id": md.get("ami_id", ""), "ami-launch-index": "0", "ami-manifest-path": "(unknown)",
        "block-device-mapping": {"ami": "/dev/xvda", "root": "/dev/xvda"},
        "hostname": fqdn, "instance-action": "none", "instance-id": md["instance_id"],
        "instance-life-cycle": "on-demand", "instance-type": md.get("instance_type", ""),
        "local-hostname": fqdn, "local-ipv4": ip, "mac": mac,
        "placement": {"availability-zone": md.get("availability_zone", f"{region}a"), "region": region},
        "reservation-id": md.get("reservation_id", "r-" + md["instance_id"][2:]),
        "security-groups": "\n".join(groups), "services": {"domain": "amazonaws.com", "partition": "aws"},
    }
    if md.get("public_ipv4"):
        meta["public-ipv4"] = md["public_ipv4"]
    if md.get("public_keys"):
        meta["public-keys"] = {f"{i}={name}": {"openssh-key": key.strip() + "\n"}
                               for i, (name, key) in enumerate(md["public_keys"].items())}
    if mac:
        iface = {"device-number": "0", "interface-id": md.get("interface_id", "eni-" + md["instance_id"][2:]),
                 "local-hostname": fqdn, "local-ipv4s": ip, "mac": mac,
                 "owner-id": md.get("account_id", ""), "security-group-ids": "\n".join(group_ids),
                 "security-groups": "\n".join(groups), "subnet-id": md.get("subnet_id", ""),
                 "subnet-ipv4-cidr-block": md.get("subnet_cidr", ""), "vpc-id": md.get("vpc_id", ""),
                 "vpc-ipv4-cidr-block": md.get("vpc_cidr", ""), "vpc-ipv4-cidr-blocks": md.get("vpc_cidr", "")}
        if md.get("public_ipv4"):
            iface["public-ipv4s"] = md["public_ipv4"]
        meta["network"] = {"interfaces": {"macs": {mac: iface}}}
    return meta


def identity_document(md: dict[str, Any]) -> str:
    region = md.get("region", "us-east-1")
    doc = {"accountId": md.get("account_id", ""), "architecture": md.get("architecture", "x86_64"),
           "availabilityZone": md.get("availability_zone", f"{region}a"), "billingProducts": None,
           "devpayProductCodes": None, "marketplaceProductCodes": None, "imageId": md.get("ami_id", ""),
           "instanceId": md["instance_id"], "instanceType": md.get("instance_type", ""), "kernelId": None,
           "pendingTime": md.get("launch_time", ""), "privateIp": md["local_ipv4"], "ramdiskId": None,
           "region": region, "version": "2017-09-30"}
    return json.dumps(doc, indent=2)


class MetadataApp:
    """WSGI callable: `MetadataApp(lookup)(environ, start_response)`."""

    def __init__(self, lookup: Lookup, secret: bytes | None = None, clock: Callable[[], float] = time.time):
        self.lookup, self.clock = lookup, clock
        self.secret = secret or secrets.token_bytes(32)

    # ---- tokens ------------------------------------------------------------------
    def issue(self, ip: str, ttl: int) -> str:
        body = base64.urlsafe_b64encode(json.dumps([ip, int(self.clock()) + ttl]).encode()).decode().rstrip("=")
        sig = hmac.new(self.secret, body.encode(), hashlib.sha256).hexdigest()[:32]
        return f"{body}.{sig}"

    def remaining(self, token: str, ip: str) -> int | None:
        """Seconds the token has left for this caller, or None when it is not valid for it."""
        body, _, sig = token.partition(".")
        good = hmac.new(self.secret, body.encode(), hashlib.sha256).hexdigest()[:32]
        if not sig or not hmac.compare_digest(sig, good):
            return None
        try:
            owner, exp = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        except (ValueError, TypeError):
            return None
        left = int(exp) - int(self.clock())
        return left if owner == ip and left > 0 else None

    # ---- WSGI --------------------------------------------------------------------
    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        status, body, headers = self.handle(environ)
        data = body.encode() if isinstance(body, str) else body
        start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(data))),
                                ("Server", "EC2ws"), *headers])
        return [data]

    def handle(self, environ: dict) -> tuple[str, str | bytes, list[tuple[str, str]]]:
        ip = environ.get("REMOTE_ADDR", "")
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "/") or "/"
        md = self.lookup(ip)
        if md is None:
            return "404 Not Found", "no instance has this address\n", []
        if md.get("http_endpoint", "enabled") == "disabled":
            return "403 Forbidden", "the instance metadata endpoint is disabled for this instance\n", []
        if path.rstrip("/") == "/latest/api/token":
            return self._token(environ, ip, method)
        if method not in ("GET", "HEAD"):
            return "405 Method Not Allowed", "", [("Allow", "GET, HEAD, PUT")]
        token = environ.get("HTTP_X_AWS_EC2_METADATA_TOKEN")
        left = None
        if token is not None:
            left = self.remaining(token, ip)
            if left is None:
                return "401 Unauthorized", "", []
        elif md.get("http_tokens", "optional") == "required":
            return "401 Unauthorized", "", []
        status, body = self._get(md, path)
        return status, body, ([("X-Aws-Ec2-Metadata-Token-Ttl-Seconds", str(left))] if left else [])

    def _token(self, environ: dict, ip: str, method: str):
        if method != "PUT":
            return "405 Method Not Allowed", "", [("Allow", "PUT")]
        if "HTTP_X_FORWARDED_FOR" in environ:
            return "403 Forbidden", "", []
        ttl = environ.get("HTTP_X_AWS_EC2_METADATA_TOKEN_TTL_SECONDS", "")
        if not ttl.isdigit() or not 1 <= int(ttl) <= MAX_TTL:
            return "400 Bad Request", "", []
        return "200 OK", self.issue(ip, int(ttl)), [("X-Aws-Ec2-Metadata-Token-Ttl-Seconds", ttl)]

    def _get(self, md: dict[str, Any], path: str) -> tuple[str, str]:
        parts = [p for p in path.split("/") if p]
        if not parts:
            return "200 OK", "\n".join(VERSIONS)
        if not VERSION.fullmatch(parts[0]):
            return "404 Not Found", ""
        user_data = md.get("user_data")
        if len(parts) == 1:
            return "200 OK", "\n".join(["dynamic", "meta-data"] + (["user-data"] if user_data else []))
        top, rest = parts[1], parts[2:]
        if top == "user-data" and not rest:
            if not user_data:
                return "404 Not Found", ""
            return "200 OK", user_data if isinstance(user_data, str) else user_data.decode("latin-1")
        if top == "dynamic":
            node: Any = {"instance-identity": {"document": identity_document(md)}}
        elif top == "meta-data":
            node = tree(md)
        else:
            return "404 Not Found", ""
        return _walk(node, rest)


def _walk(node: Any, rest: list[str]) -> tuple[str, str]:
    for part in rest:
        if not isinstance(node, dict):
            return "404 Not Found", ""
        if part in node:
            node = node[part]
            continue
        # public-keys/0/ addresses the entry listed as "0=name"
        alias = next((k for k in node if k.split("=", 1)[0] == part and "=" in k), None)
        if alias is None:
            return "404 Not Found", ""
        node = node[alias]
    if isinstance(node, dict):
        # directories end in '/', except public-keys' "0=name" entries, as on EC2
        names = [k + ("/" if isinstance(v, dict) and "=" not in k else "") for k, v in node.items()]
        return "200 OK", "\n".join(names)
    return "200 OK", node


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class MetadataServer:
    """Serves a MetadataApp on 127.0.0.1:port in a background thread (port 0: pick a free one)."""

    def __init__(self, app: MetadataApp, host: str = "127.0.0.1", port: int = 0):
        self.httpd = make_server(host, port, app, server_class=_ThreadingServer, handler_class=_Quiet)
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="imds", daemon=True)

    def start(self) -> "MetadataServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
