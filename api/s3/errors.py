"""The S3 gateway's one error handler, through api/errors.py (the one mapping).

api.errors gives the status for each exception class and renders the XML; the S3 codes
whose status differs from their class's (501 NotImplemented, 405, 411, 416, ...) are
refined here.
"""
from __future__ import annotations

import logging

from werkzeug.wrappers import Response

from emulator.errors import CloudError

from .. import errors as api_errors

log = logging.getLogger("pocketcloud.s3")

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


def status_for(exc: Exception) -> int:
    code = getattr(exc, "code", None)
    if code in CODE_STATUS:
        return CODE_STATUS[code]
    return api_errors.status_for(exc, "s3")


def error_response(exc: Exception, resource: str, request_id: str) -> Response:
    """Any failure as an S3 error document; one that is not a CloudError is logged and
    answered InternalError without its details."""
    if not isinstance(exc, CloudError):
        log.error("S3 %s failed", resource or "/", exc_info=exc)
        exc = CloudError("We encountered an internal error. Please try again.", code="InternalError")
    body, _ = api_errors.s3_error(exc, resource, request_id)
    return Response(body, status=status_for(exc), content_type="application/xml")
