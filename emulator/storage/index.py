"""What the engine holds, as the cloud counts it: object sizes (table `objects`) and
multipart uploads with their parts, recorded as writes succeed, so usage and quota checks
never list the engine."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Iterable

from ..errors import InvalidParameter, NotFound
from .settings import ObjectAttrs, write_object_attrs


@dataclass
class Upload:
    upload_id: str
    bucket: str
    key: str
    initiator: str
    created_at: float


class ObjectIndex:
    def __init__(self, store):
        self.store = store

    # -- objects -------------------------------------------------------------------------------
    def record_object(self, bucket: str, key: str, size: int, attrs: ObjectAttrs | None = None) -> None:
        """A write the engine took: its size, and its tags and ACL (an overwrite replaces them,
        none given: it has none, as S3 has it)."""
        with self.store.tx() as c:
            c.execute("INSERT INTO objects (bucket, key, size, updated_at) VALUES (?,?,?,?) "
                      "ON CONFLICT(bucket, key) DO UPDATE SET size=excluded.size, updated_at=excluded.updated_at",
                      (bucket, key, size, time.time()))
            write_object_attrs(c, bucket, key, attrs or ObjectAttrs())

    def forget_objects(self, bucket: str, keys: Iterable[str]) -> None:
        with self.store.tx() as c:
            c.executemany("DELETE FROM objects WHERE bucket=? AND key=?", [(bucket, k) for k in keys])

    def replace_bucket(self, bucket: str, sizes: dict[str, int]) -> None:
        """The whole index of one bucket at once (after listing the engine); keys that stay
        keep their write time and attributes."""
        now = time.time()
        with self.store.tx() as c:
            known = {r["key"]: r["size"] for r in c.execute("SELECT key, size FROM objects WHERE bucket=?", (bucket,))}
            c.executemany("DELETE FROM objects WHERE bucket=? AND key=?",
                          [(bucket, k) for k in known if k not in sizes])
            c.executemany("INSERT INTO objects (bucket, key, size, updated_at) VALUES (?,?,?,?) "
                          "ON CONFLICT(bucket, key) DO UPDATE SET size=excluded.size",
                          [(bucket, k, s, now) for k, s in sizes.items() if known.get(k) != s])

    def object_size(self, bucket: str, key: str) -> int | None:
        row = self.store.one("SELECT size FROM objects WHERE bucket=? AND key=?", (bucket, key))
        return row["size"] if row else None

    def written_at(self, bucket: str, key: str) -> float | None:
        row = self.store.one("SELECT updated_at FROM objects WHERE bucket=? AND key=?", (bucket, key))
        return row["updated_at"] if row else None

    def objects_in(self, bucket: str) -> list[tuple[str, int, float]]:
        """(key, size, written at) of every indexed object of `bucket`."""
        return [(r["key"], r["size"], r["updated_at"]) for r in
                self.store.query("SELECT key, size, updated_at FROM objects WHERE bucket=?", (bucket,))]

    def count(self, bucket: str, folder_markers: bool = True) -> int:
        """Objects in `bucket`; without `folder_markers`, empty keys ending in '/' do not count."""
        extra = "" if folder_markers else " AND NOT (key LIKE '%/' AND size = 0)"
        return self.store.one("SELECT COUNT(*) AS n FROM objects WHERE bucket=?" + extra, (bucket,))["n"]

    def path_conflict(self, bucket: str, key: str) -> str | None:
        """An object that `key` cannot coexist with on a path-backed engine: one named like a
        folder of `key` ('a' for 'a/0'), or one inside `key` as a folder ('a/0' for 'a')."""
        parts = key.split("/")
        folders = ["/".join(parts[:i]) for i in range(1, len(parts)) if parts[i - 1]]
        if folders:
            marks = ",".join("?" * len(folders))
            row = self.store.one(f"SELECT key FROM objects WHERE bucket=? AND key IN ({marks}) LIMIT 1",
                                 (bucket, *folders))
            if row:
                return row["key"]
        if not key.endswith("/"):
            row = self.store.one("SELECT key FROM objects WHERE bucket=? AND key >= ? AND key < ? LIMIT 1",
                                 (bucket, key + "/", key + "0"))  # '0' sorts right after '/'
            if row:
                return row["key"]
        return None

    def usage(self, bucket: str) -> dict:
        row = self.store.one("SELECT COUNT(*) AS n, COALESCE(SUM(size), 0) AS b FROM objects WHERE bucket=?",
                             (bucket,))
        return {"objects": row["n"], "bytes": row["b"]}

    def owner_totals(self, owner: str) -> dict:
        row = self.store.one(
            "SELECT COUNT(DISTINCT b.name) AS buckets, COUNT(o.key) AS n, COALESCE(SUM(o.size), 0) AS bytes "
            "FROM buckets b LEFT JOIN objects o ON o.bucket = b.name WHERE b.owner=?", (owner,))
        return {"buckets": row["buckets"], "objects": row["n"], "bytes": row["bytes"],
                "multipart_pending_bytes": self.pending_bytes(owner)}

    def owner_bytes(self, owner: str) -> int:
        return self.store.one("SELECT COALESCE(SUM(o.size), 0) AS b FROM objects o JOIN buckets b "
                              "ON b.name = o.bucket WHERE b.owner=?", (owner,))["b"]

    def pending_bytes(self, owner: str) -> int:
        """Bytes in parts of the owner's unfinished multipart uploads."""
        return self.store.one(
            "SELECT COALESCE(SUM(p.size), 0) AS b FROM multipart_parts p JOIN multipart_uploads u "
            "ON u.upload_id = p.upload_id JOIN buckets b ON b.name = u.bucket WHERE b.owner=?", (owner,))["b"]

    # -- multipart uploads ---------------------------------------------------------------------
    def record_upload(self, upload_id: str, bucket: str, key: str, initiator: str) -> None:
        with self.store.tx() as c:
            c.execute("INSERT OR REPLACE INTO multipart_uploads (upload_id, bucket, key, initiator, created_at) "
                      "VALUES (?,?,?,?,?)", (upload_id, bucket, key, initiator, time.time()))

    def get_upload(self, upload_id, bucket: str, key: str) -> Upload:
        row = self.store.one("SELECT * FROM multipart_uploads WHERE upload_id=?", (str(upload_id),))
        if row is None or row["bucket"] != bucket or row["key"] != key:
            raise NotFound("The specified multipart upload does not exist. The upload ID may be invalid, or the "
                           "upload may have been aborted or completed.", code="NoSuchUpload")
        return Upload(row["upload_id"], row["bucket"], row["key"], row["initiator"], row["created_at"])

    def all_uploads(self) -> list[tuple[str, str, str]]:
        """(bucket, key, upload id) of every unfinished upload."""
        return [(r["bucket"], r["key"], r["upload_id"]) for r in
                self.store.query("SELECT bucket, key, upload_id FROM multipart_uploads")]

    def uploads_in(self, bucket: str) -> list[tuple[str, str]]:
        """(upload id, key) of every unfinished upload into `bucket`."""
        return [(r["upload_id"], r["key"]) for r in
                self.store.query("SELECT upload_id, key FROM multipart_uploads WHERE bucket=?", (bucket,))]

    def uploads(self, bucket: str) -> list[Upload]:
        """Every unfinished upload into `bucket`, in S3's listing order: by key, then by
        initiation time."""
        rows = self.store.query("SELECT * FROM multipart_uploads WHERE bucket=? ORDER BY key, created_at, upload_id",
                                (bucket,))
        return [Upload(r["upload_id"], r["bucket"], r["key"], r["initiator"], r["created_at"]) for r in rows]

    def parts(self, upload_id: str) -> list[dict]:
        return [dict(r) for r in self.store.query(
            "SELECT part_number, size, etag, updated_at FROM multipart_parts WHERE upload_id=? ORDER BY part_number",
            (upload_id,))]

    def record_part(self, upload_id: str, number: int, size: int, etag: str) -> None:
        with self.store.tx() as c:
            c.execute("INSERT INTO multipart_parts (upload_id, part_number, size, etag, updated_at) VALUES (?,?,?,?,?) "
                      "ON CONFLICT(upload_id, part_number) DO UPDATE SET size=excluded.size, etag=excluded.etag, "
                      "updated_at=excluded.updated_at", (upload_id, number, size, etag, time.time()))

    def part_size(self, upload_id: str, number: int) -> int:
        row = self.store.one("SELECT size FROM multipart_parts WHERE upload_id=? AND part_number=?",
                             (upload_id, number))
        return row["size"] if row else 0

    def parts_bytes(self, upload_id: str) -> int:
        return self.store.one("SELECT COALESCE(SUM(size),0) AS b FROM multipart_parts WHERE upload_id=?",
                              (upload_id,))["b"]

    def completion_size(self, upload: Upload, parts: list[tuple[int, str]]) -> int:
        """Total size of the object the listed parts make; InvalidPart when one is unknown."""
        known = {r["part_number"]: (r["size"], r["etag"]) for r in self.store.query(
            "SELECT part_number, size, etag FROM multipart_parts WHERE upload_id=?", (upload.upload_id,))}
        total = 0
        for number, etag in parts:
            if number not in known or known[number][1].strip('"') != etag.strip('"'):
                raise InvalidParameter(f"One or more of the specified parts could not be found (part {number}).",
                                       code="InvalidPart")
            total += known[number][0]
        return total

    def forget_upload(self, upload_id: str) -> None:
        with self.store.tx() as c:
            c.execute("DELETE FROM multipart_uploads WHERE upload_id=?", (upload_id,))
