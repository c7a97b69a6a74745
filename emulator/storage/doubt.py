"""Keys in doubt: writes whose outcome on the engine is unknown, and settling them.

A write (PutObject, CopyObject, CompleteMultipartUpload, a delete) that fails because the
engine was unreachable or died under it — not a clean S3 error from the engine — may or may
not have reached the engine's storage: the stand-in killed with -9 can have renamed the
upload into place and died before answering. The client got 503 and the index was not
updated, so the index (which answers listings and DeleteBucket's emptiness) may disagree
with the engine: a bucket that lists nothing but that the engine will not delete.

Each such key is remembered with what the failed write would have given its object, and
settled once the engine answers again (every reconcile pass, and before a listing or a
DeleteBucket of its bucket): a HEAD of the key, under the key's lock (conditions.KeyLocks,
which every write holds), makes the index agree with what the engine holds. Key by key,
never by rescanning a bucket: a rescan races the writes that go on meanwhile.

In memory only: a server that dies with keys in doubt rescans every bucket at its next
start (Storage.reconcile_index), before it serves.
"""
from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable, Iterator

from ..errors import BackendUnavailable
from .settings import ObjectAttrs

if TYPE_CHECKING:
    from .buckets import BucketRecords
    from .conditions import KeyLocks
    from .engine import Engine
    from .index import ObjectIndex
    from .settings import Settings

log = logging.getLogger("pocketcloud.storage")


@dataclass
class Doubt:
    """What the object would carry if the failed write did reach the engine (a delete: nothing)."""
    attrs: ObjectAttrs | None = None
    checksum: tuple[str, str] | None = None
    parts: int | None = None


class KeysInDoubt:
    def __init__(self, engine: "Engine", index: "ObjectIndex", settings: "Settings", buckets: "BucketRecords",
                 locks: "KeyLocks"):
        self.engine, self.index, self.settings, self.buckets, self.locks = engine, index, settings, buckets, locks
        self._guard = threading.Lock()
        self._keys: dict[tuple[str, str], Doubt] = {}

    # -- writes ----------------------------------------------------------------------------------
    @contextmanager
    def writing(self, bucket: str, keys: Iterable[str], doubt: Doubt | None = None) -> Iterator[None]:
        """One write of `keys`: their locks held throughout; if the engine becomes unreachable
        under it, the keys are in doubt until settled."""
        keys = list(keys)
        with self.locks.held_all(bucket, keys):
            try:
                yield
            except BackendUnavailable:
                self._add(bucket, keys, doubt or Doubt())
                raise

    def known(self, bucket: str, keys: Iterable[str]) -> None:
        """A write of these keys succeeded and is indexed (lock held): the index is right again."""
        with self._guard:
            for key in keys:
                self._keys.pop((bucket, key), None)

    def _add(self, bucket: str, keys: list[str], doubt: Doubt) -> None:
        with self._guard:
            for key in keys:
                earlier = self._keys.get((bucket, key))
                # a lost delete says nothing of what an earlier lost write would have stored
                self._keys[(bucket, key)] = earlier if doubt.attrs is None and earlier is not None else doubt
        log.warning("storage engine unreachable during a write of %s/%s%s: checked again once it answers",
                    bucket, keys[0][:200] if keys else "", f" (and {len(keys) - 1} more keys)" if len(keys) > 1 else "")

    def pending(self, bucket: str | None = None) -> list[tuple[str, str]]:
        with self._guard:
            return [bk for bk in self._keys if bucket is None or bk[0] == bucket]

    # -- settling ----------------------------------------------------------------------------------
    def settle(self, bucket: str | None = None) -> int:
        """Make the index agree with the engine for each key in doubt (of `bucket`, or all);
        a key a live write holds is left to that write (and the next pass). Stops quietly
        while the engine does not answer. Returns how many keys were settled."""
        done = 0
        for b, k in self.pending(bucket):
            with self.locks.held(b, k, wait=False) as held:
                if not held:
                    continue
                try:
                    done += self.settle_held(b, k)
                except BackendUnavailable:
                    break
        return done

    def settle_held(self, bucket: str, key: str) -> bool:
        """Settle one key whose lock the caller holds; True if it was in doubt and is no more."""
        with self._guard:
            doubt = self._keys.get((bucket, key))
        if doubt is None:
            return False
        if self.buckets.find(bucket) is not None:
            head = self.engine.get("HEAD", bucket, key)
            if head.status == 404:
                if self.index.row(bucket, key) is not None:
                    log.warning("%s/%s: a write failed with the engine unreachable and the engine has no such "
                                "object: dropped from the index", bucket, key[:200])
                self.index.forget_objects(bucket, [key])
            elif head.ok:
                self._index(bucket, key, head, doubt)
            else:
                return False   # the engine answers, but not about this key: the next pass tries again
        self.known(bucket, [key])
        return True

    def _index(self, bucket: str, key: str, head, doubt: Doubt) -> None:
        size = int(head.header("content-length", "0") or 0)
        etag = (head.header("etag") or "").strip('"')
        row = self.index.row(bucket, key)
        if row is not None and (row["etag"] or "") == etag and row["size"] == size:
            return   # the failed write did not land (or stored the same bytes): the index is right
        attrs = doubt.attrs if doubt.attrs is not None else self.settings.object_attrs(bucket, key)
        self.index.record_object(bucket, key, size, attrs, etag or None, doubt.checksum, doubt.parts)
        log.warning("%s/%s: a write answered 503 (engine unreachable) was stored by the engine: indexed now",
                    bucket, key[:200])
