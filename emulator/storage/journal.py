"""The storage operations journal: a bucket create or delete, or a multipart completion, is
recorded with its server's boot id before it touches the engine and closed once its records
agree with the engine. A server killed in between leaves the row open under a boot id no live
server has; `settle` (at start and in every reconcile pass) then rolls the operation forward
from what the engine really holds, so bucket records and the size index (what quotas count)
match the engine again:

  bucket-create        the record exists: the engine bucket is made (creating is idempotent)
  bucket-delete        the engine has no such bucket: the record and its index go;
                       it still has it: its index is rebuilt from the engine (a forced delete
                       may have emptied part of it)
  multipart-complete   the engine no longer knows the upload: it is forgotten; the bucket's
                       index is rebuilt from the engine (the object counts, its parts not)
"""
from __future__ import annotations

import logging
import time
import uuid
from contextlib import contextmanager
from typing import TYPE_CHECKING, Iterator

from ..errors import CloudError
from ..faults import maybe_die

if TYPE_CHECKING:
    from .service import Storage

log = logging.getLogger("pocketcloud.storage")

OPS = ("bucket-create", "bucket-delete", "multipart-complete")


class StorageJournal:
    def __init__(self, store, boot_id: str | None = None, fault: str = ""):
        self.store = store
        self.boot_id = boot_id or uuid.uuid4().hex
        self.fault_point = fault

    @contextmanager
    def track(self, op: str, bucket: str, key: str = "", upload_id: str = "") -> Iterator[int]:
        """An operation performed here and now: closed however it ends (except by a kill)."""
        if op not in OPS:
            raise ValueError(op)
        with self.store.tx() as c:
            op_id = int(c.execute(
                "INSERT INTO storage_operations (op, bucket, object_key, upload_id, boot_id, started_at) "
                "VALUES (?,?,?,?,?,?)", (op, bucket, key, upload_id, self.boot_id, time.time())).lastrowid)
        try:
            yield op_id
        finally:
            self._finish(op_id)

    def fault(self, op: str, step: str) -> None:
        """Crash tests: die here when POCKETCLOUD_FAULT is storage:OP:after-STEP."""
        maybe_die(self.fault_point, f"storage:{op}:after-{step}")

    def _finish(self, op_id: int) -> None:
        with self.store.tx() as c:
            c.execute("UPDATE storage_operations SET finished_at=? WHERE id=?", (time.time(), op_id))

    def dead(self) -> list:
        """Open operations of servers that are gone (never this one's: those are under way)."""
        return self.store.query("SELECT * FROM storage_operations WHERE finished_at IS NULL AND boot_id!=? "
                                "ORDER BY id", (self.boot_id,))

    def settle(self, storage: "Storage") -> list[str]:
        """Roll every dead operation forward; what was settled, as 'op bucket[/key]'. An
        operation the engine cannot answer for now stays open for the next pass."""
        done = []
        for row in self.dead():
            op, bucket = row["op"], row["bucket"]
            try:
                if op == "bucket-create":
                    if storage.buckets.find(bucket) is not None:
                        storage.engine.create_bucket(bucket)
                elif op == "bucket-delete":
                    if storage.buckets.find(bucket) is not None:
                        if storage.engine.bucket_exists(bucket):
                            storage.rescan(bucket)
                        else:
                            storage.index.replace_bucket(bucket, {})
                            storage.buckets.remove(bucket)
                elif storage.buckets.find(bucket) is not None:  # multipart-complete
                    if not storage.engine.upload_exists(bucket, row["object_key"], row["upload_id"]):
                        storage.index.forget_upload(row["upload_id"])
                    storage.rescan(bucket)
            except CloudError as e:
                log.warning("storage journal: %s %s not settled yet: %s", op, bucket, e)
                continue
            self._finish(row["id"])
            done.append(f"{op} {bucket}" + (f"/{row['object_key']}" if row["object_key"] else ""))
        if done:
            log.warning("storage journal: settled what a dead server left half done: %s", done)
        return done
