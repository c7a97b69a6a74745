"""Every call the cloud makes to the S3 engine, one method per operation, and `Reply`, the
engine's answer as a front end may relay it.

No authorization, quota or bookkeeping here (that is the facade's): this module shapes
requests the way the engine wants them (which client headers an operation forwards, the
XML bodies it builds) and cleans what comes back of what is only the engine's business.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Callable, Iterable, Iterator

from .. import xmldoc
from ..errors import EngineError, InvalidParameter, NotFound
from ..sigv4 import uri_encode
from . import keynames
from .client import BackendClient, BackendResponse

S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/"
# conditions are the cloud's to decide (conditions.py): only Range reaches the engine on reads
CONDITIONAL_GET = ("range",)
# nor on writes: the engine must not apply them its own way (Ceph 16.2 overwrote under If-None-Match: *)
_WRITE_CONDITIONS = ("if-match", "if-none-match", "if-modified-since", "if-unmodified-since",
                     "x-amz-copy-source-if-match", "x-amz-copy-source-if-none-match",
                     "x-amz-copy-source-if-modified-since", "x-amz-copy-source-if-unmodified-since")
# engine headers a client must not see: hop-by-hop, the engine's own ids, and request headers
# the stand-in stores and echoes back as if they were metadata
_PRIVATE = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "server", "date",
            "x-amz-request-id", "x-amz-id-2", "proxy-authenticate", "x-amz-content-sha256", "x-amz-date",
            "x-amz-sdk-checksum-algorithm", "x-amz-decoded-content-length", "x-amz-trailer"}


def public_headers(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    # user metadata names in lower case, as S3 sends them (the stand-in capitalizes them, and
    # clients take the names as they come for the metadata's keys)
    return [(k.lower() if k.lower().startswith("x-amz-meta-") else k, v) for k, v in headers
            if k.lower() not in _PRIVATE and not k.lower().startswith(("access-control-", "x-amz-checksum-"))]


class Reply:
    """The engine's answer: status, the headers a client may see, and the body (already
    read, or streamed from the engine with iter(); close() drops an unread stream)."""

    def __init__(self, status: int, headers: Iterable[tuple[str, str]] = (), body: bytes = b"", *,
                 stream: BackendResponse | None = None):
        self.status = status
        self.headers = public_headers(headers)
        self._body = body
        self._stream = stream

    @classmethod
    def streamed(cls, resp: BackendResponse) -> "Reply":
        return cls(resp.status, resp.headers, stream=resp)

    @classmethod
    def read(cls, resp: BackendResponse) -> "Reply":
        """Read whole (small answers); frees the engine connection."""
        return cls(resp.status, resp.headers, resp.read())

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def header(self, name: str, default: str | None = None) -> str | None:
        name = name.lower()
        return next((v for k, v in self.headers if k.lower() == name), default)

    def add_header(self, name: str, value: str) -> None:
        self.headers.append((name, value))

    def body(self) -> bytes:
        if self._stream is not None:
            self._body, self._stream = self._stream.read(), None
        return self._body

    def iter(self) -> Iterator[bytes]:
        if self._stream is None:
            return iter((self._body,) if self._body else ())
        return iter(self._stream.iter())

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()

    def error(self) -> tuple[str, str]:
        """(code, message) of the engine's S3 error document."""
        data = self.body()
        try:
            root = xmldoc.parse(data, "error")
            return xmldoc.text(root, "Code") or str(self.status), xmldoc.text(root, "Message") or ""
        except InvalidParameter:
            return str(self.status), data[:200].decode("utf-8", "replace")

    def raise_for_status(self, what: str) -> "Reply":
        if not self.ok:
            code, msg = self.error()
            raise EngineError(f"{what}: the storage engine answered {self.status} {code} {msg}".rstrip())
        return self


def result_etag(reply: Reply, root: str) -> str | None:
    """The ETag inside a result document the engine answered (CopyObjectResult,
    CompleteMultipartUploadResult); None when it has none."""
    try:
        return (xmldoc.text(xmldoc.parse(reply.body(), root), "ETag") or "").strip('"') or None
    except InvalidParameter:
        return None


def _only(headers: dict[str, str] | None, keep=None, drop=()) -> dict[str, str]:
    return {k: v for k, v in (headers or {}).items() if (keep is None or k in keep) and k not in drop}


class Engine:
    """The S3 engine's operations; `client()` gives the running engine's client or raises
    BackendUnavailable. `keys_are_paths()` says whether the engine stores keys as file paths:
    then every key goes to it under its keynames.py name, and comes back decoded."""

    def __init__(self, client: Callable[[], BackendClient], keys_are_paths: Callable[[], bool] = lambda: False):
        self.client = client
        self.keys_are_paths = keys_are_paths

    def name_of(self, key: str) -> str:
        """The engine's name for `key`."""
        return keynames.encode(key) if self.keys_are_paths() else key

    def key_of(self, name: str) -> str:
        """The key the engine's `name` stores; ValueError for a name no key has."""
        return keynames.decode(name) if self.keys_are_paths() else name

    def _keys_back(self, reply: Reply, key: str | None = None) -> Reply:
        """A result document the engine rendered (DeleteResult, Initiate/Complete results)
        with the keys in it as the client named them, not as the engine stores them."""
        if not self.keys_are_paths() or not reply.ok:
            return reply
        try:
            root = xmldoc.parse(reply.body(), "result")
        except InvalidParameter:
            return reply
        for elem in root.iter():
            tag = xmldoc.local(elem.tag)
            if tag == "Key" and elem.text:
                try:
                    elem.text = self.key_of(elem.text)
                except ValueError:
                    pass
            elif tag == "Location" and elem.text and key is not None:
                name = uri_encode(self.name_of(key), keep_slash=True)
                if elem.text.endswith(name):
                    elem.text = elem.text[:-len(name)] + uri_encode(key, keep_slash=True)
        ET.register_namespace("", S3_NS)
        body = xmldoc.DECLARATION.encode() + ET.tostring(root, encoding="utf-8", xml_declaration=False)
        return Reply(reply.status, [(k, v) for k, v in reply.headers if k.lower() != "content-length"], body)

    def _call(self, method, bucket, key=None, query=(), headers=None, body=None, length=None) -> Reply:
        return Reply.read(self.client().request(method, bucket, key, query, headers, body, length))

    # -- buckets ---------------------------------------------------------------------------------
    def create_bucket(self, name: str) -> bool:
        """True when created, False when the engine already had it."""
        reply = self._call("PUT", name)
        if reply.status not in (200, 409):
            reply.raise_for_status(f"creating bucket {name}")
        return reply.status == 200

    def delete_bucket(self, name: str) -> Reply:
        return self._call("DELETE", name)

    def bucket_exists(self, name: str) -> bool:
        reply = self._call("HEAD", name)
        if reply.status not in (200, 404):
            raise EngineError(f"asking the storage engine for bucket {name}: HTTP {reply.status}")
        return reply.status == 200

    def list_page(self, name: str, *, max_keys: int = 1000, continuation_token: str | None = None) -> dict:
        """One page of what the engine really holds, as data: objects [{key, size, etag,
        last_modified}] with their keys decoded, and `strays` [{name, size, etag, ...}]: engine
        names that read back as no key (temp files of the stand-in, files of an earlier layout,
        and digest names of long keys, which only the index can name: keynames.py). Listings for clients come from
        the index (listing.py), never from here."""
        q = [("list-type", "2"), ("max-keys", str(max_keys))]
        if continuation_token:
            q.append(("continuation-token", continuation_token))
        reply = self._call("GET", name, None, q)
        if not reply.ok:
            code, msg = reply.error()
            if code == "NoSuchBucket":
                raise NotFound(f"The specified bucket does not exist: {name}", code="NoSuchBucket")
            raise EngineError(f"listing {name} failed: {code} {msg}")
        root = xmldoc.parse(reply.body(), "ListObjectsV2")
        text = xmldoc.text
        objects, strays = [], []
        for c in xmldoc.children(root, "Contents"):
            raw = text(c, "Key")
            entry = {"size": int(text(c, "Size") or 0), "etag": (text(c, "ETag") or "").strip('"'),
                     "last_modified": text(c, "LastModified")}
            try:
                objects.append({"key": self.key_of(raw), **entry})
            except ValueError:
                strays.append({"name": raw, **entry})
        truncated = text(root, "IsTruncated") == "true"
        return {"objects": objects, "strays": strays,
                "next_token": text(root, "NextContinuationToken") if truncated else None}

    def put_versioning(self, name: str, status: str) -> Reply:
        doc = xmldoc.render("VersioningConfiguration", {"Status": status}, namespace=S3_NS, list_item=None)
        return self._call("PUT", name, None, [("versioning", "")], {"content-type": "application/xml"},
                          doc.encode())

    def get_versioning(self, name: str) -> str | None:
        """The engine's own view: 'Enabled', 'Suspended' or None (never versioned)."""
        reply = self._call("GET", name, None, [("versioning", "")])
        reply.raise_for_status(f"reading versioning of {name}")
        return xmldoc.text(xmldoc.parse(reply.body(), "VersioningConfiguration"), "Status") or None

    def versions_page(self, name: str, max_keys: int = 1000) -> list[tuple[str, str]]:
        """(key, version id) of the first versions and delete markers ListObjectVersions gives."""
        reply = self._call("GET", name, None, [("versions", ""), ("max-keys", str(max_keys))])
        reply.raise_for_status(f"listing the versions of {name}")
        root = xmldoc.parse(reply.body(), "ListVersionsResult")
        return [(self.key_of(xmldoc.text(v, "Key")), xmldoc.text(v, "VersionId"))
                for tag in ("Version", "DeleteMarker") for v in xmldoc.children(root, tag)]

    def listing(self, name: str, key: str | None, query: list[tuple[str, str]]) -> Reply:
        """A listing (objects v1/v2, uploads, parts) as the engine renders it, streamed."""
        return Reply.streamed(self.client().request("GET", name, None if key is None else self.name_of(key), query))

    # -- objects ---------------------------------------------------------------------------------
    def get(self, method: str, name: str, key: str, query=(), headers=None) -> Reply:
        """GET (streamed) or HEAD of an object; only range and conditional headers go along."""
        headers = _only(headers, keep=CONDITIONAL_GET)
        resp = self.client().request(method, name, self.name_of(key), list(query), headers)
        if resp.status == 200 and "range" in headers and resp.header("content-range"):
            resp.status = 206  # the stand-in answers a satisfied Range with 200 + Content-Range
        if method == "HEAD":
            resp.read()  # no body: frees the connection; the reply keeps the object's Content-Length
            return Reply(resp.status, resp.headers)
        return Reply.streamed(resp)

    def size(self, name: str, key: str, query=()) -> int | None:
        reply = self._call("HEAD", name, self.name_of(key), list(query))
        return int(reply.header("content-length", "0")) if reply.ok else None

    def etag(self, name: str, key: str) -> str | None:
        reply = self._call("HEAD", name, self.name_of(key))
        if not reply.ok:
            return None
        return (reply.header("etag") or "").strip('"') or None

    def put(self, name: str, key: str, headers, body, length: int) -> Reply:
        return self._call("PUT", name, self.name_of(key), (), _only(headers, drop=_WRITE_CONDITIONS), body, length)

    def copy(self, name: str, key: str, src_bucket: str, src_key: str, headers) -> tuple[Reply, bool]:
        """(reply, copied): the engine may answer 200 with an error inside, as S3 does."""
        headers = _only(headers, drop=("content-md5", *_WRITE_CONDITIONS))
        headers["x-amz-copy-source"] = f"/{uri_encode(src_bucket)}/{uri_encode(self.name_of(src_key), keep_slash=True)}"
        reply = self._call("PUT", name, self.name_of(key), (), headers, b"")
        return reply, reply.status == 200 and b"CopyObjectResult" in reply.body()[:300]

    def delete(self, name: str, key: str, query: list[tuple[str, str]] = ()) -> Reply:
        return self._call("DELETE", name, self.name_of(key), query)

    def delete_name(self, name: str, engine_name: str) -> Reply:
        """DELETE of an engine name that is no key's (a stand-in's empty folder, a stray)."""
        return self._call("DELETE", name, engine_name)

    def delete_many(self, name: str, objects: list[tuple[str, str | None]],
                    quiet: bool) -> tuple[Reply, list[tuple[str, str | None]]]:
        """(reply, the (key, version id) pairs deleted)."""
        doc = xmldoc.render("Delete", {"Quiet": True if quiet else None,
                                       "Object": [{"Key": self.name_of(k), "VersionId": v} for k, v in objects]},
                            list_item=None)
        reply = self._call("POST", name, None, [("delete", "")], {"content-type": "application/xml"}, doc.encode())
        if reply.status != 200:
            return reply, []
        reply = self._keys_back(reply)
        failed: set = set()
        try:
            result = xmldoc.parse(reply.body(), "DeleteResult")
            failed = {xmldoc.text(e, "Key") for e in xmldoc.children(result, "Error")}
        except InvalidParameter:
            pass
        return reply, [(k, v) for k, v in objects if k not in failed]

    # -- multipart -------------------------------------------------------------------------------
    def create_upload(self, name: str, key: str, headers) -> tuple[Reply, str | None]:
        reply = self._call("POST", name, self.name_of(key), [("uploads", "")], _only(headers, drop=("content-md5",)),
                           b"")
        if reply.status != 200:
            return reply, None
        reply = self._keys_back(reply, key)
        upload_id = xmldoc.text(xmldoc.parse(reply.body(), "InitiateMultipartUploadResult"), "UploadId")
        if not upload_id:
            raise EngineError("the storage engine returned no UploadId")
        return reply, upload_id

    def upload_part(self, name: str, key: str, upload_id: str, number: int, headers, body, length: int) -> Reply:
        return self._call("PUT", name, self.name_of(key), [("partNumber", str(number)), ("uploadId", upload_id)],
                          _only(headers, keep=("content-md5",)), body, length)

    def complete(self, name: str, key: str, upload_id: str, parts: list[tuple[int, str]]) -> tuple[Reply, bool]:
        doc = xmldoc.render("CompleteMultipartUpload",
                            {"Part": [{"PartNumber": n, "ETag": e} for n, e in parts]}, list_item=None)
        reply = self._call("POST", name, self.name_of(key), [("uploadId", upload_id)],
                           {"content-type": "application/xml"}, doc.encode())
        completed = reply.status == 200 and b"CompleteMultipartUploadResult" in reply.body()[:400]
        if completed and not result_etag(reply, "CompleteMultipartUploadResult"):
            reply = self._with_etag(reply, self.etag(name, key))   # Ceph 16.2 answers an empty ETag
        return (self._keys_back(reply, key) if completed else reply), completed

    @staticmethod
    def _with_etag(reply: Reply, etag: str | None) -> Reply:
        """A result document with its ETag element set to the object's (quoted, as S3 has it)."""
        if not etag:
            return reply
        root = xmldoc.parse(reply.body(), "result")
        elem = next((e for e in root.iter() if xmldoc.local(e.tag) == "ETag"), None)
        if elem is None:
            elem = ET.SubElement(root, root.tag.replace(xmldoc.local(root.tag), "ETag"))
        elem.text = f'"{etag}"'
        ET.register_namespace("", S3_NS)
        body = xmldoc.DECLARATION.encode() + ET.tostring(root, encoding="utf-8", xml_declaration=False)
        return Reply(reply.status, [(k, v) for k, v in reply.headers if k.lower() != "content-length"], body)

    def abort(self, name: str, key: str, upload_id: str) -> Reply:
        return self._call("DELETE", name, self.name_of(key), [("uploadId", upload_id)])

    def upload_exists(self, name: str, key: str, upload_id: str) -> bool:
        """Whether the engine still has the upload (ListParts: NoSuchUpload once completed)."""
        reply = self._call("GET", name, self.name_of(key), [("uploadId", upload_id), ("max-parts", "1")])
        if reply.status == 200:
            return True
        if reply.status == 404:
            return False
        raise EngineError(f"asking the storage engine for upload {upload_id}: HTTP {reply.status}")
