"""What the cloud keeps about buckets and objects beyond their bytes, identical on every engine.

Per bucket, one JSON document per kind (table `bucket_settings`): tagging, cors, lifecycle,
acl, policy, public_access_block, ownership_controls, versioning. Per object, its tags, ACL
and owner where it is not the bucket's (table `object_attrs`, tied to the object's index row
so they go with it); per unfinished multipart upload, what its object will get (table
`upload_attrs`).

The documents are data, already checked (tagging.py, cors.py, lifecycle.py, acl.py): the
front end parses the wire format, this module only stores.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

KINDS = ("tagging", "cors", "lifecycle", "acl", "policy", "public_access_block", "ownership_controls",
         "versioning")


@dataclass
class ObjectAttrs:
    tags: list[tuple[str, str]] = field(default_factory=list)
    acl: str | None = None      # a canned ACL or explicit grants (policy.py); None: private (the default)
    owner: str | None = None    # the account owning the object (policy.new_object_owner); None: the bucket's

    def to_row(self) -> tuple[str, str | None, str | None]:
        return json.dumps([list(t) for t in self.tags]), self.acl, self.owner

    @property
    def empty(self) -> bool:
        return not self.tags and self.acl is None and self.owner is None

    @classmethod
    def from_row(cls, row) -> "ObjectAttrs":
        return cls([tuple(t) for t in json.loads(row["tags"])], row["acl"], row["owner"])


def write_object_attrs(conn, bucket: str, key: str, attrs: ObjectAttrs) -> None:
    """Replace an indexed object's attributes inside the caller's transaction (none at all:
    the row goes)."""
    if attrs.empty:
        conn.execute("DELETE FROM object_attrs WHERE bucket=? AND key=?", (bucket, key))
    else:
        conn.execute("INSERT INTO object_attrs (bucket, key, tags, acl, owner) VALUES (?,?,?,?,?) "
                     "ON CONFLICT(bucket, key) DO UPDATE SET tags=excluded.tags, acl=excluded.acl, "
                     "owner=excluded.owner", (bucket, key, *attrs.to_row()))


class Settings:
    def __init__(self, store):
        self.store = store

    # -- buckets -----------------------------------------------------------------------------
    def all_of(self, bucket: str) -> dict[str, Any]:
        return {r["kind"]: json.loads(r["body"]) for r in
                self.store.query("SELECT kind, body FROM bucket_settings WHERE bucket=?", (bucket,))}

    def get(self, bucket: str, kind: str) -> Any | None:
        row = self.store.one("SELECT body FROM bucket_settings WHERE bucket=? AND kind=?", (bucket, kind))
        return json.loads(row["body"]) if row else None

    def put(self, bucket: str, kind: str, body: Any) -> None:
        assert kind in KINDS, kind
        with self.store.tx() as c:
            c.execute("INSERT INTO bucket_settings (bucket, kind, body, updated_at) VALUES (?,?,?,?) "
                      "ON CONFLICT(bucket, kind) DO UPDATE SET body=excluded.body, updated_at=excluded.updated_at",
                      (bucket, kind, json.dumps(body), time.time()))

    def delete(self, bucket: str, kind: str) -> bool:
        with self.store.tx() as c:
            return c.execute("DELETE FROM bucket_settings WHERE bucket=? AND kind=?", (bucket, kind)).rowcount > 0

    def buckets_with(self, kind: str) -> list[tuple[str, Any]]:
        return [(r["bucket"], json.loads(r["body"])) for r in
                self.store.query("SELECT bucket, body FROM bucket_settings WHERE kind=? ORDER BY bucket", (kind,))]

    # -- objects -----------------------------------------------------------------------------
    def object_attrs(self, bucket: str, key: str) -> ObjectAttrs:
        row = self.store.one("SELECT tags, acl, owner FROM object_attrs WHERE bucket=? AND key=?", (bucket, key))
        return ObjectAttrs.from_row(row) if row else ObjectAttrs()

    def objects_attrs(self, bucket: str) -> dict[str, ObjectAttrs]:
        return {r["key"]: ObjectAttrs.from_row(r) for r in
                self.store.query("SELECT key, tags, acl, owner FROM object_attrs WHERE bucket=?", (bucket,))}

    def set_object_attrs(self, bucket: str, key: str, attrs: ObjectAttrs) -> None:
        with self.store.tx() as c:
            write_object_attrs(c, bucket, key, attrs)

    def owners_of(self, bucket: str, keys: list[str]) -> dict[str, str]:
        """key -> owning account, for those of `keys` another account than the bucket's owns."""
        found: dict[str, str] = {}
        for i in range(0, len(keys), 500):
            batch = keys[i:i + 500]
            found.update((r["key"], r["owner"]) for r in self.store.query(
                f"SELECT key, owner FROM object_attrs WHERE bucket=? AND owner IS NOT NULL "
                f"AND key IN ({','.join('?' * len(batch))})", (bucket, *batch)))
        return found

    def drop_object_owners(self, bucket: str) -> None:
        """Every object of the bucket becomes its owner's (BucketOwnerEnforced)."""
        with self.store.tx() as c:
            c.execute("UPDATE object_attrs SET owner=NULL WHERE bucket=?", (bucket,))
            c.execute("DELETE FROM object_attrs WHERE bucket=? AND tags='[]' AND acl IS NULL AND owner IS NULL",
                      (bucket,))

    # -- multipart uploads -------------------------------------------------------------------------
    def set_upload_attrs(self, upload_id: str, attrs: ObjectAttrs) -> None:
        if attrs.empty:
            return
        with self.store.tx() as c:
            c.execute("INSERT OR REPLACE INTO upload_attrs (upload_id, tags, acl, owner) VALUES (?,?,?,?)",
                      (upload_id, *attrs.to_row()))

    def upload_attrs(self, upload_id: str) -> ObjectAttrs:
        row = self.store.one("SELECT tags, acl, owner FROM upload_attrs WHERE upload_id=?", (upload_id,))
        return ObjectAttrs.from_row(row) if row else ObjectAttrs()
