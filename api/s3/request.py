"""Reading an S3 request: bucket and key from the Host (virtual-hosted style) or the path
(path style), sub-resources and parameters from the query, the headers that travel to the
engine, the body as a verified stream, and the small XML documents some operations send."""
from __future__ import annotations

import re
from typing import Iterable
from urllib.parse import unquote

from emulator.errors import InvalidParameter
from emulator.sigv4 import Payload, Verified, query_pairs
from emulator.storage import ALL_USERS, AUTHENTICATED_USERS, CANNED, ObjectAttrs, canned_acl
from emulator.storage.policy import ACL_PERMISSIONS, explicit_acl
from emulator.storage.tagging import from_header as tags_from_header
from emulator.xmldoc import children, local, parse, text

from .. import sigv4
from ..routing import virtual_host_bucket

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
LIST_VERSIONS_PARAMS = ("prefix", "delimiter", "key-marker", "version-id-marker", "max-keys", "encoding-type")
GRANT_HEADERS = ("x-amz-grant-read", "x-amz-grant-write", "x-amz-grant-read-acp", "x-amz-grant-write-acp",
                 "x-amz-grant-full-control")
# request headers that describe or condition the object, forwarded to the engine
FORWARD_HEADERS = ("content-type", "content-md5", "cache-control", "content-disposition", "content-language",
                   "expires", "range", "if-match", "if-none-match", "if-modified-since", "if-unmodified-since",
                   "x-amz-metadata-directive", "x-amz-copy-source-if-match", "x-amz-copy-source-if-none-match",
                   "x-amz-copy-source-if-modified-since", "x-amz-copy-source-if-unmodified-since")
MAX_METADATA = 2048                 # S3's bound on user metadata: names (after x-amz-meta-) and values, UTF-8
OBJECT_ATTRIBUTES = ("ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize")
MAX_XML_BODY = 4 * 1024 * 1024      # CompleteMultipartUpload / DeleteObjects / ACL documents
MAX_POLICY = 20 * 1024              # S3's own limit for a bucket policy
MAX_OBJECT = 5 * 1024 ** 4
MAX_PART_NUMBER = 10000
EMPTY_BODY = 1024 * 1024            # what operations that take no body accept (and verify) all the same


class S3Request:
    def __init__(self, environ: dict, domains: Iterable[str] = ()):
        self.environ = environ
        self.method = environ.get("REQUEST_METHOD", "GET").upper()
        path = sigv4.raw_path(environ).lstrip("/")
        self.virtual_host = virtual_host_bucket(environ, domains)
        if self.virtual_host:
            self.bucket, key = self.virtual_host, path
        else:
            parts = path.split("/", 1)
            self.bucket = unquote(parts[0]) if parts[0] else None
            key = parts[1] if len(parts) > 1 else ""
        self.key = unquote(key) if key != "" else None
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
        meta = 0
        for k, v in self.environ.items():
            if k.startswith("HTTP_X_AMZ_META_"):
                name = k[len("HTTP_X_AMZ_META_"):].replace("_", "-").lower()
                out["x-amz-meta-" + name] = v
                meta += len(name.encode()) + len(v.encode("latin-1", "replace"))
        if meta > MAX_METADATA:
            raise InvalidParameter(f"Your metadata headers exceed the maximum allowed metadata size "
                                   f"({meta} bytes; at most {MAX_METADATA})", code="MetadataTooLarge")
        return out

    def response_overrides(self) -> list[tuple[str, str]]:
        """response-* parameters: only a signed request may set them (S3's rule)."""
        params = self.response_params()
        if self.account is None and any(k.startswith("response-") for k, _ in params):
            raise InvalidParameter("Request specific response headers cannot be used for anonymous GET requests.",
                                   code="InvalidRequest")
        return params

    def form_upload(self):
        """A browser form upload's (fields with lower-case names, the file, its file name).
        The file must be the last field (S3's rule); it is spooled to disk as it arrives."""
        from werkzeug.formparser import parse_form_data

        if not (self.header("content-type") or "").lower().startswith("multipart/form-data"):
            raise InvalidParameter("POST to a bucket is a browser upload: it needs multipart/form-data",
                                   code="InvalidArgument")
        _, form, files = parse_form_data(self.environ)
        upload = files.get("file")
        if upload is None:
            raise InvalidParameter("Bucket POST must contain a file field.", code="InvalidArgument")
        fields = {k.lower(): v for k, v in form.items()}
        return fields, upload.stream, upload.filename or ""

    def object_attributes(self) -> list[str]:
        """x-amz-object-attributes of GetObjectAttributes: which attributes to answer."""
        wanted = [a.strip() for a in (self.header("x-amz-object-attributes") or "").split(",") if a.strip()]
        if not wanted or any(a not in OBJECT_ATTRIBUTES for a in wanted):
            raise InvalidParameter(f"Invalid attribute name specified: x-amz-object-attributes takes "
                                   f"{', '.join(OBJECT_ATTRIBUTES)}", code="InvalidArgument")
        return wanted

    def pick(self, names: Iterable[str]) -> list[tuple[str, str]]:
        return [(k, v) for k, v in self.query if k in names]

    def params(self, names: Iterable[str]) -> dict[str, str]:
        return dict(self.pick(names))

    @property
    def version_id(self) -> str | None:
        return self.q.get("versionId")

    def canned_acl(self) -> str | None:
        """The ACL the request sets: x-amz-acl (canned), or explicit x-amz-grant-* headers
        (policy.explicit_acl), not both."""
        grants = []
        for h in GRANT_HEADERS:
            value = self.header(h)
            if value:
                permission = h[len("x-amz-grant-"):].upper().replace("-", "_")
                grants += [(g, permission) for g in grantees(value)]
        if grants:
            if self.header("x-amz-acl"):
                raise InvalidParameter("Specifying both Canned ACLs and Header Grants is not allowed",
                                       code="InvalidRequest")
            return explicit_acl(grants)
        return canned_acl(self.header("x-amz-acl"))

    def object_attrs(self) -> ObjectAttrs:
        """What a new object carries: its tags (x-amz-tagging) and canned ACL (x-amz-acl)."""
        return ObjectAttrs(tags_from_header(self.header("x-amz-tagging")), self.canned_acl())

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
        if version and version != "versionId=null":
            raise InvalidParameter("copying a specific object version is not supported", code="NotImplemented")
        src_bucket, _, src_key = unquote(source).lstrip("/").partition("/")
        if not src_bucket or not src_key:
            raise InvalidParameter("x-amz-copy-source must be bucket/key", code="InvalidArgument")
        return src_bucket, src_key


def delete_request(data: bytes) -> tuple[list[tuple[str, str | None]], bool]:
    """DeleteObjects' <Delete>: ([(key, version id or None)], quiet)."""
    root = parse(data, "Delete")
    objects = [(text(o, "Key"), text(o, "VersionId")) for o in children(root, "Object")]
    return objects, (text(root, "Quiet") or "").lower() == "true"


_GRANTEE = re.compile(r'\s*(id|uri|emailAddress)\s*=\s*"?([^",]*)"?\s*')


def grantees(value: str) -> list[str]:
    """The grantees of an x-amz-grant-* header: 'id="123456789012", uri="http://acs..."'."""
    out = []
    for part in value.split(","):
        m = _GRANTEE.fullmatch(part)
        if not m:
            raise InvalidParameter(f"malformed grantee {part.strip()[:60]!r}: use id=\"ACCOUNT\" or uri=\"GROUP\"",
                                   code="InvalidArgument")
        kind, who = m.group(1), m.group(2).strip()
        if kind == "emailAddress":
            raise InvalidParameter("grants by e-mail address are not supported: pocketcloud accounts have no "
                                   "e-mail address; grant to id=\"ACCOUNT-ID\"", code="NotImplemented")
        out.append(who)
    return out


def acl_request(header_acl: str | None, body: bytes, owner_id: str) -> str:
    """The ACL a PutBucketAcl/PutObjectAcl sets: x-amz-acl / x-amz-grant-* (as canned_acl
    reads them, given as `header_acl`), or an AccessControlPolicy: a canned ACL's name when
    its grants are exactly one canned ACL's, else its explicit grants."""
    if header_acl:
        if body.strip():
            raise InvalidParameter("Specify either x-amz-acl or an AccessControlPolicy, not both",
                                   code="UnexpectedContent")
        return header_acl
    if not body.strip():
        raise InvalidParameter("an ACL request needs x-amz-acl or an AccessControlPolicy body",
                               code="MissingSecurityHeader")
    root = parse(body, "AccessControlPolicy")
    grants = set()
    for acl in children(root, "AccessControlList"):
        for g in children(acl, "Grant"):
            grantee = next((c for c in g if local(c.tag) == "Grantee"), None)
            who = (text(grantee, "URI") or text(grantee, "ID") or "").strip() if grantee is not None else ""
            grants.add((who, (text(g, "Permission") or "").strip()))
    for name, extra in CANNED.items():
        if grants == {(owner_id, "FULL_CONTROL"), *extra} and all(u in (ALL_USERS, AUTHENTICATED_USERS)
                                                                    for u, _ in extra):
            return name
    for who, permission in grants:
        if not who or permission not in ACL_PERMISSIONS:
            raise InvalidParameter("each Grant needs a Grantee (ID or URI) and a Permission", code="MalformedACLError")
    return explicit_acl([(w, p) for w, p in grants if (w, p) != (owner_id, "FULL_CONTROL")])


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
