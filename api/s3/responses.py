"""How the S3 gateway answers: its own XML documents, empty answers, and the engine's answer
relayed (streamed)."""
from __future__ import annotations

from werkzeug.wrappers import Response

from emulator.storage import S3_NS, Reply
from emulator.xmldoc import render


class S3Response(Response):
    default_mimetype = None     # an S3 answer has a Content-Type only when it has a body that says what it is


def xml(root: str, body, status: int = 200, headers: list[tuple[str, str]] | None = None) -> S3Response:
    return S3Response(render(root, body, namespace=S3_NS, list_item=None), status=status, headers=headers,
                      content_type="application/xml")


def empty(status: int = 200, headers: list[tuple[str, str]] | None = None) -> S3Response:
    return S3Response(b"", status=status, headers=headers)


def relay(reply: Reply) -> S3Response:
    """The engine's answer as the client's, streamed; the engine connection is released
    (or dropped) when the client's response is closed."""
    resp = S3Response(reply.iter(), status=reply.status, headers=reply.headers)
    resp.call_on_close(reply.close)
    return resp
