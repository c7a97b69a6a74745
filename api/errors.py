"""The ONE mapping from emulator exceptions to each protocol's error.

REST: {"error": {"code", "message"}} JSON. EC2: <Response><Errors><Error>… XML.
S3: <Error><Code>… XML. AWS JSON 1.1 (Cost Explorer, Budgets): {"__type", "message"}, where
client errors are 400 (as those services answer). The other AWS Query services (STS, Auto
Scaling): <ErrorResponse><Error>… XML. The console: its error page. Status codes come from
this table, nothing else.

REST and the console share one Flask app; `register_flask_handlers` gives it one handler
at app level that answers in the caller's protocol (by path), so no blueprint carries a
copy of its own. EC2, S3, the Query and the JSON 1.1 services are WSGI apps of their own and
render their errors at their single entry point with `ec2_error` / `s3_error` /
`query_error` / `json11_error`.
"""
from __future__ import annotations

import json
import logging
import uuid
from typing import TYPE_CHECKING, Callable
from xml.sax.saxutils import escape as _escape

from emulator import errors as e
from emulator.xmldoc import xml_safe

if TYPE_CHECKING:
    from flask import Flask
    from flask.typing import ResponseReturnValue

log = logging.getLogger("pocketcloud.api")


class DryRunOperation(e.CloudError):
    """EC2's answer to a request with DryRun=true that would have succeeded (a wire concept only)."""

    code = "DryRunOperation"


def escape(text: str) -> str:
    """Text for an XML error document: escaped, and nothing XML cannot carry (a message may
    echo what the client sent, control characters included)."""
    return _escape(xml_safe(text))


# exception class -> HTTP status for (REST, EC2, S3, JSON 1.1, the other Query services)
STATUS: dict[type, tuple[int, int, int, int, int]] = {
    e.InvalidParameter: (400, 400, 400, 400, 400),
    e.NotFound: (404, 400, 404, 400, 400),
    e.AlreadyExists: (409, 400, 409, 400, 400),
    e.InvalidState: (409, 400, 409, 400, 400),
    e.QuotaExceeded: (403, 400, 403, 400, 400),
    e.Unauthorized: (401, 401, 403, 400, 403),
    e.Forbidden: (403, 403, 403, 400, 403),
    e.TooLarge: (413, 413, 413, 413, 413),
    # AWS answers throttling with 503 (EC2 RequestLimitExceeded, S3 SlowDown) or 400 (JSON
    # and Query ThrottlingException); REST says what it is.
    e.Throttled: (429, 503, 503, 400, 400),
    e.BackendUnavailable: (503, 503, 503, 503, 503),
    e.EngineError: (502, 500, 500, 500, 500),
    DryRunOperation: (412, 412, 412, 412, 412),
}
# JSON 1.1 codes that AWS answers with another status than the class's.
JSON_STATUS = {"MissingAuthenticationTokenException": 403}


def status_for(exc: Exception, protocol: str) -> int:
    if protocol == "json" and isinstance(exc, e.CloudError) and exc.code in JSON_STATUS:
        return JSON_STATUS[exc.code]
    idx = {"rest": 0, "ec2": 1, "s3": 2, "json": 3, "query": 4}[protocol]
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls][idx]
    return 500


def _message(exc: Exception) -> str:
    if isinstance(exc, e.CloudError):
        return str(exc)
    return "internal error; see the server log"


def _code(exc: Exception) -> str:
    return exc.code if isinstance(exc, e.CloudError) else "InternalError"


def rest_error(exc: Exception) -> tuple[str, int]:
    body = {"error": {"code": _code(exc), "message": _message(exc)}}
    return json.dumps(body), status_for(exc, "rest")


def ec2_error(exc: Exception, request_id: str | None = None) -> tuple[str, int]:
    rid = request_id or str(uuid.uuid4())
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Response><Errors><Error><Code>{escape(_code(exc))}</Code><Message>{escape(_message(exc))}</Message>"
        f"</Error></Errors><RequestID>{rid}</RequestID></Response>"
    )
    return body, status_for(exc, "ec2")


def s3_error(exc: Exception, resource: str = "", request_id: str | None = None) -> tuple[str, int]:
    rid = request_id or uuid.uuid4().hex[:16].upper()
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{escape(_code(exc))}</Code><Message>{escape(_message(exc))}</Message>"
        f"<Resource>{escape(resource)}</Resource><RequestId>{rid}</RequestId></Error>"
    )
    return body, status_for(exc, "s3")


def query_error(exc: Exception, namespace: str, request_id: str | None = None) -> tuple[str, int]:
    """The error document of the AWS Query services other than EC2 (STS, Auto Scaling)."""
    rid = request_id or str(uuid.uuid4())
    status = status_for(exc, "query")
    kind = "Receiver" if status >= 500 else "Sender"
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<ErrorResponse xmlns="{escape(namespace)}"><Error><Type>{kind}</Type><Code>{escape(_code(exc))}</Code>'
        f"<Message>{escape(_message(exc))}</Message></Error><RequestId>{rid}</RequestId></ErrorResponse>"
    )
    return body, status


# -- the Flask app: REST under /api, the console under /ui ----------------------------------
HTTP_CODES = {404: "NotFound", 405: "MethodNotAllowed", 413: "RequestTooLarge", 415: "UnsupportedMediaType"}
ConsolePage = Callable[[int, str, str], "ResponseReturnValue"]


def _is_console(path: str) -> bool:
    return path == "/ui" or path.startswith("/ui/")


def rest_response(exc: Exception):
    """The REST JSON error for any exception, routing errors (unknown path, wrong method)
    included, in the same shape."""
    from flask import Response, request
    from werkzeug.exceptions import HTTPException

    if isinstance(exc, HTTPException):
        message = {404: f"no such endpoint: {request.method} {request.path}; see the README for the API",
                   405: f"{request.method} is not allowed on {request.path}"}.get(exc.code, exc.description)
        body = json.dumps({"error": {"code": HTTP_CODES.get(exc.code, "BadRequest"), "message": message}})
        status = exc.code or 500
    else:
        body, status = rest_error(exc)
    resp = Response(body, status=status, mimetype="application/json")
    if status == 401:
        resp.headers["WWW-Authenticate"] = 'Basic realm="pocketcloud"'
    return resp


def console_error(exc: Exception) -> tuple[int, str, str]:
    """(status, message, code) for the console's error page."""
    from werkzeug.exceptions import HTTPException

    if isinstance(exc, e.CloudError):
        return status_for(exc, "rest"), str(exc), exc.code
    if isinstance(exc, HTTPException):
        return exc.code or 500, exc.description or exc.name, ""
    return 500, "Internal error; see the server log.", ""


def register_flask_handlers(app: "Flask", console_page: ConsolePage) -> None:
    """One app-level handler for every exception a REST or console view raises."""
    from flask import request
    from werkzeug.exceptions import HTTPException

    def handle(exc: Exception):
        if not isinstance(exc, (e.CloudError, HTTPException)):
            log.exception("unhandled error on %s %s", request.method, request.path)
        if _is_console(request.path):
            return console_page(*console_error(exc))
        return rest_response(exc)

    app.register_error_handler(Exception, handle)


def json11_error(exc: Exception) -> tuple[str, int]:
    """AWS JSON 1.1: botocore reads the code from __type (after any '#') and the message."""
    code = _code(exc) if isinstance(exc, e.CloudError) else "InternalFailure"
    return json.dumps({"__type": code, "message": _message(exc)}), status_for(exc, "json")
