"""A model of S3's documented behaviour, for the differential tests: what AWS answers, written
plainly and independently of the gateway's code (unit tests compare listing.py with it,
integration tests compare the running gateway on each engine with it)."""
from __future__ import annotations

from urllib.parse import unquote_plus


def listing(keys, prefix: str = "", delimiter: str = "", after: str = "") -> list[tuple[str, str]]:
    """Everything ListObjects shows after `after` (marker, StartAfter or where a continuation
    token stands), in order, as ("key"|"prefix", text): keys in UTF-8 byte order under the
    prefix; a key with the delimiter after the prefix rolls into the common prefix ending at
    its first occurrence, listed once, and only if it sorts after `after`."""
    items: list[tuple[str, str]] = []
    for k in sorted(keys, key=lambda s: s.encode("utf-8")):
        if k <= after or not k.startswith(prefix):
            continue
        rest = k[len(prefix):]
        if delimiter and delimiter in rest:
            common = prefix + rest[:rest.index(delimiter) + len(delimiter)]
            if common > after and ("prefix", common) not in items:
                items.append(("prefix", common))
        else:
            items.append(("key", k))
    return items


def boto_page(page: dict) -> list[tuple[str, str]]:
    """A boto3 ListObjects(V2) answer as model items, in listing order."""
    return sorted([("key", o["Key"]) for o in page.get("Contents", [])]
                  + [("prefix", p["Prefix"]) for p in page.get("CommonPrefixes", [])],
                  key=lambda i: i[1].encode("utf-8"))


def url_decoded(text: str) -> str:
    """How a client reads an EncodingType=url value (botocore: unquote_plus)."""
    return unquote_plus(text)
