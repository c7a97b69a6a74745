"""The AWS JSON 1.1 protocol (Cost Explorer, Budgets): POST / with `X-Amz-Target:
Prefix.Operation`, a JSON body, signed with SigV4 for the service. Answers JSON, errors as
{"__type", "message"} with the service's codes (api/errors.py)."""
from __future__ import annotations

import json
import logging
import uuid
from typing import Any, Callable

from emulator.errors import CloudError, InvalidParameter, Unauthorized

from . import sigv4
from .errors import json11_error

log = logging.getLogger("pocketcloud.json11")
MAX_BODY = 1024 * 1024
CONTENT_TYPE = "application/x-amz-json-1.1"
Handler = Callable[[Any, Any, dict], dict]


def _body(environ) -> bytes:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise InvalidParameter("invalid Content-Length", code="SerializationException") from None
    if length > MAX_BODY:
        raise InvalidParameter(f"request body larger than {MAX_BODY} bytes", code="SerializationException")
    return environ["wsgi.input"].read(length) if length else b""


def _verify(cloud, environ, body: bytes, service: str):
    if not sigv4.is_signed(environ):
        raise Unauthorized("Missing Authentication Token: sign the request with SigV4 using a pocketcloud access key "
                           "(eval \"$(pocketcloud env)\")", code="MissingAuthenticationTokenException")
    try:
        verified = sigv4.verify(environ, cloud.accounts.secret_for, body=body)
    except CloudError as e:
        if e.code == "InvalidAccessKeyId":
            raise Unauthorized("The security token included in the request is invalid.",
                               code="UnrecognizedClientException") from e
        if e.code == "SignatureDoesNotMatch":
            raise Unauthorized(str(e), code="InvalidSignatureException") from e
        raise
    if verified.scope.service != service:
        raise Unauthorized(f"Credential should be scoped to correct service: '{service}'",
                           code="InvalidSignatureException")
    return verified


def create_json11_app(cloud, *, service: str, target_prefix: str, actions: dict[str, Handler]):
    def app(environ, start_response):
        request_id = str(uuid.uuid4())
        op = "?"
        try:
            body = _body(environ)
            verified = _verify(cloud, environ, body, service)
            target = environ.get("HTTP_X_AMZ_TARGET", "")
            prefix, _, op = target.partition(".")
            handler = actions.get(op) if prefix == target_prefix else None
            if handler is None:
                raise InvalidParameter(f"unknown operation {target[:100]!r}; pocketcloud's {service} offers "
                                       f"{', '.join(sorted(actions))}", code="UnknownOperationException")
            try:
                data = json.loads(body or b"{}")
            except ValueError:
                raise InvalidParameter("the body is not valid JSON", code="SerializationException") from None
            if not isinstance(data, dict):
                raise InvalidParameter("the body must be a JSON object", code="SerializationException")
            out, status = json.dumps(handler(cloud, verified.account, data)), "200 OK"
        except Exception as exc:  # every failure is a JSON 1.1 error, never a bare 500 page
            if not isinstance(exc, CloudError):
                log.exception("%s %s failed", service, op)
            out, code = json11_error(exc)
            status = f"{code} Error"
            start_response(status, [("Content-Type", CONTENT_TYPE), ("Content-Length", str(len(out.encode()))),
                                    ("x-amzn-RequestId", request_id),
                                    ("x-amzn-ErrorType", json.loads(out)["__type"])])
            return [out.encode()]
        data = out.encode()
        start_response(status, [("Content-Type", CONTENT_TYPE), ("Content-Length", str(len(data))),
                                ("x-amzn-RequestId", request_id)])
        return [data]

    return app


def required(data: dict, *names: str) -> None:
    for n in names:
        if data.get(n) in (None, "", [], {}):
            raise InvalidParameter(f"1 validation error detected: Value null at '{n[0].lower() + n[1:]}' failed to "
                                   "satisfy constraint: Member must not be null", code="ValidationException")
