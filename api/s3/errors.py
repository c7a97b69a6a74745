"""S3 XML errors.

The status comes from api.errors' table for the exception class (the one mapping), with
S3-specific codes that need a status of their own (501 NotImplemented, 405, 411, 416 ...)
refined here. `S3Error` carries an explicit status for the protocol-only failures.
"""
from __future__ import annotations

import secrets
from xml.sax.saxutils import escape

from emulator import errors as e

# exception class -> S3 status (same as api/errors.py STATUS[..][2])
CLASS_STATUS: dict[type, int] = {
    e.InvalidParameter: 400,
    e.NotFound: 404,
    e.AlreadyExists: 409,
    e.InvalidState: 409,
    e.QuotaExceeded: 403,
    e.Unauthorized: 403,
    e.Forbidden: 403,
    e.BackendUnavailable: 503,
    e.EngineError: 500,
}
# codes whose S3 status differs from their class's
CODE_STATUS = {
    "NotImplemented": 501,
    "MethodNotAllowed": 405,
    "MissingContentLength": 411,
    "InvalidRange": 416,
    "PreconditionFailed": 412,
    "EntityTooLarge": 400,
    "AccessDenied": 403,
    "InternalError": 500,
}


class S3Error(e.CloudError):
    """A protocol-level S3 failure with its own status."""

    def __init__(self, message: str, *, code: str, status: int):
        super().__init__(message, code=code)
        self.status = status


def status_for(exc: Exception) -> int:
    if isinstance(exc, S3Error):
        return exc.status
    code = getattr(exc, "code", None)
    if code in CODE_STATUS:
        return CODE_STATUS[code]
    for cls in type(exc).__mro__:
        if cls in CLASS_STATUS:
            return CLASS_STATUS[cls]
    return 500


def error_body(exc: Exception, resource: str = "", request_id: str | None = None) -> bytes:
    rid = request_id or secrets.token_hex(8).upper()
    code = exc.code if isinstance(exc, e.CloudError) else "InternalError"
    message = str(exc) if isinstance(exc, e.CloudError) else "We encountered an internal error. Please try again."
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{escape(code)}</Code><Message>{escape(message)}</Message>"
        f"<Resource>{escape(resource)}</Resource><RequestId>{rid}</RequestId></Error>"
    ).encode()
