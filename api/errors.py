"""The ONE mapping from emulator exceptions to each protocol's error.

REST: {"error": {"code", "message"}} JSON. EC2: <Response><Errors><Error>… XML.
S3: <Error><Code>… XML. The other AWS Query services (STS, Auto Scaling): <ErrorResponse><Error>… XML.
Status codes come from this table, nothing else.
"""
from __future__ import annotations

import json
import uuid
from xml.sax.saxutils import escape

from emulator import errors as e

class DryRunOperation(e.CloudError):
    """EC2's answer to a request with DryRun=true that would have succeeded (a wire concept only)."""

    code = "DryRunOperation"


# exception class -> (HTTP status for REST, for EC2, for S3, for the other Query services)
STATUS: dict[type, tuple[int, int, int, int]] = {
    e.InvalidParameter: (400, 400, 400, 400),
    e.NotFound: (404, 400, 404, 400),
    e.AlreadyExists: (409, 400, 409, 400),
    e.InvalidState: (409, 400, 409, 400),
    e.QuotaExceeded: (403, 400, 403, 400),
    e.Unauthorized: (401, 401, 403, 403),
    e.Forbidden: (403, 403, 403, 403),
    e.BackendUnavailable: (503, 503, 503, 503),
    e.EngineError: (502, 500, 500, 500),
    DryRunOperation: (412, 412, 412, 412),
}


def status_for(exc: Exception, protocol: str) -> int:
    idx = {"rest": 0, "ec2": 1, "s3": 2, "query": 3}[protocol]
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
