"""How the S3 gateway answers: its own XML documents, empty answers, and the engine's answer
relayed (streamed)."""
from __future__ import annotations

from werkzeug.wrappers import Response

from emulator.storage import S3_NS, Reply
from emulator.xmldoc import render

from .errors import EngineAnswer


class S3Response(Response):
    default_mimetype = None     # an S3 answer has a Content-Type only when it has a body that says what it is


def xml(root: str, body, status: int = 200, headers: list[tuple[str, str]] | None = None) -> S3Response:
    return S3Response(render(root, body, namespace=S3_NS, list_item=None), status=status, headers=headers,
                      content_type="application/xml")


def empty(status: int = 200, headers: list[tuple[str, str]] | None = None) -> S3Response:
    return S3Response(b"", status=status, headers=headers)


# when an engine's error document cannot be read, the code its status stands for
CODE_OF_STATUS = {400: "InvalidRequest", 403: "AccessDenied", 404: "NoSuchKey", 409: "OperationAborted",
                  412: "PreconditionFailed", 416: "InvalidRange"}


def relay(reply: Reply) -> S3Response:
    """The engine's answer as the client's, streamed; the engine connection is released
    (or dropped) when the client's response is closed. An error is rendered again by
    pocketcloud (the engine's document can echo a key that XML cannot carry, as &#x7;)."""
    if reply.status >= 400:
        code, message = reply.error()
        reply.close()
        if code.isdigit():
            code = CODE_OF_STATUS.get(reply.status, "InternalError")
        raise EngineAnswer(message or code, code=code, status=reply.status)
    resp = S3Response(reply.iter(), status=reply.status, headers=reply.headers)
    resp.call_on_close(reply.close)
    return resp
