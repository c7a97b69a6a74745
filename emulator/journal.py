"""The operations journal: one row per multi-step instance operation (launch, terminate,
start, stop), stamped with the boot id of the server performing it and the last step it
reached. A server that dies mid-operation leaves its row open under a boot id no live
server has; the reconciler then adopts or rolls back what that operation left, and never
touches an operation of the server that is running (same boot id)."""
from __future__ import annotations

import sqlite3
import time
import uuid
from contextlib import contextmanager
from typing import Iterator

from .state import Store

OPS = ("launch", "terminate", "start", "stop")


class Journal:
    def __init__(self, store: Store, boot_id: str | None = None):
        self.store = store
        # Made once per server process (gunicorn runs one worker): what tells "mine" from "dead".
        self.boot_id = boot_id or uuid.uuid4().hex

    def open_in(self, c: sqlite3.Connection, instance_id: str, op: str, step: str = "") -> int:
        """Open an operation inside the caller's transaction (with the record it concerns)."""
        if op not in OPS:
            raise ValueError(op)
        cur = c.execute("INSERT INTO operations (instance_id, op, boot_id, step, started_at) VALUES (?,?,?,?,?)",
                        (instance_id, op, self.boot_id, step, time.time()))
        return int(cur.lastrowid)

    def open(self, instance_id: str, op: str) -> int:
        with self.store.tx() as c:
            return self.open_in(c, instance_id, op)

    def step(self, op_id: int, step: str) -> None:
        with self.store.tx() as c:
            c.execute("UPDATE operations SET step=? WHERE id=?", (step, op_id))

    def finish(self, op_id: int) -> None:
        with self.store.tx() as c:
            c.execute("UPDATE operations SET finished_at=? WHERE id=? AND finished_at IS NULL", (time.time(), op_id))

    def finish_all(self, instance_id: str) -> None:
        """Close every open operation of an instance (once the reconciler settled it)."""
        with self.store.tx() as c:
            c.execute("UPDATE operations SET finished_at=? WHERE instance_id=? AND finished_at IS NULL",
                      (time.time(), instance_id))

    @contextmanager
    def track(self, instance_id: str, op: str) -> Iterator[int]:
        """An operation performed here and now: closed however it ends (except by a kill)."""
        op_id = self.open(instance_id, op)
        try:
            yield op_id
        finally:
            self.finish(op_id)

    def open_op(self, instance_id: str, op: str | None = None) -> sqlite3.Row | None:
        """The latest unfinished operation of an instance (of kind OP if given), or None."""
        return self.store.one("SELECT * FROM operations WHERE instance_id=? AND finished_at IS NULL "
                              "AND op=COALESCE(?, op) ORDER BY id DESC LIMIT 1", (instance_id, op))

    def is_live(self, row: sqlite3.Row) -> bool:
        return row["boot_id"] == self.boot_id

    def forget(self, c: sqlite3.Connection, instance_ids: list[str]) -> None:
        """Drop the rows of instances that are forgotten (inside the caller's transaction)."""
        c.executemany("DELETE FROM operations WHERE instance_id=?", [(i,) for i in instance_ids])
