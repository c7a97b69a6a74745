"""S3's listing documents for what the cloud lists itself (the facade's data, from its
index): objects (v1 and v2), object versions of a bucket whose engine keeps none, multipart
uploads and their parts."""
from __future__ import annotations

import base64
import time
from urllib.parse import quote

from emulator.errors import InvalidParameter


def iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(ts))


def _encoder(encoding_type: str | None):
    # every other character %XX-encoded ('+' too): clients decode with unquote_plus (botocore)
    if encoding_type == "url":
        return lambda s: quote(s, safe="/") if s else s
    return lambda s: s


def _etag(o: dict) -> str:
    return f'"{o["etag"]}"'


def objects(page: dict) -> tuple[str, dict]:
    """ListObjects (v1: ListBucketResult with markers) or ListObjectsV2 as (root, body)."""
    enc = _encoder(page["encoding_type"])
    v2 = page["v2"]
    with_owner = not v2 or page["fetch_owner"]
    contents = [{"Key": enc(o["key"]), "LastModified": iso(o["updated_at"]), "ETag": _etag(o), "Size": o["size"],
                 "Owner": _owner(o.get("owner") or page["owner"]) if with_owner else None, "StorageClass": "STANDARD"}
                for o in page["objects"]]
    prefixes = [{"Prefix": enc(p)} for p in page["prefixes"]]
    body: dict = {"Name": page["name"], "Prefix": enc(page["prefix"])}
    if v2:
        body.update({"StartAfter": enc(page["start_after"]), "ContinuationToken": page["continuation_token"],
                     "MaxKeys": page["max_keys"], "KeyCount": len(contents) + len(prefixes),
                     "Delimiter": enc(page["delimiter"]) or None, "IsTruncated": page["truncated"],
                     "NextContinuationToken": page.get("next_token")})
    else:
        body.update({"Marker": enc(page["marker"]), "MaxKeys": page["max_keys"],
                     "Delimiter": enc(page["delimiter"]) or None, "IsTruncated": page["truncated"],
                     "NextMarker": enc(page.get("next_marker"))})
    body.update({"Contents": contents, "CommonPrefixes": prefixes, "EncodingType": page["encoding_type"]})
    return ("ListBucketResult", body)


def _owner(who: dict) -> dict:
    return {"ID": who["id"], "DisplayName": who["name"]}


def versions(page: dict, owner: dict) -> dict:
    """ListVersionsResult: each object as its `null` version, the latest."""
    enc = _encoder(page["encoding_type"])
    return {
        "Name": page["name"], "Prefix": enc(page["prefix"]), "KeyMarker": enc(page["key_marker"]),
        "VersionIdMarker": page["version_id_marker"],
        "NextKeyMarker": enc(page.get("next_key_marker")),
        "NextVersionIdMarker": page.get("next_version_id_marker") if page["truncated"] else None,
        "MaxKeys": page["max_keys"], "Delimiter": enc(page["delimiter"]) or None,
        "IsTruncated": page["truncated"],
        "Version": [{"Key": enc(o["key"]), "VersionId": "null", "IsLatest": True,
                     "LastModified": iso(o["updated_at"]), "ETag": _etag(o), "Size": o["size"],
                     "Owner": _owner(owner), "StorageClass": "STANDARD"} for o in page["versions"]],
        "CommonPrefixes": [{"Prefix": enc(p)} for p in page["prefixes"]],
        "EncodingType": page["encoding_type"],
    }


def uploads(page: dict) -> dict:
    enc = _encoder(page["encoding_type"])
    return {
        "Bucket": page["bucket"], "KeyMarker": enc(page["key_marker"]), "UploadIdMarker": page["upload_id_marker"],
        "NextKeyMarker": enc(page.get("next_key_marker")), "NextUploadIdMarker": page.get("next_upload_id_marker"),
        "Prefix": enc(page["prefix"]), "Delimiter": enc(page["delimiter"]) or None,
        "MaxUploads": page["max_uploads"], "IsTruncated": page["truncated"],
        "Upload": [{"Key": enc(u["key"]), "UploadId": u["upload_id"], "Initiator": _owner(u["initiator"]),
                    "Owner": _owner(page["owner"]), "StorageClass": "STANDARD", "Initiated": iso(u["initiated"])}
                   for u in page["uploads"]],
        "CommonPrefixes": [{"Prefix": enc(p)} for p in page["prefixes"]],
        "EncodingType": page["encoding_type"],
    }


def parts(page: dict) -> dict:
    return {
        "Bucket": page["bucket"], "Key": page["key"], "UploadId": page["upload_id"],
        "Initiator": _owner(page["initiator"]), "Owner": _owner(page["owner"]), "StorageClass": "STANDARD",
        "PartNumberMarker": page["marker"], "NextPartNumberMarker": page.get("next_marker"),
        "MaxParts": page["max_parts"], "IsTruncated": page["truncated"],
        "Part": [{"PartNumber": p["number"], "LastModified": iso(p["modified"]), "ETag": p["etag"],
                  "Size": p["size"]} for p in page["parts"]],
    }


MAX_BUCKETS = 10000  # S3's bound for max-buckets, and the page without it


def bucket_page(max_buckets: str | None, token: str | None) -> tuple[int, str]:
    """ListBuckets paging: (page size, the name after which the page starts). The token is
    the last name of the previous page, opaque to the client as S3's is."""
    limit = MAX_BUCKETS
    if max_buckets is not None:
        if not max_buckets.isdigit() or not 1 <= int(max_buckets) <= MAX_BUCKETS:
            raise InvalidParameter(f"max-buckets must be an integer from 1 to {MAX_BUCKETS}", code="InvalidArgument")
        limit = int(max_buckets)
    if not token:
        return limit, ""
    try:
        return limit, base64.b64decode(token.encode("ascii"), altchars=b"-_", validate=True).decode("utf-8")
    except (ValueError, UnicodeError):
        raise InvalidParameter("The continuation token provided is incorrect", code="InvalidArgument") from None


def bucket_token(last_name: str) -> str:
    return base64.urlsafe_b64encode(last_name.encode()).decode("ascii")
