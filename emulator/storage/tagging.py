"""Tag sets of buckets and objects, checked as S3 checks them (codes InvalidTag, BadRequest)."""
from __future__ import annotations

import re
from urllib.parse import parse_qsl

from ..errors import InvalidParameter

MAX_OBJECT_TAGS = 10
MAX_BUCKET_TAGS = 50
MAX_KEY = 128
MAX_VALUE = 256
# letters and digits in any script, white space, and _ . : / = + - @ (S3's documented set)
_CHARS = re.compile(r"^[\w\s.:/=+\-@]*$")

Tags = list[tuple[str, str]]


def _invalid(message: str) -> InvalidParameter:
    return InvalidParameter(message, code="InvalidTag")


def check(tags: Tags, *, limit: int) -> Tags:
    """The tag set as given, or InvalidTag/BadRequest saying what is wrong with it."""
    if len(tags) > limit:
        raise InvalidParameter(f"Object tags cannot be greater than {limit}" if limit == MAX_OBJECT_TAGS
                               else f"Bucket tag count cannot be greater than {limit}", code="BadRequest")
    seen = set()
    for key, value in tags:
        if not isinstance(key, str) or not isinstance(value, str):
            raise _invalid("each Tag needs a Key and a Value")
        if not 1 <= len(key) <= MAX_KEY:
            raise _invalid(f"The TagKey you have provided is invalid: keys are 1-{MAX_KEY} characters")
        if len(value) > MAX_VALUE:
            raise _invalid(f"The TagValue you have provided is invalid: values are at most {MAX_VALUE} characters")
        if key.lower().startswith("aws:"):
            raise _invalid("Your TagKey cannot be prefixed with aws:")
        if not _CHARS.match(key) or not _CHARS.match(value):
            raise _invalid(f"The TagKey/TagValue {key[:40]!r} has characters outside letters, digits, "
                           "spaces and _ . : / = + - @")
        if key in seen:
            raise _invalid("Cannot provide multiple Tags with the same key")
        seen.add(key)
    return list(tags)


def from_header(header: str | None, *, limit: int = MAX_OBJECT_TAGS) -> Tags:
    """x-amz-tagging: 'k1=v1&k2=v2', URL-encoded as a query string."""
    if not header:
        return []
    try:
        pairs = parse_qsl(header, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        raise _invalid("x-amz-tagging must be URL-encoded key=value pairs joined by '&'") from None
    return check(pairs, limit=limit)


def matches(tags: Tags, wanted: Tags) -> bool:
    """Whether an object with `tags` carries every one of `wanted` (lifecycle filters)."""
    have = dict(tags)
    return all(have.get(k) == v for k, v in wanted)
