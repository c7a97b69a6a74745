"""ListObjectVersions on a bucket whose engine keeps no versions: every object is its one
version, `null`, and the latest (S3's answer for an unversioned bucket). Terraform's
force_destroy and many clean-up tools list versions to empty a bucket.

Built from the engine's ListObjectsV2 pages; S3's paging parameters map onto them:
key-marker is the key to list after (a `null` version-id-marker adds nothing: each key has
one version), and a key-marker that is a common prefix skips that whole prefix.
"""
from __future__ import annotations

from ..errors import InvalidParameter

MAX_KEYS = 1000


def _max_keys(value: str | None) -> int:
    if value is None or value == "":
        return MAX_KEYS
    try:
        n = int(value)
    except ValueError:
        raise InvalidParameter("Provided max-keys not an integer or within integer range",
                               code="InvalidArgument") from None
    if n < 0:
        raise InvalidParameter("max-keys must not be negative", code="InvalidArgument")
    return min(n, MAX_KEYS)


def list_null_versions(engine, name: str, params: dict[str, str], extra: list[dict] = ()) -> dict:
    """One page as data: versions [{key, size, etag, last_modified}], prefixes, truncation and
    the next markers. `extra`: objects the engine does not list (folder markers, markers.py)."""
    prefix = params.get("prefix") or ""
    delimiter = params.get("delimiter") or ""
    marker = params.get("key-marker") or ""
    version_marker = params.get("version-id-marker")
    if version_marker and not marker:
        raise InvalidParameter("A version-id marker cannot be specified without a key marker.",
                               code="InvalidArgument")
    if version_marker and version_marker != "null":
        raise InvalidParameter("Invalid version id specified", code="InvalidArgument")
    if params.get("encoding-type") not in (None, "", "url"):
        raise InvalidParameter("Invalid Encoding Method specified in Request", code="InvalidArgument")
    limit = _max_keys(params.get("max-keys"))
    entries: list[tuple[str, str, dict | None]] = []    # (sort key, kind, object) in listing order
    token = None
    start_after = marker if marker > prefix else None
    while len(entries) <= limit:
        page = engine.list_page(name, prefix=prefix, delimiter=delimiter, max_keys=MAX_KEYS,
                                continuation_token=token, start_after=None if token else start_after)
        for o in page["objects"]:
            if o["key"] > marker:
                entries.append((o["key"], "version", o))
        for p in page["prefixes"]:
            if p > marker and not (marker and marker.startswith(p)):
                entries.append((p, "prefix", None))
        token = page.get("next_token")
        if not token:
            break
    for o in extra:
        key = o["key"]
        if not key.startswith(prefix) or key <= marker:
            continue
        cut = key.find(delimiter, len(prefix)) if delimiter else -1
        if cut < 0:
            entries.append((key, "version", o))
        elif (common := key[:cut + len(delimiter)]) not in {e[0] for e in entries if e[1] == "prefix"} \
                and not marker.startswith(common):
            entries.append((common, "prefix", None))
    entries.sort(key=lambda e: e[0].encode("utf-8"))
    page_entries, truncated = entries[:limit], len(entries) > limit
    out = {
        "name": name, "prefix": prefix, "delimiter": delimiter, "key_marker": marker,
        "version_id_marker": version_marker or "", "max_keys": limit, "truncated": truncated,
        "encoding_type": params.get("encoding-type") or None,
        "versions": [e[2] for e in page_entries if e[1] == "version"],
        "prefixes": [e[0] for e in page_entries if e[1] == "prefix"],
    }
    if truncated and page_entries:
        last = page_entries[-1]
        out["next_key_marker"] = last[0]
        out["next_version_id_marker"] = "null" if last[1] == "version" else ""
    return out
