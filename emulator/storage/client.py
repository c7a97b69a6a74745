"""A small streaming S3 client towards the backend engine, signed with its root credentials.

http.client rather than a full SDK: the gateway needs byte-level control — a fixed
Content-Length with a generator body (never the whole object in memory), responses read
piece by piece, and a connection that is dropped, not completed, when the client's body
fails verification half-way (the engine then discards the partial upload).
"""
from __future__ import annotations

import http.client
import socket
import threading
import time
from typing import Iterable
from urllib.parse import urlsplit

from ..errors import BackendUnavailable
from ..sigv4 import UNSIGNED_PAYLOAD, canonical_query, sign_headers, uri_encode

PIECE = 1024 * 1024
_IDLE_REUSE = 20.0  # seconds a pooled connection is trusted for a streamed (non-retryable) body


def object_path(bucket: str | None, key: str | None = None) -> str:
    if not bucket:
        return "/"
    path = "/" + uri_encode(bucket)
    if key is not None:
        path += "/" + uri_encode(key, keep_slash=True)
    return path


class BackendResponse:
    def __init__(self, client: "BackendClient", conn: http.client.HTTPConnection, resp: http.client.HTTPResponse,
                 method: str):
        self._client = client
        self._conn = conn
        self.raw = resp
        self.status = resp.status
        self.reason = resp.reason
        self.headers: list[tuple[str, str]] = resp.getheaders()
        self._method = method
        self._done = False

    def header(self, name: str, default: str | None = None) -> str | None:
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return default

    def read(self, limit: int = 64 * 1024 * 1024) -> bytes:
        try:
            data = self.raw.read(limit + 1)
        except (OSError, http.client.HTTPException) as exc:   # the engine died while answering
            self.close()
            raise BackendUnavailable(f"the storage engine at {self._client.endpoint} broke off its answer: "
                                     f"{exc!r}") from None
        if len(data) > limit:
            self.close()
            raise BackendUnavailable("the storage engine sent an unexpectedly large response")
        self._finish()
        return data

    def iter(self, piece: int = PIECE) -> Iterable[bytes]:
        try:
            while True:
                data = self.raw.read1(piece) if hasattr(self.raw, "read1") else self.raw.read(piece)
                if not data:
                    break
                yield data
            self._finish()
        finally:
            self.close()

    def _finish(self) -> None:
        """The body was read to its end: the connection may serve the next request."""
        if not self._done:
            self._done = True
            will_close = self.raw.will_close
            self.raw.close()
            if will_close:
                self._conn.close()
            else:
                self._client._release(self._conn)

    def close(self) -> None:
        """Drop the response; an unread remainder means the connection cannot be reused."""
        if not self._done:
            self._done = True
            self.raw.close()
            self._conn.close()


class BackendClient:
    def __init__(self, endpoint: str, access_key: str, secret_key: str, region: str = "us-east-1",
                 timeout: float = 600.0):
        u = urlsplit(endpoint)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise BackendUnavailable(f"invalid S3 endpoint {endpoint!r}: expected http(s)://host:port")
        self.endpoint = endpoint.rstrip("/")
        self.scheme = u.scheme
        self.host = u.hostname
        self.port = u.port or (443 if u.scheme == "https" else 80)
        self.host_header = u.netloc
        self.access_key = access_key
        self.secret_key = secret_key
        self.region = region
        self.timeout = timeout
        self._pool: list[tuple[http.client.HTTPConnection, float]] = []
        self._lock = threading.Lock()

    # -- connections ---------------------------------------------------------------------
    def _new_conn(self) -> http.client.HTTPConnection:
        cls = http.client.HTTPSConnection if self.scheme == "https" else http.client.HTTPConnection
        conn = cls(self.host, self.port, timeout=self.timeout)
        try:
            conn.connect()
        except OSError as exc:
            conn.close()
            raise BackendUnavailable(f"the storage engine at {self.endpoint} is unreachable: {exc}") from None
        # headers and body go out in separate writes: without this, Nagle holds the second back
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn

    def _acquire(self, fresh_within: float | None) -> tuple[http.client.HTTPConnection, bool]:
        now = time.monotonic()
        with self._lock:
            while self._pool:
                conn, since = self._pool.pop()
                if fresh_within is None or now - since < fresh_within:
                    return conn, True
                conn.close()
        return self._new_conn(), False

    def _release(self, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            if len(self._pool) < 32:
                self._pool.append((conn, time.monotonic()))
                return
        conn.close()

    def close(self) -> None:
        with self._lock:
            for conn, _ in self._pool:
                conn.close()
            self._pool.clear()

    # -- requests ------------------------------------------------------------------------
    def request(self, method: str, bucket: str | None = None, key: str | None = None,
                query: Iterable[tuple[str, str]] = (), headers: dict[str, str] | None = None,
                body: bytes | Iterable[bytes] | None = None, length: int | None = None) -> BackendResponse:
        """Send one signed request; a non-bytes `body` is streamed with Content-Length `length`."""
        query = list(query)
        path = object_path(bucket, key)
        hdrs = {k.lower(): v for k, v in (headers or {}).items()}
        hdrs["host"] = self.host_header
        if isinstance(body, (bytes, bytearray)):
            length = len(body)
        if body is not None or method in ("PUT", "POST"):
            hdrs["content-length"] = str(length or 0)
        signed = sign_headers(method, path, query, hdrs, access_key=self.access_key, secret_key=self.secret_key,
                              region=self.region, payload_hash=UNSIGNED_PAYLOAD)
        qs = canonical_query(query)
        target = path + ("?" + qs if qs else "")
        retryable = body is None or isinstance(body, (bytes, bytearray))
        for attempt in (0, 1):
            conn, pooled = self._acquire(None if retryable else _IDLE_REUSE)
            try:
                conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
                for k, v in signed.items():
                    conn.putheader(k, v)
                if isinstance(body, (bytes, bytearray)):
                    conn.endheaders(bytes(body) if body else None)  # one write for small requests
                else:
                    conn.endheaders()
                if body is not None and not isinstance(body, (bytes, bytearray)):
                    sent = 0
                    for piece in body:
                        conn.send(piece)
                        sent += len(piece)
                    if length is not None and sent != length:
                        raise BackendUnavailable(f"body ended after {sent} of {length} bytes")
                resp = conn.getresponse()
                return BackendResponse(self, conn, resp, method)
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as exc:
                conn.close()
                if pooled:
                    # one kept-alive connection dropped: the engine most likely restarted (a supervised
                    # RGW or stand-in), so every other pooled one is dead too; the retry opens a new one
                    self.close()
                if pooled and retryable and attempt == 0:
                    continue
                raise BackendUnavailable(f"the storage engine at {self.endpoint} dropped the connection: {exc}") \
                    from None
            except OSError as exc:
                conn.close()
                raise BackendUnavailable(f"the storage engine at {self.endpoint} is unreachable: {exc}") from None
            except BaseException:
                conn.close()  # a half-sent body must never be completed
                raise
        raise AssertionError("unreachable")

    def simple(self, method: str, bucket: str | None = None, key: str | None = None,
               query: Iterable[tuple[str, str]] = (), headers: dict[str, str] | None = None,
               body: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
        resp = self.request(method, bucket, key, query, headers, body)
        data = b"" if method == "HEAD" else resp.read()
        if method == "HEAD":
            resp._finish()
        return resp.status, {k.lower(): v for k, v in resp.headers}, data
