"""Conditional requests as S3 answers them, decided by the cloud on every engine (the stand-in
ignores the headers, Ceph 16.2 overwrote under `If-None-Match: *`).

Reads (GET, HEAD): If-Match, then If-Unmodified-Since (skipped when If-Match held), then
If-None-Match, then If-Modified-Since (skipped when If-None-Match was given); a failed
If-Match/If-Unmodified-Since is 412 PreconditionFailed, a failed If-None-Match/If-Modified-
Since is 304 Not Modified. Copy sources (x-amz-copy-source-if-*): the same tests, every
failure 412. Writes (PutObject, CopyObject's destination, CompleteMultipartUpload):
`If-None-Match: *` fails when the key exists, `If-Match: etag` when it does not (404
NoSuchKey) or has another ETag (412).

Dates that do not parse are ignored, as HTTP says; Last-Modified has whole seconds.
"""
from __future__ import annotations

import email.utils
import threading
from collections import defaultdict
from contextlib import ExitStack, contextmanager
from typing import Iterable, Iterator

from ..errors import InvalidParameter, NotFound

READ_HEADERS = ("if-match", "if-none-match", "if-modified-since", "if-unmodified-since")
COPY_SOURCE_HEADERS = tuple("x-amz-copy-source-" + h for h in READ_HEADERS)


def precondition_failed() -> InvalidParameter:
    return InvalidParameter("At least one of the pre-conditions you specified did not hold",
                            code="PreconditionFailed")


def _date(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None


def _etags_match(header: str, etag: str | None) -> bool:
    if etag is None:
        return False
    if header.strip() == "*":
        return True
    bare = etag.strip('"')
    return any(t.strip().removeprefix("W/").strip('"') == bare for t in header.split(","))


def read_verdict(headers: dict[str, str], etag: str | None, last_modified: float | None,
                 prefix: str = "") -> int | None:
    """None when the conditions hold; else 412 or 304. `prefix`: 'x-amz-copy-source-' for a
    copy source (where the caller turns 304 into 412 too)."""
    h = {k.lower(): v for k, v in headers.items()}
    if_match, if_none = h.get(prefix + "if-match"), h.get(prefix + "if-none-match")
    since, unmodified = _date(h.get(prefix + "if-modified-since")), _date(h.get(prefix + "if-unmodified-since"))
    modified = int(last_modified) if last_modified is not None else None
    if if_match is not None:
        if not _etags_match(if_match, etag):
            return 412
    elif unmodified is not None and modified is not None and modified > unmodified:
        return 412
    if if_none is not None:
        if _etags_match(if_none, etag):
            return 304
    elif since is not None and modified is not None and modified <= since:
        return 304
    return None


def check_copy_source(headers: dict[str, str], etag: str | None, last_modified: float | None) -> None:
    if read_verdict(headers, etag, last_modified, "x-amz-copy-source-") is not None:
        raise precondition_failed()


def has_write_conditions(headers: dict[str, str] | None) -> bool:
    return bool(headers) and any(k.lower() in ("if-match", "if-none-match") for k in headers)


def check_write(headers: dict[str, str] | None, current_etag: str | None) -> None:
    """`current_etag`: the key's object now (None: there is none)."""
    h = {k.lower(): v for k, v in (headers or {}).items()}
    if_none, if_match = h.get("if-none-match"), h.get("if-match")
    if if_none is not None:
        if if_none.strip() != "*":
            raise InvalidParameter("If-None-Match on a write takes only '*'", code="NotImplemented")
        if current_etag is not None:
            raise precondition_failed()
    if if_match is not None:
        if current_etag is None:
            raise NotFound("The specified key does not exist.", code="NoSuchKey")
        if not _etags_match(if_match, current_etag):
            raise precondition_failed()


def last_modified_of(value: str | None) -> float | None:
    return _date(value)


class KeyLocks:
    """Writes to one key happen one at a time, each with its index update (and a conditional
    write's check): the engine and the index then see them in the same order, and settling a
    key in doubt (doubt.py) never interleaves with a live write of it. The server is one
    process, so a lock per key in memory is enough."""

    def __init__(self):
        self._guard = threading.Lock()
        self._locks: dict[tuple[str, str], threading.Lock] = defaultdict(threading.Lock)
        self._users: dict[tuple[str, str], int] = defaultdict(int)

    @contextmanager
    def held(self, bucket: str, key: str, wait: bool = True) -> Iterator[bool]:
        """Hold the key's lock; with wait=False only if it is free now (yields whether it is held)."""
        k = (bucket, key)
        with self._guard:
            lock = self._locks[k]
            self._users[k] += 1
        try:
            got = lock.acquire(blocking=wait)
            try:
                yield got
            finally:
                if got:
                    lock.release()
        finally:
            with self._guard:
                self._users[k] -= 1
                if not self._users[k]:
                    del self._users[k], self._locks[k]

    @contextmanager
    def held_all(self, bucket: str, keys: Iterable[str]) -> Iterator[None]:
        """Hold the locks of several keys of one bucket, taken in key order (so two callers
        with overlapping keys cannot deadlock)."""
        with ExitStack() as stack:
            for key in sorted(set(keys)):
                stack.enter_context(self.held(bucket, key))
            yield
