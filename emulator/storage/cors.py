"""A bucket's CORS configuration: checking it as S3 does, and answering a browser with it.

A rule is a dict: allowed_origins, allowed_methods, allowed_headers, expose_headers (lists of
strings), max_age (seconds or None), id (or None). The first rule that allows the origin,
the method and every requested header answers; no rule, no CORS headers (a preflight is
then refused). Pure functions: the facade stores rules, the gateway adds the headers.
"""
from __future__ import annotations

import re

from ..errors import Forbidden, InvalidParameter

METHODS = ("GET", "PUT", "HEAD", "POST", "DELETE")
MAX_RULES = 100
VARY = "Origin, Access-Control-Request-Headers, Access-Control-Request-Method"


def _request_error(message: str) -> InvalidParameter:
    return InvalidParameter(message, code="InvalidRequest")


def check(rules: list[dict]) -> list[dict]:
    """The rules as given, or MalformedXML/InvalidRequest saying what S3 would."""
    if not rules:
        raise InvalidParameter("The XML you provided was not well-formed or did not validate against our "
                               "published schema: a CORSConfiguration needs at least one CORSRule",
                               code="MalformedXML")
    if len(rules) > MAX_RULES:
        raise _request_error(f"A CORS configuration can have at most {MAX_RULES} rules")
    for rule in rules:
        if not rule["allowed_origins"] or not rule["allowed_methods"]:
            raise InvalidParameter("Each CORSRule needs at least one AllowedOrigin and one AllowedMethod",
                                   code="MalformedXML")
        for method in rule["allowed_methods"]:
            if method not in METHODS:
                raise _request_error(f"Found unsupported HTTP method in CORS config. Unsupported method is "
                                     f"{method[:20]}")
        for origin in rule["allowed_origins"]:
            if origin.count("*") > 1:
                raise _request_error(f'AllowedOrigin "{origin[:80]}" can not have more than one wildcard.')
        for header in rule["allowed_headers"]:
            if header.count("*") > 1:
                raise _request_error(f'AllowedHeader "{header[:80]}" can not have more than one wildcard.')
        if rule.get("id") and len(rule["id"]) > 255:
            raise _request_error("A CORSRule ID is at most 255 characters")
        if rule.get("max_age") is not None and rule["max_age"] < 0:
            raise _request_error("MaxAgeSeconds must not be negative")
    return rules


def _wildcard(pattern: str, value: str, ignore_case: bool = False) -> bool:
    regex = ".*".join(re.escape(p) for p in pattern.split("*"))
    return re.fullmatch(regex, value, re.IGNORECASE if ignore_case else 0) is not None


def _requested_headers(value: str | None) -> list[str]:
    return [h.strip().lower() for h in (value or "").split(",") if h.strip()]


def match(rules: list[dict] | None, origin: str, method: str, request_headers: str | None = None) -> dict | None:
    """The first rule allowing `origin`, `method` and each of `request_headers`
    (Access-Control-Request-Headers), or None."""
    wanted = _requested_headers(request_headers)
    for rule in rules or ():
        if method not in rule["allowed_methods"]:
            continue
        if not any(_wildcard(o, origin) for o in rule["allowed_origins"]):
            continue
        if all(any(_wildcard(h, w, ignore_case=True) for h in rule["allowed_headers"]) for w in wanted):
            return rule
    return None


def _allow_origin(rule: dict, origin: str) -> list[tuple[str, str]]:
    if "*" in rule["allowed_origins"]:
        return [("Access-Control-Allow-Origin", "*")]
    return [("Access-Control-Allow-Origin", origin), ("Access-Control-Allow-Credentials", "true")]


def _common(rule: dict) -> list[tuple[str, str]]:
    out = [("Access-Control-Allow-Methods", ", ".join(rule["allowed_methods"]))]
    if rule["expose_headers"]:
        out.append(("Access-Control-Expose-Headers", ", ".join(rule["expose_headers"])))
    if rule.get("max_age") is not None:
        out.append(("Access-Control-Max-Age", str(rule["max_age"])))
    return out


def preflight(rules: list[dict] | None, origin: str | None, method: str | None,
              request_headers: str | None) -> list[tuple[str, str]]:
    """The headers answering an OPTIONS preflight, or the error S3 gives."""
    if not origin:
        raise InvalidParameter("Insufficient information. Origin request header needed.", code="BadRequest")
    if not method:
        raise InvalidParameter("Invalid Access-Control-Request-Method: null", code="BadRequest")
    if not rules:
        raise Forbidden("CORSResponse: CORS is not enabled for this bucket.", code="AccessForbidden")
    rule = match(rules, origin, method.upper(), request_headers)
    if rule is None:
        raise Forbidden("CORSResponse: This CORS request is not allowed. This is usually because the evalution "
                        "of Origin, request method / Access-Control-Request-Method or "
                        "Access-Control-Request-Headers are not whitelisted by the resource's CORS spec.",
                        code="AccessForbidden")
    headers = _allow_origin(rule, origin) + _common(rule)
    wanted = _requested_headers(request_headers)
    if wanted:
        headers.append(("Access-Control-Allow-Headers", ", ".join(wanted)))
    return headers + [("Vary", VARY)]


def actual(rules: list[dict] | None, origin: str | None, method: str) -> list[tuple[str, str]]:
    """The headers a request from a browser page (it sent Origin) gets back, if a rule allows it."""
    if not origin or not rules:
        return []
    rule = match(rules, origin, method.upper())
    if rule is None:
        return [("Vary", VARY)]
    return _allow_origin(rule, origin) + _common(rule) + [("Vary", VARY)]
