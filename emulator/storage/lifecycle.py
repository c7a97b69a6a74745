"""Lifecycle configuration: checked as S3 checks it, and honoured by a background pass.

A rule is a dict mirroring S3's XML, so it reads back as it was written:
  {"ID", "Status", "Prefix" (the legacy form) or "Filter": {} | {"Prefix"} | {"Tag": {"Key",
  "Value"}} | {"ObjectSizeGreaterThan"} | {"ObjectSizeLessThan"} | {"And": {"Prefix", "Tags":
  [{"Key", "Value"}], "ObjectSizeGreaterThan", "ObjectSizeLessThan"}}, and actions
  "Expiration": {"Days"} | {"Date"} | {"ExpiredObjectDeleteMarker"},
  "NoncurrentVersionExpiration": {"NoncurrentDays", "NewerNoncurrentVersions"},
  "AbortIncompleteMultipartUpload": {"DaysAfterInitiation"}}.

What the pass does, on every engine: current objects matching an enabled rule's filter are
deleted once `Days` after their write (rounded up to the next midnight UTC, as S3 does) or
from `Date` on; unfinished multipart uploads are aborted `DaysAfterInitiation` after they
began. Storage-class transitions do not exist here (one class, STANDARD) and are refused.
Noncurrent versions exist only on an engine that keeps versions; see versions.py.
"""
from __future__ import annotations

import datetime as dt
import math
import secrets

from ..errors import InvalidParameter
from .tagging import MAX_OBJECT_TAGS, check as check_tags, matches as tags_match

MAX_RULES = 1000
DAY = 86400.0
ACTIONS = ("Expiration", "NoncurrentVersionExpiration", "AbortIncompleteMultipartUpload")
REFUSED = ("Transition", "NoncurrentVersionTransition")


def _malformed(message: str) -> InvalidParameter:
    return InvalidParameter(f"The XML you provided was not well-formed or did not validate against our published "
                            f"schema: {message}", code="MalformedXML")


def _argument(message: str) -> InvalidParameter:
    return InvalidParameter(message, code="InvalidArgument")


def _positive(value, what: str) -> int:
    try:
        n = int(value)
    except (TypeError, ValueError):
        n = 0
    if n <= 0:
        raise _argument(f"'{what}' must be a positive integer")
    return n


def _date(value: str) -> str:
    try:
        when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (AttributeError, ValueError):
        raise _argument(f"Invalid 'Date' {str(value)[:40]!r}: ISO 8601 at midnight GMT expected") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    when = when.astimezone(dt.timezone.utc)
    if (when.hour, when.minute, when.second, when.microsecond) != (0, 0, 0, 0):
        raise _argument("'Date' must be at midnight GMT")
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _tag_pairs(tags: list[dict]) -> list[tuple[str, str]]:
    return [(t.get("Key"), t.get("Value", "")) for t in tags]


def _check_filter(rule: dict) -> None:
    if "Filter" in rule and "Prefix" in rule:
        raise _malformed("a Rule has either a Filter or a Prefix, not both")
    if "Filter" not in rule and "Prefix" not in rule:
        raise _malformed("each Rule needs a Filter (or the legacy Prefix)")
    f = rule.get("Filter")
    if f is None:
        return
    if len(f) > 1:
        raise _malformed("a Filter holds one of Prefix, Tag, ObjectSizeGreaterThan, ObjectSizeLessThan or And")
    if "Tag" in f:
        check_tags(_tag_pairs([f["Tag"]]), limit=1)
    if "And" in f:
        check_tags(_tag_pairs(f["And"].get("Tags", [])), limit=MAX_OBJECT_TAGS)
    sizes = f.get("And", f)
    lo, hi = sizes.get("ObjectSizeGreaterThan"), sizes.get("ObjectSizeLessThan")
    for v in (lo, hi):
        if v is not None and (not isinstance(v, int) or v < 0):
            raise _argument("ObjectSizeGreaterThan and ObjectSizeLessThan are byte counts")
    if lo is not None and hi is not None and hi <= lo:
        raise _argument("ObjectSizeLessThan must be greater than ObjectSizeGreaterThan")


def check(rules: list[dict]) -> list[dict]:
    """The rules (an ID given to each that has none, as S3 does), or the error S3 gives."""
    if not rules:
        raise _malformed("a LifecycleConfiguration needs at least one Rule")
    if len(rules) > MAX_RULES:
        raise _argument(f"A lifecycle configuration has at most {MAX_RULES} rules")
    ids = set()
    for rule in rules:
        rule.setdefault("ID", secrets.token_urlsafe(36)[:48])
        if not rule["ID"] or len(rule["ID"]) > 255:
            raise _argument("ID length should not exceed allowed limit of 255")
        if rule["ID"] in ids:
            raise _argument("Rule ID must be unique. Found same ID for more than one rule")
        ids.add(rule["ID"])
        if rule.get("Status") not in ("Enabled", "Disabled"):
            raise _malformed("a Rule's Status is Enabled or Disabled")
        _check_filter(rule)
        for name in REFUSED:
            if name in rule:
                raise InvalidParameter(f"{name}: pocketcloud has one storage class (STANDARD), so objects have "
                                       "nowhere to transition to", code="NotImplemented")
        if not any(a in rule for a in ACTIONS):
            raise InvalidParameter("At least one action needs to be specified in a rule", code="InvalidRequest")
        exp = rule.get("Expiration")
        if exp is not None:
            given = [k for k in ("Days", "Date", "ExpiredObjectDeleteMarker") if k in exp]
            if len(given) != 1:
                raise _malformed("an Expiration holds one of Days, Date or ExpiredObjectDeleteMarker")
            if "Days" in exp:
                exp["Days"] = _positive(exp["Days"], "Days' in Expiration action")
            if "Date" in exp:
                exp["Date"] = _date(exp["Date"])
        nve = rule.get("NoncurrentVersionExpiration")
        if nve is not None:
            nve["NoncurrentDays"] = _positive(nve.get("NoncurrentDays"),
                                              "NoncurrentDays' in NoncurrentVersionExpiration action")
            if nve.get("NewerNoncurrentVersions") is not None:
                nve["NewerNoncurrentVersions"] = _positive(nve["NewerNoncurrentVersions"], "NewerNoncurrentVersions")
        abort = rule.get("AbortIncompleteMultipartUpload")
        if abort is not None:
            abort["DaysAfterInitiation"] = _positive(abort.get("DaysAfterInitiation"), "DaysAfterInitiation")
            f = rule.get("Filter") or {}
            if "Tag" in f or (f.get("And") or {}).get("Tags"):
                raise InvalidParameter("AbortIncompleteMultipartUpload cannot be specified with Tags",
                                       code="InvalidRequest")
    return rules


# -- the pass -------------------------------------------------------------------------------------
def applies(rule: dict, key: str, size: int | None = None, tags: list[tuple[str, str]] = ()) -> bool:
    """Whether an enabled `rule`'s filter selects the object (size None: an upload, no size yet)."""
    if rule.get("Status") != "Enabled":
        return False
    if "Prefix" in rule:
        return key.startswith(rule["Prefix"] or "")
    f = rule.get("Filter") or {}
    cond = f.get("And", f)
    if not key.startswith(cond.get("Prefix") or ""):
        return False
    wanted = _tag_pairs(cond.get("Tags", [])) + (_tag_pairs([f["Tag"]]) if "Tag" in f else [])
    if wanted and not tags_match(list(tags), wanted):
        return False
    if size is not None:
        lo, hi = cond.get("ObjectSizeGreaterThan"), cond.get("ObjectSizeLessThan")
        if (lo is not None and size <= lo) or (hi is not None and size >= hi):
            return False
    return True


def _after_days(start: float, days: int, day: float) -> float:
    """When `days` days after `start` fall due: rounded up to the next midnight UTC with real
    days (S3's rule); with a shortened day (a class or a test), exactly days x day later."""
    due = start + days * day
    if day == DAY:
        due = math.ceil(due / DAY) * DAY
    return due


def expires_at(rule: dict, written_at: float, day: float = DAY) -> float | None:
    """When a current object written at `written_at` expires under `rule` (None: never)."""
    exp = rule.get("Expiration") or {}
    if "Days" in exp:
        return _after_days(written_at, exp["Days"], day)
    if "Date" in exp:
        return dt.datetime.fromisoformat(exp["Date"].replace("Z", "+00:00")).timestamp()
    return None


def abort_at(rule: dict, initiated_at: float, day: float = DAY) -> float | None:
    abort = rule.get("AbortIncompleteMultipartUpload")
    return _after_days(initiated_at, abort["DaysAfterInitiation"], day) if abort else None


def expiry_header(rules: list[dict], key: str, size: int, tags, written_at: float, day: float = DAY) -> str | None:
    """x-amz-expiration for GET/HEAD: the earliest expiry date and the rule that sets it."""
    best = None
    for rule in rules or ():
        if applies(rule, key, size, tags):
            when = expires_at(rule, written_at, day)
            if when is not None and (best is None or when < best[0]):
                best = (when, rule["ID"])
    if best is None:
        return None
    stamp = dt.datetime.fromtimestamp(best[0], dt.timezone.utc).strftime("%a, %d %b %Y %H:%M:%S GMT")
    return f'expiry-date="{stamp}", rule-id="{best[1]}"'
