"""Reading an S3 request: bucket and key from the path, sub-resources and parameters from
the query, the headers that travel to the engine, the body as a verified stream, and the
small XML documents some operations send."""
from __future__ import annotations

from typing import Iterable
from urllib.parse import unquote

from emulator.errors import InvalidParameter
from emulator.sigv4 import Payload, Verified, query_pairs
from emulator.xmldoc import children, parse, text

from .. import sigv4

SUBRESOURCES = {
    "accelerate", "acl", "analytics", "attributes", "cors", "delete", "encryption", "intelligent-tiering",
    "inventory", "legal-hold", "lifecycle", "location", "logging", "metrics", "notification", "object-lock",
    "ownershipControls", "partNumber", "policy", "policyStatus", "publicAccessBlock", "replication",
    "requestPayment", "restore", "retention", "select", "tagging", "torrent", "uploadId", "uploads", "versioning",
    "versions", "website",
}
LIST_PARAMS = ("list-type", "prefix", "delimiter", "marker", "max-keys", "encoding-type", "continuation-token",
               "start-after", "fetch-owner")
LIST_UPLOADS_PARAMS = ("prefix", "delimiter", "key-marker", "upload-id-marker", "max-uploads", "encoding-type")
LIST_PARTS_PARAMS = ("max-parts", "part-number-marker")
# request headers that describe or condition the object, forwarded to the engine
FORWARD_HEADERS = ("content-type", "content-md5", "cache-control", "content-disposition", "content-language",
                   "expires", "range", "if-match", "if-none-match", "if-modified-since", "if-unmodified-since",
                   "x-amz-metadata-directive", "x-amz-copy-source-if-match", "x-amz-copy-source-if-none-match",
                   "x-amz-copy-source-if-modified-since", "x-amz-copy-source-if-unmodified-since")
MAX_XML_BODY = 4 * 1024 * 1024      # CompleteMultipartUpload / DeleteObjects / ACL documents
MAX_POLICY = 20 * 1024              # S3's own limit for a bucket policy
MAX_OBJECT = 5 * 1024 ** 4
MAX_PART_NUMBER = 10000
EMPTY_BODY = 1024 * 1024            # what operations that take no body accept (and verify) all the same


class S3Request:
    def __init__(self, environ: dict):
        self.environ = environ
        self.method = environ.get("REQUEST_METHOD", "GET").upper()
        parts = sigv4.raw_path(environ).lstrip("/").split("/", 1)
        self.bucket = unquote(parts[0]) if parts[0] else None
        self.key = unquote(parts[1]) if len(parts) > 1 and parts[1] != "" else None
        self.query = query_pairs(environ.get("QUERY_STRING", ""))
        self.q: dict[str, str] = {}
        for k, v in self.query:
            self.q.setdefault(k, v)
        self.sub = {k for k in self.q if k in SUBRESOURCES}
        self.account = None
        self.auth: Verified | None = None

    @property
    def resource(self) -> str:
        return "/" + (self.bucket or "") + ("/" + self.key if self.key else "")

    def header(self, name: str, default: str | None = None) -> str | None:
        name = name.lower()
        if name == "content-type":
            return self.environ.get("CONTENT_TYPE") or default
        if name == "content-length":
            return self.environ.get("CONTENT_LENGTH") or default
        return self.environ.get("HTTP_" + name.upper().replace("-", "_"), default)

    def forward_headers(self) -> dict[str, str]:
        """The object's attributes and conditions, for the engine (lowercase names)."""
        out = {}
        for name in FORWARD_HEADERS:
            v = self.header(name)
            if v:
                out[name] = v
        enc = self.header("content-encoding")
        if enc:
            rest = ",".join(p.strip() for p in enc.split(",") if p.strip() and p.strip().lower() != "aws-chunked")
            if rest:
                out["content-encoding"] = rest
        for k, v in self.environ.items():
            if k.startswith("HTTP_X_AMZ_META_"):
                out["x-amz-meta-" + k[len("HTTP_X_AMZ_META_"):].replace("_", "-").lower()] = v
        return out

    def pick(self, names: Iterable[str]) -> list[tuple[str, str]]:
        return [(k, v) for k, v in self.query if k in names]

    def response_params(self) -> list[tuple[str, str]]:
        return [(k, v) for k, v in self.query if k.startswith("response-") or k == "partNumber"]

    # -- the body --------------------------------------------------------------------------------
    def body(self) -> Payload:
        return sigv4.RequestBody(self.environ, self.auth)

    def read_body(self, limit: int) -> bytes:
        return self.body().read_all(limit)

    def object_body(self) -> Payload:
        """An object's (or a part's) body: it must say how long it is."""
        body = self.body()
        if body.length is None:
            raise InvalidParameter("You must provide the Content-Length HTTP header.", code="MissingContentLength")
        if body.length > MAX_OBJECT:
            raise InvalidParameter("Your proposed upload exceeds the maximum allowed object size.",
                                   code="EntityTooLarge")
        return body

    # -- parameters --------------------------------------------------------------------------------
    def part_number(self) -> int:
        try:
            n = int(self.q.get("partNumber", ""))
        except ValueError:
            n = 0
        if not 1 <= n <= MAX_PART_NUMBER:
            raise InvalidParameter("Part number must be an integer between 1 and 10000, inclusive",
                                   code="InvalidArgument")
        return n

    def copy_source(self) -> tuple[str, str]:
        """(bucket, key) of x-amz-copy-source: URL-encoded 'bucket/key', maybe '?versionId=' after it."""
        source, _, version = (self.header("x-amz-copy-source") or "").partition("?")
        if version:
            raise InvalidParameter("copying a specific object version is not supported", code="NotImplemented")
        src_bucket, _, src_key = unquote(source).lstrip("/").partition("/")
        if not src_bucket or not src_key:
            raise InvalidParameter("x-amz-copy-source must be bucket/key", code="InvalidArgument")
        return src_bucket, src_key


def delete_request(data: bytes) -> tuple[list[str], bool]:
    """DeleteObjects' <Delete>: (keys, quiet)."""
    root = parse(data, "Delete")
    keys = [text(o, "Key") for o in children(root, "Object")]
    return keys, (text(root, "Quiet") or "").lower() == "true"


def completion_parts(data: bytes) -> list[tuple[int, str]]:
    """CompleteMultipartUpload's parts: [(number, etag)] in the order given."""
    parts = []
    for p in children(parse(data, "CompleteMultipartUpload"), "Part"):
        try:
            parts.append((int(text(p, "PartNumber") or ""), (text(p, "ETag") or "").strip()))
        except ValueError:
            raise InvalidParameter("each Part needs a PartNumber", code="MalformedXML") from None
    return parts


def bucket_configuration(data: bytes) -> None:
    """CreateBucketConfiguration, optional: checked to be XML; the location it names is ignored
    (a bucket is in the cloud's one region)."""
    if data.strip():
        parse(data, "CreateBucketConfiguration")
