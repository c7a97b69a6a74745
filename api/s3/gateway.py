"""The S3 gateway: a plain WSGI app.

Each request: verify the SigV4 signature with pocketcloud's keys (or accept it unsigned,
which only a public-read bucket's object GET/HEAD survives) -> check the bucket's owner,
grants and access in `cloud.storage` -> stream it to the engine re-signed with the root
credentials (UNSIGNED-PAYLOAD, the body decoded and verified on the way) -> stream the
answer back. Buckets, policies and ACLs are answered from the cloud's own state; object
data never sits whole in memory.
"""
from __future__ import annotations

import logging
import secrets
import time
from typing import Callable, Iterable
from urllib.parse import unquote
from xml.sax.saxutils import escape

from emulator.billing import s3_request as bill_s3_request
from emulator.errors import CloudError, Forbidden, InvalidParameter, NotFound
from emulator.storage.service import S3_NS, children, parse_xml, validate_key, _xml_text
from emulator.storage.signing import uri_encode

from .. import sigv4
from .errors import S3Error, error_body, status_for

log = logging.getLogger("pocketcloud.s3")

SMALL_BODY = 1024 * 1024            # bodies up to this size are read and verified before the engine sees them
MAX_XML_BODY = 4 * 1024 * 1024      # CompleteMultipartUpload / DeleteObjects / policy documents
MAX_PART_NUMBER = 10000
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
FORWARD_HEADERS = ("content-type", "content-md5", "cache-control", "content-disposition", "content-language",
                   "expires", "range", "if-match", "if-none-match", "if-modified-since", "if-unmodified-since",
                   "x-amz-metadata-directive", "x-amz-copy-source-if-match", "x-amz-copy-source-if-none-match",
                   "x-amz-copy-source-if-modified-since", "x-amz-copy-source-if-unmodified-since")
DROP_RESPONSE_HEADERS = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "server",
                         "date", "x-amz-request-id", "x-amz-id-2", "proxy-authenticate",
                         # request headers the stand-in stores and echoes back as if they were metadata
                         "x-amz-content-sha256", "x-amz-date", "x-amz-sdk-checksum-algorithm",
                         "x-amz-decoded-content-length", "x-amz-trailer"}


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(ts))


class Response:
    def __init__(self, status: int, headers: list[tuple[str, str]] | None = None,
                 body: bytes | Iterable[bytes] = b"", on_close: Callable[[], None] | None = None):
        self.status = status
        self.headers = headers or []
        self.body = body
        self.on_close = on_close

    def __call__(self, environ, start_response, request_id: str):
        reason = _REASONS.get(self.status, "Status")
        headers = [(k, v) for k, v in self.headers]
        headers.append(("x-amz-request-id", request_id))
        if isinstance(self.body, (bytes, bytearray)) and not any(k.lower() == "content-length" for k, _ in headers):
            headers.append(("Content-Length", str(len(self.body)) if environ["REQUEST_METHOD"] != "HEAD" else "0"))
        start_response(f"{self.status} {reason}", headers)
        if environ["REQUEST_METHOD"] == "HEAD":
            if self.on_close:
                self.on_close()
            return []
        if isinstance(self.body, (bytes, bytearray)):
            return [bytes(self.body)]
        return _ClosingIterable(self.body, self.on_close)


class _ClosingIterable:
    def __init__(self, it: Iterable[bytes], on_close):
        self._it = iter(it)
        self._on_close = on_close

    def __iter__(self):
        return self._it

    def close(self):
        close = getattr(self._it, "close", None)
        if close:
            close()
        if self._on_close:
            self._on_close()


_REASONS = {200: "OK", 204: "No Content", 206: "Partial Content", 301: "Moved Permanently", 304: "Not Modified",
            400: "Bad Request", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed", 409: "Conflict",
            411: "Length Required", 412: "Precondition Failed", 416: "Requested Range Not Satisfiable",
            500: "Internal Server Error", 501: "Not Implemented", 502: "Bad Gateway", 503: "Service Unavailable"}


def xml_response(body: str, status: int = 200) -> Response:
    data = ('<?xml version="1.0" encoding="UTF-8"?>\n' + body).encode()
    return Response(status, [("Content-Type", "application/xml")], data)


class S3Request:
    def __init__(self, environ: dict):
        self.environ = environ
        self.method = environ.get("REQUEST_METHOD", "GET").upper()
        raw = sigv4.raw_path(environ)
        self.path = raw
        parts = raw.lstrip("/").split("/", 1)
        self.bucket = unquote(parts[0]) if parts[0] else None
        self.key = unquote(parts[1]) if len(parts) > 1 and parts[1] != "" else None
        self.query = sigv4._query_pairs(environ.get("QUERY_STRING", ""))
        self.q = {}
        for k, v in self.query:
            self.q.setdefault(k, v)
        self.sub = {k for k in self.q if k in SUBRESOURCES}

    def header(self, name: str, default: str | None = None) -> str | None:
        name = name.lower()
        if name == "content-type":
            return self.environ.get("CONTENT_TYPE") or default
        if name == "content-length":
            return self.environ.get("CONTENT_LENGTH") or default
        return self.environ.get("HTTP_" + name.upper().replace("-", "_"), default)

    def forward_headers(self) -> dict[str, str]:
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

    @property
    def resource(self) -> str:
        return "/" + (self.bucket or "") + ("/" + self.key if self.key else "")


def relay_headers(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    out = []
    for k, v in headers:
        lk = k.lower()
        if lk in DROP_RESPONSE_HEADERS or lk.startswith("access-control-") or lk.startswith("x-amz-checksum-"):
            continue
        out.append((k, v))
    return out


def relay(resp, data: bytes | None = None, extra: list[tuple[str, str]] | None = None) -> Response:
    """The engine's answer as the client's (streamed unless `data` was already read)."""
    headers = relay_headers(resp.headers) + (extra or [])
    if data is not None:
        headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
        return Response(resp.status, headers, data)
    return Response(resp.status, headers, resp.iter(), on_close=resp.close)


class S3Gateway:
    def __init__(self, cloud):
        self.cloud = cloud
        self.storage = cloud.storage
        self.accounts = cloud.accounts

    # -- WSGI -------------------------------------------------------------------------------------
    def __call__(self, environ, start_response):
        request_id = secrets.token_hex(8).upper()
        resource = ""
        try:
            req = S3Request(environ)
            resource = req.resource
            account, auth = self.authenticate(environ)
            bill_s3_request(self.cloud, req.method, req.bucket, req.key, req.sub)  # billing hook: count the request
            resp = self.dispatch(req, account, auth)
        except CloudError as exc:
            resp = self.error(exc, resource, request_id, environ)
        except Exception:  # noqa: BLE001
            log.exception("S3 %s %s failed", environ.get("REQUEST_METHOD"), environ.get("PATH_INFO"))
            resp = self.error(S3Error("We encountered an internal error. Please try again.", code="InternalError",
                                      status=500), resource, request_id, environ)
        return resp(environ, start_response, request_id)

    @staticmethod
    def error(exc: Exception, resource: str, request_id: str, environ) -> Response:
        body = error_body(exc, resource, request_id)
        return Response(status_for(exc), [("Content-Type", "application/xml")], body)

    def authenticate(self, environ):
        if not sigv4.is_signed(environ):
            return None, None
        auth = sigv4.verify(environ, self.accounts.secret_for)
        if auth.scope.service != "s3":
            raise InvalidParameter(f"the credential scope names service {auth.scope.service!r}; "
                                   "S3 requests are signed for 's3'", code="AuthorizationHeaderMalformed")
        return auth.account, auth

    # -- routing ------------------------------------------------------------------------------------
    def dispatch(self, req: S3Request, account, auth) -> Response:
        m, sub = req.method, req.sub
        if not req.bucket:
            if m == "GET" and not req.q.get("prefix"):
                return self.list_buckets(account)
            if m == "GET":
                return self.list_buckets(account, req.q.get("prefix"))
            raise S3Error("The specified method is not allowed against this resource.", code="MethodNotAllowed",
                          status=405)
        if req.key is None:
            handler = {
                ("PUT", ""): self.create_bucket, ("PUT", "policy"): self.put_policy, ("PUT", "acl"): self.put_acl,
                ("DELETE", ""): self.delete_bucket, ("DELETE", "policy"): self.delete_policy,
                ("HEAD", ""): self.head_bucket,
                ("GET", ""): self.list_objects, ("GET", "location"): self.get_location,
                ("GET", "policy"): self.get_policy, ("GET", "acl"): self.get_acl,
                ("GET", "uploads"): self.list_uploads, ("GET", "versioning"): self.get_versioning,
                ("POST", "delete"): self.delete_objects,
            }.get((m, _one(sub)))
        else:
            copy = req.header("x-amz-copy-source")
            if m == "PUT" and sub == {"partNumber", "uploadId"}:
                handler = None if copy else self.upload_part
            elif m == "PUT" and not sub:
                handler = self.copy_object if copy else self.put_object
            else:
                handler = {
                    ("GET", ""): self.get_object, ("HEAD", ""): self.get_object,
                    ("GET", "partNumber"): self.get_object, ("HEAD", "partNumber"): self.get_object,
                    ("DELETE", ""): self.delete_object,
                    ("POST", "uploads"): self.create_upload, ("POST", "uploadId"): self.complete_upload,
                    ("DELETE", "uploadId"): self.abort_upload, ("GET", "uploadId"): self.list_parts,
                }.get((m, _one(sub)))
        if handler is None:
            what = ", ".join(sorted(sub)) or m
            raise S3Error(f"pocketcloud's S3 gateway does not implement this operation ({m} {what})",
                          code="NotImplemented", status=501)
        return handler(req, account, auth)

    # -- buckets ---------------------------------------------------------------------------------------
    def list_buckets(self, account, prefix: str | None = None) -> Response:
        if account is None:
            raise Forbidden("Access Denied", code="AccessDenied")
        items = []
        for b in self.storage.list_buckets(account):
            if prefix and not b.name.startswith(prefix):
                continue
            items.append(f"<Bucket><Name>{escape(b.name)}</Name><CreationDate>{_iso(b.created_at)}</CreationDate>"
                         f"<BucketRegion>{self.storage.region}</BucketRegion></Bucket>")
        return xml_response(
            f'<ListAllMyBucketsResult xmlns="{S3_NS}"><Owner><ID>{account.id}</ID>'
            f"<DisplayName>{escape(account.name)}</DisplayName></Owner><Buckets>{''.join(items)}</Buckets>"
            "</ListAllMyBucketsResult>")

    def _need_account(self, account):
        if account is None:
            raise Forbidden("Access Denied", code="AccessDenied")
        return account

    def create_bucket(self, req, account, auth) -> Response:
        self._need_account(account)
        body = sigv4.RequestBody(req.environ, auth).read_all(MAX_XML_BODY)
        if body.strip():
            parse_xml(body, "CreateBucketConfiguration")  # the location constraint is accepted and ignored
        acl = (req.header("x-amz-acl") or "private").lower()
        if acl not in ("private", "public-read"):
            raise S3Error(f"canned ACL {acl!r} is not supported (private or public-read)", code="NotImplemented",
                          status=501)
        self.storage.create_bucket(account, req.bucket, access=acl)
        return Response(200, [("Location", "/" + req.bucket)])

    def delete_bucket(self, req, account, auth) -> Response:
        self.storage.delete_bucket(self._need_account(account), req.bucket)
        return Response(204)

    def head_bucket(self, req, account, auth) -> Response:
        self.storage.authorize(account, req.bucket, "list")
        return Response(200, [("x-amz-bucket-region", self.storage.region)])

    def get_location(self, req, account, auth) -> Response:
        self.storage.authorize(account, req.bucket, "list")
        region = "" if self.storage.region == "us-east-1" else self.storage.region
        return xml_response(f'<LocationConstraint xmlns="{S3_NS}">{region}</LocationConstraint>')

    def get_versioning(self, req, account, auth) -> Response:
        self.storage.authorize(account, req.bucket, "list")
        return xml_response(f'<VersioningConfiguration xmlns="{S3_NS}"/>')

    def get_policy(self, req, account, auth) -> Response:
        bucket = self.storage.authorize(account, req.bucket, "owner")
        doc = self.storage.policy_document(bucket)
        if doc is None:
            raise NotFound("The bucket policy does not exist", code="NoSuchBucketPolicy")
        return Response(200, [("Content-Type", "application/json")], doc.encode())

    def put_policy(self, req, account, auth) -> Response:
        self.storage.authorize(account, req.bucket, "owner")
        body = sigv4.RequestBody(req.environ, auth).read_all(20 * 1024)
        self.storage.apply_policy(account, req.bucket, body.decode("utf-8", "replace"))
        return Response(204)

    def delete_policy(self, req, account, auth) -> Response:
        self.storage.apply_policy(self._need_account(account), req.bucket, None)
        return Response(204)

    def get_acl(self, req, account, auth) -> Response:
        bucket = self.storage.authorize(account, req.bucket, "owner")
        owner = self.accounts.get(bucket.owner)
        grants = [f'<Grant><Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="CanonicalUser">'
                  f"<ID>{owner.id}</ID><DisplayName>{escape(owner.name)}</DisplayName></Grantee>"
                  "<Permission>FULL_CONTROL</Permission></Grant>"]
        if bucket.access == "public-read":
            grants.append('<Grant><Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="Group">'
                          "<URI>http://acs.amazonaws.com/groups/global/AllUsers</URI></Grantee>"
                          "<Permission>READ</Permission></Grant>")
        for acct, level in sorted(bucket.grants.items()):
            for perm in (("READ", "WRITE") if level == "read-write" else ("READ",)):
                grants.append(f'<Grant><Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
                              f'xsi:type="CanonicalUser"><ID>{acct}</ID></Grantee><Permission>{perm}</Permission>'
                              "</Grant>")
        return xml_response(f'<AccessControlPolicy xmlns="{S3_NS}"><Owner><ID>{owner.id}</ID><DisplayName>'
                            f"{escape(owner.name)}</DisplayName></Owner><AccessControlList>{''.join(grants)}"
                            "</AccessControlList></AccessControlPolicy>")

    def put_acl(self, req, account, auth) -> Response:
        self.storage.authorize(account, req.bucket, "owner")
        acl = (req.header("x-amz-acl") or "").lower()
        body = sigv4.RequestBody(req.environ, auth).read_all(MAX_XML_BODY)
        if body.strip() or acl not in ("private", "public-read"):
            raise S3Error("only the canned ACLs private and public-read (x-amz-acl header) are supported",
                          code="NotImplemented", status=501)
        self.storage.set_access(account, req.bucket, acl)
        return Response(200)

    # -- listings --------------------------------------------------------------------------------------
    def list_objects(self, req, account, auth) -> Response:
        self.storage.authorize(account, req.bucket, "list")
        resp = self.storage.client.request("GET", req.bucket, None, req.pick(LIST_PARAMS))
        return relay(resp)

    def list_uploads(self, req, account, auth) -> Response:
        self.storage.authorize(account, req.bucket, "list")
        q = [("uploads", "")] + req.pick(LIST_UPLOADS_PARAMS)
        return relay(self.storage.client.request("GET", req.bucket, None, q))

    def list_parts(self, req, account, auth) -> Response:
        self.storage.authorize(account, req.bucket, "list")
        upload = self.storage.get_upload(req.q["uploadId"], req.bucket, req.key)
        q = [("uploadId", upload.upload_id)] + req.pick(LIST_PARTS_PARAMS)
        return relay(self.storage.client.request("GET", req.bucket, req.key, q))

    # -- objects ---------------------------------------------------------------------------------------
    def get_object(self, req, account, auth) -> Response:
        self.storage.authorize(account, req.bucket, "read-object")
        validate_key(req.key)
        q = [(k, v) for k, v in req.query if k.startswith("response-") or k == "partNumber"]
        headers = {k: v for k, v in req.forward_headers().items()
                   if k in ("range", "if-match", "if-none-match", "if-modified-since", "if-unmodified-since")}
        resp = self.storage.client.request(req.method, req.bucket, req.key, q, headers)
        if resp.status == 200 and "range" in headers and resp.header("content-range"):
            resp.status = 206  # the stand-in answers a satisfied Range with 200 + Content-Range
        if req.method == "HEAD":
            resp.read()  # HEAD has no body; this frees the connection
            return Response(resp.status, relay_headers(resp.headers))  # keeps the object's Content-Length
        return relay(resp)

    def _body(self, req, auth):
        body = sigv4.RequestBody(req.environ, auth)
        if body.length is None:
            raise S3Error("You must provide the Content-Length HTTP header.", code="MissingContentLength", status=411)
        if body.length > 5 * 1024 ** 4:
            raise S3Error("Your proposed upload exceeds the maximum allowed object size.", code="EntityTooLarge",
                          status=400)
        return body

    @staticmethod
    def _payload(body: sigv4.RequestBody):
        """Small bodies are read and verified before the engine is contacted; large ones stream with the
        last piece held back until the signature/checksums are verified."""
        if body.length <= SMALL_BODY:
            return body.read_all(SMALL_BODY)
        return iter(body)

    def put_object(self, req, account, auth) -> Response:
        bucket = self.storage.authorize(account, req.bucket, "write")
        validate_key(req.key)
        body = self._body(req, auth)
        with self.storage.reserve(bucket, body.length, replacing=req.key):
            resp = self.storage.client.request("PUT", req.bucket, req.key, (), req.forward_headers(),
                                               self._payload(body), body.length)
            data = resp.read()
            if resp.status == 200:
                self.storage.record_object(req.bucket, req.key, body.length)
        return relay(resp, data, [body.checksum] if body.checksum and resp.status == 200 else None)

    def delete_object(self, req, account, auth) -> Response:
        self.storage.authorize(account, req.bucket, "write")
        validate_key(req.key)
        resp = self.storage.client.request("DELETE", req.bucket, req.key)
        data = resp.read()
        if resp.status in (200, 204, 404):
            self.storage.forget_objects(req.bucket, [req.key])
        if resp.status == 404 and b"NoSuchKey" in data:
            return Response(204)  # S3 answers 204 for a key that is not there
        return relay(resp, data)

    def delete_objects(self, req, account, auth) -> Response:
        self.storage.authorize(account, req.bucket, "write")
        body = sigv4.RequestBody(req.environ, auth).read_all(MAX_XML_BODY)
        root = parse_xml(body, "Delete")
        keys = [_xml_text(o, "Key") for o in children(root, "Object")]
        if not keys or len(keys) > 1000 or any(not k for k in keys):
            raise InvalidParameter("Delete needs 1 to 1000 Object elements with a Key", code="MalformedXML")
        quiet = (_xml_text(root, "Quiet") or "").lower() == "true"
        xml = "<Delete>" + ("<Quiet>true</Quiet>" if quiet else "") + "".join(
            f"<Object><Key>{escape(k)}</Key></Object>" for k in keys) + "</Delete>"
        resp = self.storage.client.request("POST", req.bucket, None, [("delete", "")],
                                           {"content-type": "application/xml"}, xml.encode())
        data = resp.read()
        if resp.status == 200:
            failed = set()
            try:
                result = parse_xml(data, "DeleteResult")
                failed = {_xml_text(e, "Key") for e in children(result, "Error")}
            except InvalidParameter:
                pass
            self.storage.forget_objects(req.bucket, [k for k in keys if k not in failed])
        return relay(resp, data)

    def copy_object(self, req, account, auth) -> Response:
        dest = self.storage.authorize(account, req.bucket, "write")
        validate_key(req.key)
        source = unquote(req.header("x-amz-copy-source", ""))
        source, _, version = source.partition("?")
        if version:
            raise S3Error("copying a specific object version is not supported", code="NotImplemented", status=501)
        src_bucket, _, src_key = source.lstrip("/").partition("/")
        if not src_bucket or not src_key:
            raise InvalidParameter("x-amz-copy-source must be bucket/key", code="InvalidArgument")
        self.storage.authorize(account, src_bucket, "read-object")
        size = self.storage.object_size(src_bucket, src_key)
        if size is None:
            status, hdrs, _ = self.storage.client.simple("HEAD", src_bucket, src_key)
            if status == 404:
                raise NotFound("The specified key does not exist.", code="NoSuchKey")
            size = int(hdrs.get("content-length", "0"))
        headers = req.forward_headers()
        headers.pop("content-md5", None)
        headers["x-amz-copy-source"] = f"/{uri_encode(src_bucket)}/{uri_encode(src_key, keep_slash=True)}"
        sigv4.RequestBody(req.environ, auth).read_all(SMALL_BODY)  # normally empty; verified anyway
        with self.storage.reserve(dest, size, replacing=req.key):
            resp = self.storage.client.request("PUT", req.bucket, req.key, (), headers, b"")
            data = resp.read()
            if resp.status == 200 and b"CopyObjectResult" in data[:300]:
                self.storage.record_object(req.bucket, req.key, size)
        return relay(resp, data)

    # -- multipart ---------------------------------------------------------------------------------------
    def create_upload(self, req, account, auth) -> Response:
        self.storage.authorize(account, req.bucket, "write")
        validate_key(req.key)
        sigv4.RequestBody(req.environ, auth).read_all(SMALL_BODY)
        headers = {k: v for k, v in req.forward_headers().items() if k != "content-md5"}
        resp = self.storage.client.request("POST", req.bucket, req.key, [("uploads", "")], headers, b"")
        data = resp.read()
        if resp.status == 200:
            upload_id = _xml_text(parse_xml(data, "InitiateMultipartUploadResult"), "UploadId")
            if not upload_id:
                raise S3Error("the storage engine returned no UploadId", code="InternalError", status=502)
            self.storage.record_upload(upload_id, req.bucket, req.key, account.id)
        return relay(resp, data)

    def _part_number(self, req) -> int:
        try:
            n = int(req.q.get("partNumber", ""))
        except ValueError:
            n = 0
        if not 1 <= n <= MAX_PART_NUMBER:
            raise InvalidParameter("Part number must be an integer between 1 and 10000, inclusive",
                                   code="InvalidArgument")
        return n

    def upload_part(self, req, account, auth) -> Response:
        bucket = self.storage.authorize(account, req.bucket, "write")
        number = self._part_number(req)
        upload = self.storage.get_upload(req.q["uploadId"], req.bucket, req.key)
        body = self._body(req, auth)
        previous = self.storage.part_size(upload.upload_id, number)
        headers = {k: v for k, v in req.forward_headers().items() if k == "content-md5"}
        with self.storage.reserve(bucket, max(0, body.length - previous)):
            resp = self.storage.client.request("PUT", req.bucket, req.key,
                                               [("partNumber", str(number)), ("uploadId", upload.upload_id)],
                                               headers, self._payload(body), body.length)
            data = resp.read()
            if resp.status == 200:
                self.storage.record_part(upload.upload_id, number, body.length, resp.header("etag", "") or "")
        return relay(resp, data, [body.checksum] if body.checksum and resp.status == 200 else None)

    def complete_upload(self, req, account, auth) -> Response:
        bucket = self.storage.authorize(account, req.bucket, "write")
        upload = self.storage.get_upload(req.q["uploadId"], req.bucket, req.key)
        root = parse_xml(sigv4.RequestBody(req.environ, auth).read_all(MAX_XML_BODY), "CompleteMultipartUpload")
        parts = []
        for p in children(root, "Part"):
            try:
                parts.append((int(_xml_text(p, "PartNumber") or ""), (_xml_text(p, "ETag") or "").strip()))
            except ValueError:
                raise InvalidParameter("each Part needs a PartNumber", code="MalformedXML") from None
        if not parts:
            raise InvalidParameter("You must specify at least one part", code="MalformedXML")
        if [n for n, _ in parts] != sorted({n for n, _ in parts}):
            raise InvalidParameter("The list of parts was not in ascending order.", code="InvalidPartOrder")
        total = self.storage.completion_size(upload, parts)
        try:
            reservation = self.storage.reserve(bucket, total, replacing=req.key, upload_id=upload.upload_id)
            reservation.__enter__()
        except CloudError:
            # refused: abort so that neither the object nor its parts remain
            self.storage.client.simple("DELETE", req.bucket, req.key, [("uploadId", upload.upload_id)])
            self.storage.forget_upload(upload.upload_id)
            raise
        try:
            xml = "<CompleteMultipartUpload>" + "".join(
                f"<Part><PartNumber>{n}</PartNumber><ETag>{escape(e)}</ETag></Part>" for n, e in parts
            ) + "</CompleteMultipartUpload>"
            resp = self.storage.client.request("POST", req.bucket, req.key, [("uploadId", upload.upload_id)],
                                               {"content-type": "application/xml"}, xml.encode())
            data = resp.read()
            if resp.status == 200 and b"CompleteMultipartUploadResult" in data[:400]:
                self.storage.record_object(req.bucket, req.key, total)
                self.storage.forget_upload(upload.upload_id)
        finally:
            reservation.__exit__(None, None, None)
        return relay(resp, data)

    def abort_upload(self, req, account, auth) -> Response:
        self.storage.authorize(account, req.bucket, "write")
        upload = self.storage.get_upload(req.q["uploadId"], req.bucket, req.key)
        resp = self.storage.client.request("DELETE", req.bucket, req.key, [("uploadId", upload.upload_id)])
        data = resp.read()
        if resp.status in (200, 204, 404):
            self.storage.forget_upload(upload.upload_id)
        return relay(resp, data)


def _one(sub: set[str]) -> str | None:
    if not sub:
        return ""
    if len(sub) == 1:
        return next(iter(sub))
    return None


def create_s3_app(cloud) -> S3Gateway:
    """The S3 gateway as a WSGI callable; needs cloud.storage, cloud.accounts."""
    return S3Gateway(cloud)
