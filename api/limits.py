"""Request body limits, per route, enforced before a body is read.

A body over its route's limit is refused from its Content-Length alone; a chunked body
(no Content-Length) is read through a capped stream that stops at the limit. Nothing
buffers more than the limit, and gunicorn closes a connection whose body was left unread
instead of draining it, so a 256 MiB upload to the wrong place costs the server nothing.

REST and console routes (Flask) take their limit from `@body_limit(...)` on the view, else
a default by area; EC2 reads its Query body with `read_capped`; S3 object bodies are
streamed to the engine by the gateway and never held whole.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Union

from emulator.errors import InvalidParameter, TooLarge

if TYPE_CHECKING:
    from flask import Flask

    from emulator.config import Config

KiB = 1024
LOGIN_FORM = 16 * KiB       # a key id and a secret
CONSOLE_FORM = 64 * KiB     # the launch form carries user data (16 KiB, url-encoded up to x3)
EC2_QUERY = 256 * KiB       # RunInstances with 16 KiB of user data is ~22 KiB of base64
JSON11_BODY = 256 * KiB     # Cost Explorer and Budgets requests
OBJECT_PUT = 5 * KiB ** 3   # one S3 PUT, streamed to the engine (never held whole)

Limit = Union[int, Callable[["Config"], int]]


def body_limit(limit: Limit):
    """Mark a Flask view with its body limit (bytes, or a function of the Config)."""
    def mark(fn):
        fn.body_limit = limit
        return fn

    return mark


def too_large(limit: int) -> TooLarge:
    return TooLarge(f"the request body is larger than this route accepts ({limit} bytes)")


def install(app: "Flask", config: "Config") -> None:
    """Check each Flask request's body against its route's limit before any view reads it."""
    from flask import request

    @app.before_request
    def _limit_body():
        view = app.view_functions.get(request.endpoint or "")
        limit = getattr(view, "body_limit", None)
        if callable(limit):
            limit = limit(config)
        if limit is None:
            limit = CONSOLE_FORM if request.path.startswith("/ui") else config.max_rest_body
        if request.content_length is not None and request.content_length > limit:
            raise too_large(limit)
        # Not werkzeug's max_content_length: its capped stream ends quietly at the limit, and
        # a truncated form or JSON body would then be parsed as if it were whole.
        request.environ["wsgi.input"] = CappedInput(request.environ["wsgi.input"], limit)


class CappedInput:
    """A WSGI input stream that raises TooLarge as soon as more than `limit` bytes arrive."""

    def __init__(self, stream, limit: int):
        self.stream, self.limit, self.seen = stream, limit, 0

    def _take(self, data: bytes) -> bytes:
        self.seen += len(data)
        if self.seen > self.limit:
            raise too_large(self.limit)
        return data

    def _room(self, size: int | None) -> int:
        room = self.limit + 1 - self.seen  # one byte past the limit tells "too large" from "exactly"
        return room if size is None or size < 0 else min(size, room)

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:  # everything: until the end, or past the limit
            return b"".join(iter(lambda: self.read(64 * KiB), b""))
        room = self._room(size)
        return self._take(self.stream.read(room)) if room > 0 else b""

    def readline(self, size: int | None = -1) -> bytes:
        room = self._room(size)
        return self._take(self.stream.readline(room)) if room > 0 else b""

    def __iter__(self):
        while True:
            line = self.readline(64 * KiB)
            if not line:
                return
            yield line


def read_capped(environ: dict, limit: int) -> bytes:
    """The whole (small) body of a plain WSGI request, refused past `limit` bytes."""
    raw = environ.get("CONTENT_LENGTH") or ""
    stream = environ["wsgi.input"]
    if raw:
        try:
            length = int(raw)
        except ValueError:
            raise InvalidParameter("invalid Content-Length") from None
        if length > limit:
            raise too_large(limit)
        return stream.read(length) if length > 0 else b""
    if not environ.get("wsgi.input_terminated"):
        return b""  # no length and a server that does not frame the stream: no body
    return CappedInput(stream, limit).read()
