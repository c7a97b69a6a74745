"""The AWS Query protocol front shared by EC2, STS (and the other Query services).

Form-encoded `Action=...&Version=...` in the body (POST) or the query string, SigV4-signed
with pocketcloud's keys; each service brings its action table, its response renderer and
its error document. The steps are the same for all: read a bounded body, parse, verify the
signature, dispatch, and turn every failure into the service's error, never a bare 500 page.
"""
from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Callable

from emulator.errors import CloudError, InvalidParameter, Unauthorized
from emulator.sigv4 import query_pairs

from . import sigv4
from .limits import EC2_QUERY, read_capped

log = logging.getLogger("pocketcloud.query")

Handler = Callable[..., dict]


@dataclass(frozen=True)
class QueryService:
    name: str                                             # the SigV4 service requests must be signed for
    actions: dict[str, Handler]                           # wire action -> handler(cloud, caller, params)
    render: Callable[[str, dict, str], str]               # (action, result, request id) -> XML
    error: Callable[[Exception, str], tuple[str, int]]    # (exception, request id) -> (XML, status)
    unsigned: Callable[[], CloudError]                    # the service's answer to an unsigned request
    unknown_key_code: str                                 # its code for an access key nobody issued
    wrap: Callable[[Handler], Handler] | None = None      # e.g. EC2's DryRun around every handler


def read_body(environ, limit: int = EC2_QUERY) -> bytes:
    """The whole body of a small API request, refused (413) past `limit` bytes."""
    return read_capped(environ, limit)


def params_of(environ, body: bytes) -> dict[str, str]:
    """The parameters, read with the parser the signature was verified with."""
    params = dict(query_pairs(environ.get("QUERY_STRING", "")))
    if environ.get("REQUEST_METHOD") == "POST":
        params.update(query_pairs(body.decode("utf-8", "replace")))
    return params


def create_query_app(cloud, service: QueryService):
    def app(environ, start_response):
        request_id = str(uuid.uuid4())
        params: dict[str, str] = {}
        try:
            body = read_body(environ)
            params = params_of(environ, body)
            if not sigv4.is_signed(environ):
                raise service.unsigned()
            try:
                verified = sigv4.verify(environ, cloud.accounts.secret_for, body=body, region=cloud.config.region,
                                        service=service.name)
            except CloudError as e:
                if e.code == "InvalidAccessKeyId":
                    raise Unauthorized("The security token included in the request is invalid: pocketcloud "
                                       "issued no such access key", code=service.unknown_key_code) from e
                raise
            action = params.get("Action")
            if not action:
                raise InvalidParameter("the request must contain the parameter Action", code="MissingAction")
            handler = service.actions.get(action)
            if handler is None:
                served = sorted(a for a, h in service.actions.items() if not getattr(h, "refuses", False))
                raise InvalidParameter(f"the action {action[:64]} is not valid for this web service "
                                       f"(pocketcloud's {service.name} implements: "
                                       f"{', '.join(served) or 'nothing'})", code="InvalidAction")
            if service.wrap is not None:
                handler = service.wrap(handler)
            xml = service.render(action, handler(cloud, verified.account, params), request_id)
            status = "200 OK"
        except Exception as exc:  # every failure is the service's error document
            if not isinstance(exc, CloudError):
                log.exception("%s %s failed", service.name, params.get("Action", "?"))
            else:  # the access log shows only "POST / 400": say which action and why
                log.info("%s %s -> %s", service.name, str(params.get("Action", "?"))[:64], exc.code)
            xml, code = service.error(exc, request_id)
            status = f"{code} Error"
        data = xml.encode()
        start_response(status, [("Content-Type", "text/xml;charset=UTF-8"), ("Content-Length", str(len(data))),
                                ("x-amzn-RequestId", request_id)])
        return [data]

    return app
