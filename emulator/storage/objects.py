"""Object operations of the `Storage` facade (multipart ones are multipart.py's).

Each method authorizes the caller, holds quota for what it writes, calls the engine once
(engine.py) and updates the size index (index.py) when the engine says it worked; the
engine's answer comes back as a `Reply` to relay. Bodies are iterables of bytes, never
whole objects; request documents the caller still has to read (XML of DeleteObjects,
CompleteMultipartUpload) are passed as callables, read only once the caller is known to
be allowed. An object's tags and canned ACL (settings.py) are written with its index row.

A mixin of Storage, which provides `authorize`, `buckets`, `settings`, `engine`, `index`,
`quotas` and `check_version`.
"""
from __future__ import annotations

import contextlib
import logging
import time
from typing import TYPE_CHECKING, Callable, Iterable, Union

from ..errors import EngineError, Forbidden, InvalidParameter, NotFound
from . import conditions, lifecycle, listing, policy, post_policy, ranges
from .buckets import Bucket, validate_key
from .doubt import Doubt
from .engine import Reply, result_etag
from .settings import ObjectAttrs

if TYPE_CHECKING:
    from ..accounts import Account
    from .doubt import KeysInDoubt
    from .engine import Engine
    from .index import ObjectIndex
    from .quotas import Quotas

log = logging.getLogger("pocketcloud.storage")

GATHER = 1024 * 1024        # bodies up to this size are read (and so verified) before the engine sees them
MAX_DELETE = 1000
POST_HEADERS = ("content-type", "cache-control", "content-disposition", "content-encoding", "expires")
Body = Union[bytes, Iterable[bytes]]


def gathered(body, length: int):
    """Small bodies whole, so that one failing verification never reaches the engine; larger
    ones stream (a failure then cuts the upload short and the engine discards it)."""
    if isinstance(body, (bytes, bytearray)) or length > GATHER:
        return body
    return b"".join(body)


class ObjectOperations:
    engine: "Engine"
    index: "ObjectIndex"
    in_doubt: "KeysInDoubt"
    quotas: "Quotas"
    authorize: Callable[..., Bucket]

    # -- listings ------------------------------------------------------------------------------
    def list_objects(self, account: "Account | None", name: str, *, prefix: str = "", delimiter: str = "",
                     max_keys: int = 1000, continuation_token: str | None = None,
                     start_after: str | None = None) -> dict:
        """One page as data: objects, prefixes and next_token (REST and console)."""
        params = {"list-type": "2", "prefix": prefix, "delimiter": delimiter, "max-keys": str(max_keys),
                  "start-after": start_after or ""}
        if continuation_token:
            params["continuation-token"] = continuation_token
        page = self.list_objects_s3(account, name, params)
        objects = [{"key": o["key"], "size": o["size"], "etag": o["etag"],
                    "last_modified": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(o["updated_at"]))}
                   for o in page["objects"]]
        return {"objects": objects, "prefixes": page["prefixes"], "next_token": page.get("next_token")}

    def list_objects_s3(self, account: "Account | None", name: str, params: dict[str, str]) -> dict:
        """ListObjects (v1, or v2 when list-type=2) as data, from the index (listing.py): the
        same answer on every engine. Each object: key, size, etag, last_modified (epoch)."""
        bucket = self.authorize(account, name, "list")
        self.in_doubt.settle(name)   # writes lost with the engine, while it answers again: listed as they landed
        page = listing.objects_page(self.index.lister(name), params)
        self._fill_etags(name, page["objects"])
        page["name"], page["owner"] = name, self._who(bucket.owner)
        if policy.ownership(bucket) in ("ObjectWriter", "BucketOwnerPreferred"):   # objects others may own
            owners = self.settings.owners_of(name, [o["key"] for o in page["objects"]])
            for o in page["objects"]:
                if o["key"] in owners:
                    o["owner"] = self._who(owners[o["key"]])
        return page

    def _fill_etags(self, name: str, objects: list[dict]) -> None:
        """ETags the index does not know yet (rows written before it kept them): from the engine, once."""
        for o in objects:
            if not o.get("etag"):
                o["etag"] = self.engine.etag(name, o["key"]) or ""
                if o["etag"]:
                    self.index.set_etag(name, o["key"], o["etag"])

    # -- objects -------------------------------------------------------------------------------
    def readable(self, account: "Account | None", name: str, key: str) -> Bucket:
        """The bucket, if `account` may read the object: its owner, through the bucket (shares,
        policy) where the bucket's owner owns it, or through the object's own ACL."""
        bucket = self.buckets.get(name)
        validate_key(key)
        attrs = self.settings.object_attrs(name, key)
        policy.check_object(bucket, account, "read-object", attrs.owner, attrs.acl, key)
        return bucket

    def _new_attrs(self, bucket: Bucket, attrs: ObjectAttrs | None, account: "Account | None") -> ObjectAttrs:
        """What an object `account` writes carries: its ACL (checked) and owner (ownership)."""
        attrs = attrs or ObjectAttrs()
        if attrs.acl is not None:
            policy.check_acl_allowed(bucket, attrs.acl)
            self.check_grantees(attrs.acl)
        attrs.owner = policy.new_object_owner(bucket, account, attrs.acl)
        if attrs.acl == "private" or (attrs.acl in policy.BUCKET_OWNER_GRANTS and attrs.owner is None):
            attrs.acl = None    # grants nothing beyond the owner's FULL_CONTROL
        return attrs

    def get_object(self, account: "Account | None", name: str, key: str, headers: dict[str, str] | None = None,
                   method: str = "GET", query: Iterable[tuple[str, str]] = (), version_id: str | None = None,
                   checksum_mode: bool = False) -> Reply:
        """The object, streamed (HEAD: its headers); Range and conditionals as S3 has them;
        with `checksum_mode`, the checksum it was stored with (whole-object reads only)."""
        bucket = self.readable(account, name, key)
        version = self.check_version(bucket, version_id)
        headers = dict(headers or {})
        wanted_range = headers.pop("range", None)
        resolved = size = None
        if wanted_range is not None:
            size = self.index.object_size(name, key) if not version else None
            if size is None:
                size = self.engine.size(name, key, version)
            if size is not None:
                resolved = ranges.resolve(wanted_range, size)
                if resolved is not None and method == "GET":
                    headers["range"] = resolved
        reply = self.engine.get(method, name, key, list(query) + version, headers)
        if method == "HEAD" and resolved is not None and reply.status == 200:
            first, last = (int(n) for n in resolved[len("bytes="):].split("-"))
            reply.status = 206   # HEAD answers what a GET of the range would
            reply.headers = [(k, v) for k, v in reply.headers if k.lower() != "content-length"] + [
                ("Content-Length", str(last - first + 1)), ("Content-Range", f"bytes {first}-{last}/{size}")]
        if reply.ok and headers:
            verdict = conditions.read_verdict(headers, reply.header("etag"),
                                              conditions.last_modified_of(reply.header("last-modified")))
            if verdict is not None:
                reply.close()
                if verdict == 412:
                    raise conditions.precondition_failed()
                return Reply(304, [(k, v) for k, v in reply.headers
                                   if k.lower() in ("etag", "last-modified", "cache-control", "expires")])
        if reply.ok:
            attrs = self.settings.object_attrs(name, key)
            if attrs.tags:
                reply.add_header("x-amz-tagging-count", str(len(attrs.tags)))
            rules = bucket.settings.get("lifecycle")
            written = self.index.written_at(name, key) if rules else None
            if written is not None:
                expiry = lifecycle.expiry_header(rules, key, self.index.object_size(name, key) or 0, attrs.tags,
                                                 written, self.lifecycle_day)
                if expiry:
                    reply.add_header("x-amz-expiration", expiry)
            checksum = self.index.checksum(name, key) if checksum_mode and "range" not in headers else None
            if checksum and version and not self._is_current(name, key, reply.header("etag")):
                checksum = None  # the index keeps the current version's checksum only
            if checksum:
                reply.add_header(f"x-amz-checksum-{checksum[0]}", checksum[1])
                reply.add_header("x-amz-checksum-type", "FULL_OBJECT")
        return reply

    def _is_current(self, name: str, key: str, etag: str | None) -> bool:
        row = self.index.row(name, key)
        return bool(row and row.get("etag") and etag and row["etag"].strip('"') == etag.strip('"'))

    def get_object_attributes(self, account: "Account | None", name: str, key: str, wanted: list[str],
                              version_id: str | None = None) -> dict:
        """GetObjectAttributes as data: etag, size, storage class, checksum, parts count, when."""
        bucket = self.readable(account, name, key)
        head = self.engine.get("HEAD", name, key, self.check_version(bucket, version_id))
        if head.status == 404:
            raise NotFound("The specified key does not exist.", code="NoSuchKey")
        head.raise_for_status(f"reading {name}/{key}")
        etag = (head.header("etag") or "").strip('"')
        row = self.index.row(name, key) if version_id is None else None
        parts = etag.rpartition("-")[2] if "-" in etag else None
        return {"wanted": wanted, "etag": etag, "size": int(head.header("content-length", "0") or 0),
                "last_modified": head.header("last-modified"), "version_id": head.header("x-amz-version-id"),
                "checksum": self.index.checksum(name, key) if row else None,
                "parts": (row or {}).get("parts") or (int(parts) if parts and parts.isdigit() else None)}

    def expect_owner(self, name: str | None, owner_id: str | None) -> None:
        """x-amz-expected-bucket-owner (and its copy-source form): AccessDenied when the bucket
        belongs to another account."""
        bucket = self.buckets.find(name) if name and owner_id is not None else None
        if bucket is not None and bucket.owner != owner_id:   # no bucket: the operation answers for itself
            raise Forbidden("Access Denied", code="AccessDenied")

    def put_object(self, account: "Account | None", name: str, key: str, body: Body, length: int,
                   headers: dict[str, str] | None = None, attrs: ObjectAttrs | None = None) -> Reply:
        """Stream an object into the engine under the owner's quota; `attrs`: its tags and
        canned ACL (x-amz-tagging, x-amz-acl)."""
        bucket = self.authorize(account, name, "write")
        validate_key(key)
        attrs = self._new_attrs(bucket, attrs, account)
        doubt = Doubt(attrs)
        with self._writing(name, key, headers, doubt), self.quotas.reserve(bucket, length, replacing=key):
            try:
                reply = self.engine.put(name, key, headers, gathered(body, length), length)
            finally:
                doubt.checksum = getattr(body, "checksum", None)   # known once the body is read
            if reply.status == 200:
                self.index.record_object(name, key, length, attrs, reply.header("etag"), doubt.checksum)
                self.in_doubt.known(name, [key])
        return reply

    def post_object(self, name: str, fields: dict[str, str], body, size: int, filename: str = "") -> tuple[Reply, str]:
        """A browser form upload (post_policy.py): the signer's account (anonymous without a
        policy), the policy's conditions, then a PutObject as that account. (reply, key)."""
        account = None
        if "policy" in fields:
            account = post_policy.account_of(fields, self.accounts.secret_for, self.region)
        key = fields.get("key", "").replace("${filename}", filename)
        if not key:
            raise InvalidParameter("Bucket POST must contain a field named 'key'.", code="InvalidArgument")
        if "policy" in fields:
            post_policy.check(fields["policy"], {**fields, "key": key}, name, size)
        headers = {k: v for k, v in fields.items() if k in POST_HEADERS or k.startswith("x-amz-meta-")}
        attrs = ObjectAttrs([], policy.canned_acl(fields.get("acl")))
        return self.put_object(account, name, key, body, size, headers, attrs), key

    def current_etag(self, name: str, key: str) -> str | None:
        """The ETag of the key's object now, None when there is none."""
        row = self.index.row(name, key)
        if row is None:
            return None
        return row["etag"] or self.engine.etag(name, key) or ""

    @contextlib.contextmanager
    def _writing(self, name: str, key: str, headers: dict[str, str] | None, doubt: Doubt):
        """One write of a key, under its lock until it is indexed (doubt.py: in doubt if the
        engine becomes unreachable meanwhile); If-None-Match / If-Match checked under it."""
        with self.in_doubt.writing(name, [key], doubt):
            if conditions.has_write_conditions(headers):
                self.in_doubt.settle_held(name, key)   # the condition is checked on the index: make it right
                conditions.check_write(headers, self.current_etag(name, key))
            yield

    def copy_object(self, account: "Account | None", name: str, key: str, source_bucket: str, source_key: str,
                    headers: dict[str, str] | None = None, request_body: Callable[[], object] | None = None,
                    acl: str | None = None, tags: list[tuple[str, str]] | None = None) -> Reply:
        """Copy inside the engine: the caller must be able to write here and read the source.
        The copy gets `acl` and `tags`, or the source's tags when `tags` is None (S3's
        x-amz-tagging-directive COPY)."""
        bucket = self.authorize(account, name, "write")
        validate_key(key)
        self.readable(account, source_bucket, source_key)
        if any(k.lower() in conditions.COPY_SOURCE_HEADERS for k in headers or {}):
            head = self.engine.get("HEAD", source_bucket, source_key)
            if head.ok:
                conditions.check_copy_source(headers, head.header("etag"),
                                             conditions.last_modified_of(head.header("last-modified")))
        size = self.index.object_size(source_bucket, source_key)
        if size is None:
            size = self.engine.size(source_bucket, source_key)
            if size is None:
                raise NotFound("The specified key does not exist.", code="NoSuchKey")
        if request_body:
            request_body()  # normally empty; read (and verified) all the same
        if tags is None:
            tags = self.settings.object_attrs(source_bucket, source_key).tags
        attrs = self._new_attrs(bucket, ObjectAttrs(tags, acl), account)
        source_sum = self.index.checksum(source_bucket, source_key)
        with self._writing(name, key, headers, Doubt(attrs, source_sum)), \
                self.quotas.reserve(bucket, size, replacing=key):
            reply, copied = self.engine.copy(name, key, source_bucket, source_key, headers)
            if copied:
                self.index.record_object(name, key, size, attrs, result_etag(reply, "CopyObjectResult"), source_sum)
                self.in_doubt.known(name, [key])
        return reply

    def delete_object(self, account: "Account | None", name: str, key: str, version_id: str | None = None) -> Reply:
        bucket = self.authorize(account, name, "write")
        validate_key(key)
        version = self.check_version(bucket, version_id)
        with self.in_doubt.writing(name, [key]):
            reply = self.engine.delete(name, key, version)
            if reply.status not in (200, 204, 404):
                code, msg = reply.error()
                raise EngineError(f"deleting {name}/{key} failed: {code} {msg}")
            if version_id is not None and self.engine_versioned(bucket):
                self._reindex(name, key)  # an older version may have become the current one
            else:
                self.index.forget_objects(name, [key])
            self.in_doubt.known(name, [key])
        if reply.status == 404 and reply.error()[0] == "NoSuchKey":
            return Reply(204)  # S3 answers 204 for a key that is not there
        return reply

    def delete_objects(self, account: "Account | None", name: str,
                       request: Callable[[], tuple[list[tuple[str, str | None]], bool]]) -> Reply:
        """DeleteObjects: `request()` gives ([(key, version id or None)], quiet)."""
        bucket = self.authorize(account, name, "write")
        objects, quiet = request()
        if not objects or len(objects) > MAX_DELETE or any(not k for k, _ in objects):
            raise InvalidParameter("Delete needs 1 to 1000 Object elements with a Key", code="MalformedXML")
        for k, v in objects:
            validate_key(k)
            self.check_version(bucket, v)
        versioned = self.engine_versioned(bucket)
        with self.in_doubt.writing(name, [k for k, _ in objects]):
            reply, deleted = self.engine.delete_many(name, objects if versioned else [(k, None) for k, _ in objects],
                                                     quiet)
            self.index.forget_objects(name, [k for k, v in deleted if v is None or not versioned])
            for k in {k for k, v in deleted if v is not None and versioned}:
                self._reindex(name, k)
            self.in_doubt.known(name, [k for k, _ in deleted])
        return reply

    def _reindex(self, name: str, key: str) -> None:
        """The index entry of a key after one of its versions went, from the engine."""
        size = self.engine.size(name, key)
        if size is None:
            self.index.forget_objects(name, [key])
        else:
            self.index.record_object(name, key, size, self.settings.object_attrs(name, key), self.engine.etag(name, key))

    # -- whole buckets ---------------------------------------------------------------------------
    def empty_bucket(self, name: str) -> int:
        """Delete every object of a bucket in the engine (for forced deletes), every version
        and delete marker too where the engine keeps them; returns the count of objects."""
        deleted = 0
        if self.engine_versioned(self.buckets.get(name)):
            while True:
                versions = self.engine.versions_page(name, MAX_DELETE)
                if not versions:
                    break
                reply, gone = self.engine.delete_many(name, versions, quiet=True)
                reply.raise_for_status(f"emptying bucket {name}")
                if not gone:
                    raise EngineError(f"could not empty bucket {name}: the engine deleted none of its versions")
        strays_done: set[str] = set()
        while True:
            page = self.engine.list_page(name, max_keys=MAX_DELETE)
            keys = [o["key"] for o in page["objects"]]
            strays = [o["name"] for o in page["strays"] if o["name"] not in strays_done]
            for raw in strays:  # digest names of long keys, temp files: by their engine names
                self.engine.delete_name(name, raw)
                strays_done.add(raw)
                deleted += 1
            if not keys:
                if strays:
                    continue
                break
            with self.in_doubt.writing(name, keys):
                reply, gone = self.engine.delete_many(name, [(k, None) for k in keys], quiet=True)
                reply.raise_for_status(f"emptying bucket {name}")
                self.index.forget_objects(name, [k for k, _ in gone])
                self.in_doubt.known(name, [k for k, _ in gone])
            deleted += len(gone)
            if not gone:
                raise EngineError(f"could not empty bucket {name}: the engine deleted none of {len(keys)} keys")
        self.index.replace_bucket(name, {})
        return deleted

    def rescan(self, name: str) -> dict:
        """Repair the index of one bucket from what the engine holds, both ways: an object the
        engine has and the index lacks is added, an indexed one the engine lacks is dropped,
        each with a log line (the index answers listings, so it must not drift)."""
        found: dict[str, tuple[int, str | None]] = {}
        strays: list[str] = []
        digests = {self.engine.name_of(k): k for k, _, _ in self.index.objects_in(name)} if self.keys_are_paths \
            else {}
        token = None
        while True:
            page = self.engine.list_page(name, max_keys=MAX_DELETE, continuation_token=token)
            for o in page["objects"]:
                found[o["key"]] = (o["size"], o["etag"] or None)
            for o in page["strays"]:
                if o["name"] in digests:   # a long key's digest name: the index knows its key
                    found[digests[o["name"]]] = (o["size"], o["etag"] or None)
                else:
                    strays.append(o["name"])
            token = page.get("next_token")
            if not token:
                break
        added, dropped = self.index.replace_bucket(name, found)
        for key in added[:20]:
            log.warning("reconcile: %s/%s is on the engine but was not indexed: indexed now", name, key[:200])
        for key in dropped[:20]:
            log.warning("reconcile: %s/%s was indexed but the engine has no such object: dropped", name, key[:200])
        if len(added) > 20 or len(dropped) > 20:
            log.warning("reconcile: %s: %d objects indexed, %d dropped in all", name, len(added), len(dropped))
        for raw in strays[:20]:
            log.warning("reconcile: %s: engine file %r is no object's name (a temp file or another layout): "
                        "left alone", name, raw[:200])
        return {**self.index.usage(name), "added": len(added), "dropped": len(dropped), "strays": len(strays)}
