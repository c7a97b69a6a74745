"""S3 XML errors for the gateway, through api/errors.py (the one mapping).

api.errors gives the status for each exception class and renders the XML; the S3 codes
whose status differs from their class's (501 NotImplemented, 405, 411, 416, ...) are
refined here, and `S3Error` carries an explicit status for protocol-only failures.
"""
from __future__ import annotations

from emulator import errors as e

from .. import errors as api_errors

# codes whose S3 status differs from their exception class's
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
    return api_errors.status_for(exc, "s3")


def error_body(exc: Exception, resource: str = "", request_id: str | None = None) -> bytes:
    if not isinstance(exc, e.CloudError):
        exc = e.CloudError("We encountered an internal error. Please try again.", code="InternalError")
    body, _ = api_errors.s3_error(exc, resource, request_id)
    return body.encode()
