"""The one exception hierarchy of the cloud.

Every engine error is turned into one of these at the driver boundary, so the front
ends (REST, EC2, S3, CLI) map a small, closed set of failures to their protocols.
`code` is the AWS-style code a front end may use when it has no better one.
"""
from __future__ import annotations


class CloudError(Exception):
    code = "InternalError"

    def __init__(self, message: str, *, code: str | None = None, hint: str | None = None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} ({self.hint})"


class NotFound(CloudError):
    code = "NotFound"


class AlreadyExists(CloudError):
    code = "AlreadyExists"


class InvalidParameter(CloudError):
    code = "InvalidParameterValue"


class InvalidState(CloudError):
    code = "IncorrectInstanceState"


class QuotaExceeded(CloudError):
    code = "QuotaExceeded"


class Throttled(CloudError):
    """Too many requests of one kind at once from one account (or from everyone): try again
    when one of them has finished. Nothing was done."""

    code = "RequestLimitExceeded"


class Unauthorized(CloudError):
    code = "AuthFailure"


class Forbidden(CloudError):
    code = "UnauthorizedOperation"


class TooLarge(CloudError):
    """A request body over its route's limit, refused before it is read."""

    code = "RequestTooLarge"


class BackendUnavailable(CloudError):
    code = "ServiceUnavailable"


class EngineError(CloudError):
    """The engine refused or failed an operation for a reason that is not the caller's."""

    code = "InternalError"
