"""Object and multipart operations of the `Storage` facade.

Each method authorizes the caller, holds quota for what it writes, calls the engine once
(engine.py) and updates the size index (index.py) when the engine says it worked; the
engine's answer comes back as a `Reply` to relay. Bodies are iterables of bytes, never
whole objects; request documents the caller still has to read (XML of DeleteObjects,
CompleteMultipartUpload) are passed as callables, read only once the caller is known to
be allowed.

A mixin of Storage, which provides `authorize`, `engine`, `index` and `quotas`.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Iterable, Union

from ..errors import EngineError, InvalidParameter, NotFound
from .buckets import Bucket, validate_key
from .engine import Reply

if TYPE_CHECKING:
    from ..accounts import Account
    from .engine import Engine
    from .index import ObjectIndex
    from .quotas import Quotas

GATHER = 1024 * 1024        # bodies up to this size are read (and so verified) before the engine sees them
MAX_DELETE = 1000
Body = Union[bytes, Iterable[bytes]]


def _gathered(body, length: int):
    """Small bodies whole, so that one failing verification never reaches the engine; larger
    ones stream (a failure then cuts the upload short and the engine discards it)."""
    if isinstance(body, (bytes, bytearray)) or length > GATHER:
        return body
    return b"".join(body)


def _parts_in_order(parts: list[tuple[int, str]]) -> list[tuple[int, str]]:
    if not parts:
        raise InvalidParameter("You must specify at least one part", code="MalformedXML")
    numbers = [n for n, _ in parts]
    if numbers != sorted(set(numbers)):
        raise InvalidParameter("The list of parts was not in ascending order.", code="InvalidPartOrder")
    return parts


class ObjectOperations:
    engine: "Engine"
    index: "ObjectIndex"
    quotas: "Quotas"
    authorize: Callable[..., Bucket]

    # -- listings ------------------------------------------------------------------------------
    def list_objects(self, account: "Account | None", name: str, **kw) -> dict:
        """One page as data (prefix, delimiter, max_keys, continuation_token, start_after)."""
        self.authorize(account, name, "list")
        return self.engine.list_page(name, **kw)

    def list_objects_s3(self, account: "Account | None", name: str, query: list[tuple[str, str]]) -> Reply:
        """ListObjects (v1 or v2, as `query` says) rendered by the engine, streamed."""
        self.authorize(account, name, "list")
        return self.engine.listing(name, None, query)

    def list_uploads(self, account: "Account | None", name: str, query: list[tuple[str, str]]) -> Reply:
        self.authorize(account, name, "list")
        return self.engine.listing(name, None, [("uploads", "")] + query)

    def list_parts(self, account: "Account | None", name: str, key: str, upload_id: str,
                   query: list[tuple[str, str]]) -> Reply:
        self.authorize(account, name, "list")
        upload = self.index.get_upload(upload_id, name, key)
        return self.engine.listing(name, key, [("uploadId", upload.upload_id)] + query)

    # -- objects -------------------------------------------------------------------------------
    def get_object(self, account: "Account | None", name: str, key: str, headers: dict[str, str] | None = None,
                   method: str = "GET", query: Iterable[tuple[str, str]] = ()) -> Reply:
        """The object, streamed (HEAD: its headers); Range and conditionals as S3 has them."""
        self.authorize(account, name, "read-object")
        validate_key(key)
        return self.engine.get(method, name, key, query, headers)

    def put_object(self, account: "Account | None", name: str, key: str, body: Body, length: int,
                   headers: dict[str, str] | None = None) -> Reply:
        """Stream an object into the engine under the owner's quota."""
        bucket = self.authorize(account, name, "write")
        validate_key(key)
        with self.quotas.reserve(bucket, length, replacing=key):
            reply = self.engine.put(name, key, headers, _gathered(body, length), length)
            if reply.status == 200:
                self.index.record_object(name, key, length)
        return reply

    def copy_object(self, account: "Account | None", name: str, key: str, source_bucket: str, source_key: str,
                    headers: dict[str, str] | None = None, request_body: Callable[[], object] | None = None) -> Reply:
        """Copy inside the engine: the caller must be able to write here and read the source."""
        bucket = self.authorize(account, name, "write")
        validate_key(key)
        self.authorize(account, source_bucket, "read-object")
        validate_key(source_key)
        size = self.index.object_size(source_bucket, source_key)
        if size is None:
            size = self.engine.size(source_bucket, source_key)
            if size is None:
                raise NotFound("The specified key does not exist.", code="NoSuchKey")
        if request_body:
            request_body()  # normally empty; read (and verified) all the same
        with self.quotas.reserve(bucket, size, replacing=key):
            reply, copied = self.engine.copy(name, key, source_bucket, source_key, headers)
            if copied:
                self.index.record_object(name, key, size)
        return reply

    def delete_object(self, account: "Account | None", name: str, key: str) -> Reply:
        self.authorize(account, name, "write")
        validate_key(key)
        reply = self.engine.delete(name, key)
        if reply.status not in (200, 204, 404):
            code, msg = reply.error()
            raise EngineError(f"deleting {name}/{key} failed: {code} {msg}")
        self.index.forget_objects(name, [key])
        if reply.status == 404 and reply.error()[0] == "NoSuchKey":
            return Reply(204)  # S3 answers 204 for a key that is not there
        return reply

    def delete_objects(self, account: "Account | None", name: str,
                       request: Callable[[], tuple[list[str], bool]]) -> Reply:
        """DeleteObjects: `request()` gives (keys, quiet)."""
        self.authorize(account, name, "write")
        keys, quiet = request()
        if not keys or len(keys) > MAX_DELETE or any(not k for k in keys):
            raise InvalidParameter("Delete needs 1 to 1000 Object elements with a Key", code="MalformedXML")
        for k in keys:
            validate_key(k)
        reply, deleted = self.engine.delete_many(name, keys, quiet)
        self.index.forget_objects(name, deleted)
        return reply

    # -- multipart ----------------------------------------------------------------------------
    def create_upload(self, account: "Account | None", name: str, key: str, headers: dict[str, str] | None = None,
                      request_body: Callable[[], object] | None = None) -> Reply:
        self.authorize(account, name, "write")
        validate_key(key)
        if request_body:
            request_body()
        reply, upload_id = self.engine.create_upload(name, key, headers)
        if upload_id:
            self.index.record_upload(upload_id, name, key, account.id)
        return reply

    def upload_part(self, account: "Account | None", name: str, key: str, upload_id: str, number: int, body: Body,
                    length: int, headers: dict[str, str] | None = None) -> Reply:
        """One part, under quota (a re-sent part only needs what it adds)."""
        bucket = self.authorize(account, name, "write")
        upload = self.index.get_upload(upload_id, name, key)
        previous = self.index.part_size(upload.upload_id, number)
        with self.quotas.reserve(bucket, max(0, length - previous)):
            reply = self.engine.upload_part(name, key, upload.upload_id, number, headers,
                                            _gathered(body, length), length)
            if reply.status == 200:
                self.index.record_part(upload.upload_id, number, length, reply.header("etag", "") or "")
        return reply

    def complete_upload(self, account: "Account | None", name: str, key: str, upload_id: str,
                        parts: Callable[[], list[tuple[int, str]]]) -> Reply:
        """The object the parts make; refused by quota, the upload is aborted so that neither
        the object nor its parts remain."""
        bucket = self.authorize(account, name, "write")
        upload = self.index.get_upload(upload_id, name, key)
        listed = _parts_in_order(parts())
        total = self.index.completion_size(upload, listed)
        reservation = self.quotas.reserve(bucket, total, replacing=key, upload_id=upload.upload_id)
        try:
            reservation.__enter__()
        except BaseException:
            self.engine.abort(name, key, upload.upload_id)
            self.index.forget_upload(upload.upload_id)
            raise
        try:
            reply, completed = self.engine.complete(name, key, upload.upload_id, listed)
            if completed:
                self.index.record_object(name, key, total)
                self.index.forget_upload(upload.upload_id)
        finally:
            reservation.__exit__(None, None, None)
        return reply

    def abort_upload(self, account: "Account | None", name: str, key: str, upload_id: str) -> Reply:
        self.authorize(account, name, "write")
        upload = self.index.get_upload(upload_id, name, key)
        reply = self.engine.abort(name, key, upload.upload_id)
        if reply.status in (200, 204, 404):
            self.index.forget_upload(upload.upload_id)
        return reply

    # -- whole buckets ---------------------------------------------------------------------------
    def empty_bucket(self, name: str) -> int:
        """Delete every object of a bucket in the engine (for forced deletes); returns the count."""
        deleted = 0
        while True:
            keys = [o["key"] for o in self.engine.list_page(name, max_keys=MAX_DELETE)["objects"]]
            if not keys:
                break
            reply, gone = self.engine.delete_many(name, keys, quiet=True)
            reply.raise_for_status(f"emptying bucket {name}")
            self.index.forget_objects(name, gone)
            deleted += len(gone)
            if not gone:
                raise EngineError(f"could not empty bucket {name}: the engine deleted none of {len(keys)} keys")
        self.index.replace_bucket(name, {})
        return deleted

    def rescan(self, name: str) -> dict:
        """Rebuild the size index of one bucket from the engine's listing."""
        sizes: dict[str, int] = {}
        token = None
        while True:
            page = self.engine.list_page(name, max_keys=MAX_DELETE, continuation_token=token)
            for o in page["objects"]:
                sizes[o["key"]] = o["size"]
            token = page.get("next_token")
            if not token:
                break
        self.index.replace_bucket(name, sizes)
        return self.index.usage(name)
