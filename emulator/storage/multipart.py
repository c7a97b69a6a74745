"""Multipart uploads of the `Storage` facade: create, parts (sent or copied from another
object), complete, abort, and the listings of uploads and parts, which come from the cloud's
own index (index.py) rather than the engine, so they page the same on every engine.

UploadPartCopy reads the source range from the engine and streams it back in as the part:
any engine can take it, and the part counts against quota like one that was sent.

A mixin of Storage, which provides `authorize`, `readable`, `settings`, `engine`, `index`,
`quotas` and `accounts`.
"""
from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Callable

from ..errors import EngineError, InvalidParameter, NotFound
from . import conditions as preconditions
from . import listing
from .buckets import Bucket, validate_key
from .doubt import Doubt
from .engine import Reply, result_etag
from .objects import Body, gathered
from .settings import ObjectAttrs

if TYPE_CHECKING:
    from ..accounts import Account
    from .journal import StorageJournal

_RANGE = re.compile(r"bytes=(\d+)-(\d+)")
# x-amz-copy-source-if-* as the conditional GET of the source
COPY_CONDITIONS = {"x-amz-copy-source-if-match": "if-match", "x-amz-copy-source-if-none-match": "if-none-match",
                   "x-amz-copy-source-if-modified-since": "if-modified-since",
                   "x-amz-copy-source-if-unmodified-since": "if-unmodified-since"}


def parts_in_order(parts: list[tuple[int, str]]) -> list[tuple[int, str]]:
    if not parts:
        raise InvalidParameter("You must specify at least one part", code="MalformedXML")
    numbers = [n for n, _ in parts]
    if numbers != sorted(set(numbers)):
        raise InvalidParameter("The list of parts was not in ascending order.", code="InvalidPartOrder")
    return parts


def _limit(value: str | None, what: str) -> int:
    return listing.max_keys(value, what)   # max-uploads and max-parts follow max-keys' rules


def _source_failure(reply: Reply) -> Exception:
    """The engine's refusal to read a copy source, as S3 answers UploadPartCopy."""
    code, message = reply.error() if reply.status != 304 else ("PreconditionFailed", "")
    if reply.status in (304, 412):
        return InvalidParameter("At least one of the pre-conditions you specified did not hold",
                                code="PreconditionFailed")
    if reply.status == 416:
        return InvalidParameter("The requested range is not satisfiable", code="InvalidRange")
    if reply.status == 404:
        return NotFound("The specified key does not exist.", code=code if code.startswith("NoSuch") else "NoSuchKey")
    return EngineError(f"reading the copy source failed: {reply.status} {code} {message}")


class MultipartOperations:
    authorize: Callable[..., Bucket]
    readable: Callable[..., Bucket]
    journal: "StorageJournal"

    def create_upload(self, account: "Account | None", name: str, key: str, headers: dict[str, str] | None = None,
                      request_body: Callable[[], object] | None = None, attrs: ObjectAttrs | None = None) -> Reply:
        """A new upload; `attrs` are what the completed object will carry."""
        bucket = self.authorize(account, name, "write")
        validate_key(key)
        attrs = self._new_attrs(bucket, attrs, account)
        if request_body:
            request_body()
        reply, upload_id = self.engine.create_upload(name, key, headers)
        if upload_id:
            self.index.record_upload(upload_id, name, key, account.id if account else "anonymous")
            self.settings.set_upload_attrs(upload_id, attrs)
        return reply

    def upload_part(self, account: "Account | None", name: str, key: str, upload_id: str, number: int, body: Body,
                    length: int, headers: dict[str, str] | None = None) -> Reply:
        """One part, under quota (a re-sent part only needs what it adds)."""
        bucket = self.authorize(account, name, "write")
        upload = self.index.get_upload(upload_id, name, key)
        previous = self.index.part_size(upload.upload_id, number)
        with self.quotas.reserve(bucket, max(0, length - previous)):
            reply = self.engine.upload_part(name, key, upload.upload_id, number, headers,
                                            gathered(body, length), length)
            if reply.status == 200:
                self.index.record_part(upload.upload_id, number, length, reply.header("etag", "") or "")
        return reply

    def upload_part_copy(self, account: "Account | None", name: str, key: str, upload_id: str, number: int,
                         source_bucket: str, source_key: str, source_range: str | None = None,
                         conditions: dict[str, str] | None = None) -> tuple[Reply, str | None, float]:
        """A part copied from (a byte range of) another object the caller may read:
        (the engine's reply, the part's ETag when it worked, when)."""
        bucket = self.authorize(account, name, "write")
        upload = self.index.get_upload(upload_id, name, key)
        self.readable(account, source_bucket, source_key)
        get_headers = {COPY_CONDITIONS[k]: v for k, v in (conditions or {}).items() if k in COPY_CONDITIONS}
        if source_range is not None:
            m = _RANGE.fullmatch(source_range.strip())
            if not m or int(m.group(1)) > int(m.group(2)):
                raise InvalidParameter("The x-amz-copy-source-range value must be of the form bytes=first-last where "
                                       "first and last are the zero-based offsets of the first and last bytes to copy",
                                       code="InvalidArgument")
            get_headers["range"] = source_range.strip()
        source = self.engine.get("GET", source_bucket, source_key, (), get_headers)
        try:
            if source.status not in (200, 206):
                raise _source_failure(source)
            preconditions.check_copy_source(conditions or {}, source.header("etag"),
                                            preconditions.last_modified_of(source.header("last-modified")))
            if source_range is not None and source.status != 206:
                raise InvalidParameter("The requested range is not satisfiable", code="InvalidRange")
            length = int(source.header("content-length", "0") or 0)
            previous = self.index.part_size(upload.upload_id, number)
            with self.quotas.reserve(bucket, max(0, length - previous)):
                reply = self.engine.upload_part(name, key, upload.upload_id, number, {}, source.iter(), length)
                etag = reply.header("etag", "") or ""
                if reply.status == 200:
                    self.index.record_part(upload.upload_id, number, length, etag)
        finally:
            source.close()
        return reply, (etag if reply.status == 200 else None), time.time()

    def complete_upload(self, account: "Account | None", name: str, key: str, upload_id: str,
                        parts: Callable[[], list[tuple[int, str]]], headers: dict[str, str] | None = None) -> Reply:
        """The object the parts make; refused by quota, the upload is aborted so that neither
        the object nor its parts remain. `headers`: If-None-Match / If-Match (conditions.py)."""
        bucket = self.authorize(account, name, "write")
        upload = self.index.get_upload(upload_id, name, key)
        listed = parts_in_order(parts())
        doubt = Doubt(self.settings.upload_attrs(upload.upload_id), parts=len(listed))
        with self._writing(name, key, headers, doubt):
            return self._complete(bucket, name, key, upload, listed)

    def _complete(self, bucket, name: str, key: str, upload, listed: list[tuple[int, str]]) -> Reply:
        total = self.index.completion_size(upload, listed)
        reservation = self.quotas.reserve(bucket, total, replacing=key, upload_id=upload.upload_id)
        try:
            reservation.__enter__()
        except BaseException:
            self.engine.abort(name, key, upload.upload_id)
            self.index.forget_upload(upload.upload_id)
            raise
        try:
            with self.journal.track("multipart-complete", name, key, upload.upload_id):
                reply, completed = self.engine.complete(name, key, upload.upload_id, listed)
                if completed:
                    self.journal.fault("multipart-complete", "engine")
                    self.index.record_object(name, key, total, self.settings.upload_attrs(upload.upload_id),
                                             result_etag(reply, "CompleteMultipartUploadResult"), parts=len(listed))
                    self.index.forget_upload(upload.upload_id)
                    self.in_doubt.known(name, [key])
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

    # -- listings (from the index) ---------------------------------------------------------------------
    def _who(self, account_id: str) -> dict:
        try:
            return {"id": account_id, "name": self.accounts.get(account_id).name}
        except NotFound:
            return {"id": account_id, "name": account_id}

    def list_uploads(self, account: "Account | None", name: str, params: dict[str, str]) -> dict:
        """ListMultipartUploads as data: uploads [{key, upload_id, initiator, initiated}],
        prefixes, and the markers S3 pages with."""
        bucket = self.authorize(account, name, "list")
        prefix, delimiter = params.get("prefix") or "", params.get("delimiter") or ""
        key_marker, id_marker = params.get("key-marker") or "", params.get("upload-id-marker") or ""
        limit = _limit(params.get("max-uploads"), "max-uploads")
        if params.get("encoding-type") not in (None, "", "url"):
            raise InvalidParameter("Invalid Encoding Method specified in Request", code="InvalidArgument")
        uploads = [u for u in self.index.uploads(name) if u.key.startswith(prefix)]
        if key_marker:
            if id_marker:
                at = next((i for i, u in enumerate(uploads) if u.key == key_marker and u.upload_id == id_marker), None)
                uploads = uploads[at + 1:] if at is not None else [u for u in uploads if u.key > key_marker]
            else:
                uploads = [u for u in uploads if u.key > key_marker]
        entries: list[tuple[str, object]] = []
        for u in uploads:
            cut = u.key.find(delimiter, len(prefix)) if delimiter else -1
            if cut >= 0:
                common = u.key[:cut + len(delimiter)]
                if common != key_marker and not (entries and entries[-1][0] == "prefix" and entries[-1][1] == common):
                    entries.append(("prefix", common))
            else:
                entries.append(("upload", u))
        page, truncated = entries[:limit], len(entries) > limit
        owner = self._who(bucket.owner)
        out = {"bucket": name, "prefix": prefix, "delimiter": delimiter, "key_marker": key_marker,
               "upload_id_marker": id_marker, "max_uploads": limit, "truncated": truncated,
               "encoding_type": params.get("encoding-type") or None, "owner": owner,
               "uploads": [{"key": u.key, "upload_id": u.upload_id, "initiator": self._who(u.initiator),
                            "initiated": u.created_at} for kind, u in page if kind == "upload"],
               "prefixes": [p for kind, p in page if kind == "prefix"]}
        if truncated and page:
            kind, last = page[-1]
            out["next_key_marker"] = last.key if kind == "upload" else last
            out["next_upload_id_marker"] = last.upload_id if kind == "upload" else ""
        return out

    def list_parts(self, account: "Account | None", name: str, key: str, upload_id: str,
                   params: dict[str, str]) -> dict:
        """ListParts as data: parts [{number, size, etag, modified}] after part-number-marker."""
        bucket = self.authorize(account, name, "list")
        upload = self.index.get_upload(upload_id, name, key)
        try:
            marker = int(params.get("part-number-marker") or 0)
        except ValueError:
            raise InvalidParameter("Provided part-number-marker not an integer", code="InvalidArgument") from None
        limit = _limit(params.get("max-parts"), "max-parts")
        parts = [p for p in self.index.parts(upload.upload_id) if p["part_number"] > marker]
        page = parts[:limit]
        out = {"bucket": name, "key": key, "upload_id": upload.upload_id, "marker": marker, "max_parts": limit,
               "truncated": len(parts) > limit, "initiator": self._who(upload.initiator),
               "owner": self._who(bucket.owner),
               "parts": [{"number": p["part_number"], "size": p["size"], "etag": p["etag"],
                          "modified": p["updated_at"]} for p in page]}
        if page:
            out["next_marker"] = page[-1]["part_number"]
        return out
