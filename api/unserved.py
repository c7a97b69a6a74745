"""Requests for AWS services pocketcloud does not serve (SNS, SQS, CloudWatch Logs, RDS, ...),
answered in the protocol their clients parse.

Such a request used to reach the S3 gateway, the endpoint's fallback, whose `<Error>`
document a Query or JSON client cannot read: the Terraform provider printed `UnknownError`
for an `aws_sns_topic`. Here a Query request (form-encoded, `Action=`) gets a Query
`ErrorResponse` and a JSON request (`X-Amz-Target`) a JSON error, both `NotImplemented`
naming the service. A REST-style request cannot be told apart from an S3 one by its shape,
so it still goes to the gateway (which refuses a signature for another service).
Nothing of the request is read beyond its headers and query string: the answer is the same
whoever asks.
"""
from __future__ import annotations

import json
import re
import uuid

from emulator.errors import InvalidParameter

from .errors import query_error

SERVED = "EC2, S3, STS, Auto Scaling, Cost Explorer and Budgets"
_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")


def shape_of(environ: dict) -> str | None:
    """'query' or 'json' for a request in one of those protocols, else None."""
    if environ.get("HTTP_X_AMZ_TARGET") or environ.get("CONTENT_TYPE", "").startswith("application/x-amz-json"):
        return "json"
    form = environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded")
    if (environ.get("REQUEST_METHOD") == "POST" and form) or "Action=" in environ.get("QUERY_STRING", ""):
        return "query"
    return None


def _safe(text: str) -> str:
    return text if _NAME.fullmatch(text) else "?"


def app_for(service: str):
    """The WSGI answer to a Query or JSON request signed for `service`."""
    def app(environ, start_response):
        rid = str(uuid.uuid4())
        target = environ.get("HTTP_X_AMZ_TARGET", "").rsplit(".", 1)[-1]
        what = f"{_safe(service)} ({_safe(target)})" if target else _safe(service)
        exc = InvalidParameter(f"pocketcloud does not serve the AWS service {what}: this endpoint serves {SERVED}",
                               code="NotImplemented")
        if shape_of(environ) == "json":
            body = json.dumps({"__type": exc.code, "message": str(exc)}).encode()
            headers = [("Content-Type", "application/x-amz-json-1.1"), ("x-amzn-ErrorType", exc.code)]
        else:
            text, _ = query_error(exc, "", rid)
            body, headers = text.encode(), [("Content-Type", "text/xml;charset=UTF-8")]
        start_response("400 Bad Request", [*headers, ("Content-Length", str(len(body))), ("x-amzn-RequestId", rid)])
        return [body]

    return app
