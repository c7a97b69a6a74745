"""Bucket policies evaluated as S3 does, per request: explicit Deny wins, then any Allow.

A statement applies when its Principal names the caller (an account id, its IAM ARN, or
'*' for anyone, signed or not), its Action (or NotAction) matches the S3 action, its
Resource (or NotResource) the bucket or object ARN, and every Condition holds. Conditions:
String{Equals,NotEquals,EqualsIgnoreCase,NotEqualsIgnoreCase,Like,NotLike}, Numeric*, Date*,
Bool, IpAddress/NotIpAddress, Null, each with its IfExists form; on keys aws:SourceIp,
aws:SecureTransport, aws:CurrentTime, aws:EpochTime, aws:PrincipalAccount, aws:userid,
aws:UserAgent, aws:Referer, s3:prefix, s3:delimiter, s3:max-keys, s3:x-amz-acl and the other
s3:x-amz-* request headers. A key the request does not have fails the condition, except
under IfExists and negated operators (StringNotEquals, NotIpAddress...: they then hold), and
Null. The request's facts come from `Context` (set by
the S3 gateway for the request being served).
"""
from __future__ import annotations

import contextvars
import datetime as dt
import fnmatch
import ipaddress
import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from ..errors import InvalidParameter

_ARN = re.compile(r"arn:aws:iam::(\d{12}):(root|user/.+)")


@dataclass
class Context:
    """What a policy may ask about the request being served."""
    action: str | None = None                 # e.g. "s3:GetObject"
    key: str | None = None
    values: dict[str, Any] = field(default_factory=dict)   # condition keys, lower case


current: contextvars.ContextVar[Context | None] = contextvars.ContextVar("s3_request", default=None)

OPERATORS = ("StringEquals", "StringNotEquals", "StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase",
             "StringLike", "StringNotLike", "NumericEquals", "NumericNotEquals", "NumericLessThan",
             "NumericLessThanEquals", "NumericGreaterThan", "NumericGreaterThanEquals", "DateEquals",
             "DateNotEquals", "DateLessThan", "DateLessThanEquals", "DateGreaterThan", "DateGreaterThanEquals",
             "Bool", "IpAddress", "NotIpAddress", "Null", "ArnEquals", "ArnLike", "ArnNotEquals", "ArnNotLike")


def _list(value) -> list:
    if isinstance(value, list):
        return value
    return [] if value is None else [value]


def _malformed(message: str) -> InvalidParameter:
    return InvalidParameter(message, code="MalformedPolicy")


@lru_cache(maxsize=256)
def statements(text: str) -> tuple[dict, ...]:
    """The statements of a policy document (checked once per distinct text)."""
    try:
        doc = json.loads(text)
    except ValueError:
        raise _malformed("the policy is not valid JSON") from None
    sts = doc.get("Statement") if isinstance(doc, dict) else None
    if isinstance(sts, dict):
        sts = [sts]
    if not isinstance(sts, list) or not sts:
        raise _malformed("the policy needs a Statement list")
    for st in sts:
        validate(st)
    return tuple(sts)


def validate(st) -> None:
    if not isinstance(st, dict) or st.get("Effect") not in ("Allow", "Deny"):
        raise _malformed("each statement needs Effect Allow or Deny")
    if ("Principal" in st) == ("NotPrincipal" in st):
        raise _malformed("each statement needs a Principal (NotPrincipal is not supported)")
    if "NotPrincipal" in st:
        raise _malformed("NotPrincipal is not supported: name the principals")
    if ("Action" in st) == ("NotAction" in st):
        raise _malformed("each statement needs Action or NotAction")
    if ("Resource" in st) == ("NotResource" in st):
        raise _malformed("each statement needs Resource or NotResource")
    for a in _list(st.get("Action", st.get("NotAction"))):
        if not isinstance(a, str) or not (a == "*" or a.lower().startswith("s3:")):
            raise _malformed(f"Policy has invalid action: {str(a)[:60]!r}")
    for op, pairs in (st.get("Condition") or {}).items():
        base = op.removesuffix("IfExists")
        if base.startswith("ForAllValues:") or base.startswith("ForAnyValue:"):
            base = base.split(":", 1)[1]
        if base not in OPERATORS or not isinstance(pairs, dict):
            raise _malformed(f"unsupported condition operator {op[:60]!r}")


def principal_ids(st: dict) -> list[str]:
    """'*' or account ids a statement's Principal names."""
    p = st.get("Principal")
    if isinstance(p, dict):
        p = p.get("AWS")
    out = []
    for ref in _list(p):
        m = _ARN.fullmatch(str(ref))
        out.append(m.group(1) if m else str(ref))
    return out


def _matches_principal(st: dict, account_id: str | None) -> bool:
    ids = principal_ids(st)
    return "*" in ids or (account_id is not None and account_id in ids)


def _like(pattern: str, value: str, ignore_case: bool = True) -> bool:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.IGNORECASE if ignore_case else 0) is not None


def _matches_action(st: dict, action: str) -> bool:
    if "Action" in st:
        return any(_like(str(a), action) for a in _list(st["Action"]))
    return not any(_like(str(a), action) for a in _list(st["NotAction"]))


def _matches_resource(st: dict, resource: str) -> bool:
    if "Resource" in st:
        return any(_like(str(r), resource, ignore_case=False) for r in _list(st["Resource"]))
    return not any(_like(str(r), resource, ignore_case=False) for r in _list(st["NotResource"]))


def _number(v) -> float | None:
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def _date(v) -> float | None:
    if isinstance(v, (int, float)):
        return float(v)
    try:
        return dt.datetime.fromisoformat(str(v).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return _number(v)


def _compare(op: str, have, want) -> bool:
    s_have, s_want = str(have), str(want)
    if op == "StringEquals":
        return s_have == s_want
    if op == "StringNotEquals":
        return s_have != s_want
    if op == "StringEqualsIgnoreCase":
        return s_have.lower() == s_want.lower()
    if op == "StringNotEqualsIgnoreCase":
        return s_have.lower() != s_want.lower()
    if op in ("StringLike", "ArnLike", "ArnEquals"):
        return _like(s_want, s_have, ignore_case=False)
    if op in ("StringNotLike", "ArnNotLike", "ArnNotEquals"):
        return not _like(s_want, s_have, ignore_case=False)
    if op == "Bool":
        return s_have.lower() == s_want.lower()
    if op in ("IpAddress", "NotIpAddress"):
        try:
            inside = ipaddress.ip_address(s_have) in ipaddress.ip_network(s_want, strict=False)
        except ValueError:
            return False
        return inside if op == "IpAddress" else not inside
    conv = _date if op.startswith("Date") else _number
    a, b = conv(have), conv(want)
    if a is None or b is None:
        return False
    kind = op.removeprefix("Date").removeprefix("Numeric")
    return {"Equals": a == b, "NotEquals": a != b, "LessThan": a < b, "LessThanEquals": a <= b,
            "GreaterThan": a > b, "GreaterThanEquals": a >= b}[kind]


_NEGATED = ("StringNotEquals", "StringNotEqualsIgnoreCase", "StringNotLike", "NotIpAddress", "NumericNotEquals",
            "DateNotEquals", "ArnNotEquals", "ArnNotLike")


def _condition_holds(op: str, key: str, wanted, values: dict) -> bool:
    if_exists = op.endswith("IfExists")
    base = op.removesuffix("IfExists")
    base = base.split(":", 1)[1] if ":" in base else base
    present = key.lower() in values
    if base == "Null":
        return any((str(w).lower() == "true") == (not present) for w in _list(wanted))
    if not present:   # IAM: a missing key fails a condition, but holds for negated operators and IfExists
        return if_exists or base in _NEGATED
    have = values[key.lower()]
    wants = _list(wanted)
    if base in _NEGATED:   # a negated operator holds when the value matches none of those listed
        return all(_compare(base, have, w) for w in wants)
    return any(_compare(base, have, w) for w in wants)


def _conditions_hold(st: dict, values: dict) -> bool:
    return all(_condition_holds(op, key, wanted, values)
               for op, pairs in (st.get("Condition") or {}).items() for key, wanted in pairs.items())


def evaluate(text: str, account_id: str | None, action: str, resource: str, values: dict) -> str | None:
    """'Deny', 'Allow' or None (the policy says nothing about this request)."""
    verdict = None
    for st in statements(text):
        if (_matches_principal(st, account_id) and _matches_action(st, action)
                and _matches_resource(st, resource) and _conditions_hold(st, values)):
            if st["Effect"] == "Deny":
                return "Deny"
            verdict = "Allow"
    return verdict


# condition keys that pin a public statement to known callers (S3's rule for "public")
_RESTRICTING = {"aws:sourceip", "aws:sourcevpc", "aws:sourcevpce", "aws:sourceaccount", "aws:principalaccount",
                "aws:sourcearn", "aws:userid", "aws:principalorgid", "aws:sourceowner", "s3:dataaccesspointaccount"}


def is_public(text: str) -> bool:
    """GetBucketPolicyStatus: an Allow to Principal '*' not restricted to known callers."""
    for st in statements(text):
        if st["Effect"] != "Allow" or "*" not in principal_ids(st):
            continue
        keys = {k.lower() for pairs in (st.get("Condition") or {}).values() for k in pairs}
        if not keys & _RESTRICTING:
            return True
    return False
