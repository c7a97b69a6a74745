"""S3's listing rules, answered from the cloud's own index so they are the same on every
engine: ListObjects (v1 markers), ListObjectsV2 (continuation tokens, StartAfter) and the
`null`-version listing of buckets whose engine keeps no versions.

Keys are listed in UTF-8 byte order (Python's code-point order is the same, and so is
SQLite's BINARY collation). After the marker, each key under the prefix is either listed,
or — when the delimiter (any string) occurs after the prefix — rolled up into the common
prefix ending at that delimiter's first occurrence. A common prefix counts once, toward
max-keys like a key, and only when it sorts after the marker (so paging on a NextMarker
that is a common prefix never repeats it).
"""
from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Callable, Iterable

from ..errors import InvalidParameter

MAX_KEYS = 1000
TOKEN_TAG = "pc1:"    # a continuation token is opaque to clients; the tag tells ours from garbage

# rows(after, prefix): index entries (dicts with at least "key") with key > after that start
# with prefix, in key order
Rows = Callable[[str, str], Iterable[dict]]


@dataclass
class Page:
    entries: list[dict] = field(default_factory=list)     # listed objects, in order
    prefixes: list[str] = field(default_factory=list)     # common prefixes, in order
    truncated: bool = False
    last: str | None = None                               # the last key or prefix of the page


def max_keys(value: str | None, name: str = "max-keys") -> int:
    """S3's max-keys: 0..1000 (more is 1000); a non-integer or negative one is refused."""
    if value is None or value == "":
        return MAX_KEYS
    try:
        n = int(value)
    except ValueError:
        raise InvalidParameter(f"Provided {name} not an integer or within integer range",
                               code="InvalidArgument") from None
    if n < 0:
        raise InvalidParameter(f"Argument {name} must be an integer between 0 and 2147483647",
                               code="InvalidArgument")
    return min(n, MAX_KEYS)


def encoding_type(value: str | None) -> str | None:
    if value in (None, ""):
        return None
    if value != "url":
        raise InvalidParameter("Invalid Encoding Method specified in Request", code="InvalidArgument")
    return value


def page(rows: Rows, *, prefix: str = "", delimiter: str = "", after: str = "", limit: int = MAX_KEYS) -> Page:
    """One page: up to `limit` keys and common prefixes sorting after `after`."""
    out = Page()
    if limit == 0:
        return out
    rolled: str | None = None
    for entry in rows(after, prefix):
        key = entry["key"]
        if rolled is not None and key.startswith(rolled):
            continue
        cut = key.find(delimiter, len(prefix)) if delimiter else -1
        if cut >= 0:
            common = key[:cut + len(delimiter)]
            rolled = common
            if common <= after:
                continue
        if len(out.entries) + len(out.prefixes) == limit:
            out.truncated = True
            break
        if cut >= 0:
            out.prefixes.append(common)
            out.last = common
        else:
            out.entries.append(entry)
            out.last = key
    return out


def continuation_token(last: str) -> str:
    return base64.urlsafe_b64encode((TOKEN_TAG + last).encode("utf-8")).decode("ascii")


def read_token(token: str) -> str:
    """The key a ListObjectsV2 continuation token continues after."""
    try:
        raw = base64.urlsafe_b64decode(token.encode("ascii")).decode("utf-8")
    except (ValueError, UnicodeError):
        raw = ""
    if not raw.startswith(TOKEN_TAG):
        raise InvalidParameter("The continuation token provided is incorrect", code="InvalidArgument")
    return raw[len(TOKEN_TAG):]


def objects_page(rows: Rows, params: dict[str, str]) -> dict:
    """ListObjects (v1, or v2 when list-type=2) as data for the gateway to render."""
    v2 = params.get("list-type") == "2"
    if params.get("list-type") not in (None, "", "2"):
        raise InvalidParameter("Invalid list-type specified", code="InvalidArgument")
    prefix = params.get("prefix") or ""
    delimiter = params.get("delimiter") or ""
    limit = max_keys(params.get("max-keys"))
    enc = encoding_type(params.get("encoding-type"))
    out: dict = {"v2": v2, "prefix": prefix, "delimiter": delimiter, "max_keys": limit, "encoding_type": enc}
    if v2:
        token = params.get("continuation-token")
        start_after = params.get("start-after") or ""
        after = read_token(token) if token is not None else start_after
        out.update(continuation_token=token, start_after=start_after or None,
                   fetch_owner=(params.get("fetch-owner") or "").lower() == "true")
    else:
        after = params.get("marker") or ""
        out["marker"] = after
    result = page(rows, prefix=prefix, delimiter=delimiter, after=after, limit=limit)
    out.update(objects=result.entries, prefixes=result.prefixes, truncated=result.truncated)
    if result.truncated and result.last is not None:
        if v2:
            out["next_token"] = continuation_token(result.last)
        elif delimiter:
            out["next_marker"] = result.last  # S3 gives NextMarker only with a delimiter
    return out


def versions_page(rows: Rows, params: dict[str, str]) -> dict:
    """ListObjectVersions of a bucket whose engine keeps no versions: every object is its one
    `null` version. key-marker is the key to list after (a `null` version-id-marker adds
    nothing: each key has one version)."""
    prefix = params.get("prefix") or ""
    delimiter = params.get("delimiter") or ""
    marker = params.get("key-marker") or ""
    version_marker = params.get("version-id-marker")
    if version_marker and not marker:
        raise InvalidParameter("A version-id marker cannot be specified without a key marker.",
                               code="InvalidArgument")
    if version_marker and version_marker != "null":
        raise InvalidParameter("Invalid version id specified", code="InvalidArgument")
    enc = encoding_type(params.get("encoding-type"))
    limit = max_keys(params.get("max-keys"))
    result = page(rows, prefix=prefix, delimiter=delimiter, after=marker, limit=limit)
    out = {"prefix": prefix, "delimiter": delimiter, "key_marker": marker,
           "version_id_marker": version_marker or "", "max_keys": limit, "truncated": result.truncated,
           "encoding_type": enc, "versions": result.entries, "prefixes": result.prefixes}
    if result.truncated and result.last is not None:
        out["next_key_marker"] = result.last
        out["next_version_id_marker"] = "null" if result.entries and result.entries[-1]["key"] == result.last else ""
    return out
