"""Storage quotas: objects count against the bucket owner's quota, whoever writes them.

A write that would pass the quota is refused before a byte reaches the engine. Writes in
flight hold their size (a reservation), so concurrent writes cannot pass it together.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator

from ..errors import QuotaExceeded
from .index import ObjectIndex


class Quotas:
    def __init__(self, index: ObjectIndex, accounts):
        self.index = index
        self.accounts = accounts
        self._lock = threading.Lock()
        self._reserved: dict[str, int] = {}     # account id -> bytes of writes in flight

    @contextmanager
    def reserve(self, bucket, size: int, *, replacing: str | None = None,
                upload_id: str | None = None) -> Iterator[None]:
        """Hold `size` bytes of the bucket owner's quota while a write is in flight.

        `replacing`: the key being overwritten (its current size is freed by the write).
        `upload_id`: a multipart completion, whose own parts become the object.
        Refused with QuotaExceeded when the owner's stored bytes + in-progress multipart
        parts + other writes in flight + size would pass the quota.
        """
        owner = bucket.owner
        with self._lock:
            quota = self.accounts.get(owner).storage_quota
            if quota is not None:
                used = self.index.owner_bytes(owner)
                pending = self.index.pending_bytes(owner)
                freed = (self.index.object_size(bucket.name, replacing) or 0) if replacing is not None else 0
                if upload_id is not None:
                    pending -= self.index.parts_bytes(upload_id)
                inflight = self._reserved.get(owner, 0)
                if used + pending + inflight - freed + size > quota:
                    raise QuotaExceeded(
                        f"storage quota exceeded: the owner of bucket {bucket.name} stores {used} bytes "
                        f"(+{pending + inflight} in progress) of a {quota}-byte quota; this write needs {size} more",
                        code="QuotaExceeded")
            self._reserved[owner] = self._reserved.get(owner, 0) + size
        try:
            yield
        finally:
            with self._lock:
                self._reserved[owner] -= size
                if not self._reserved[owner]:
                    del self._reserved[owner]
