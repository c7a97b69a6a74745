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


def _etag(etag: str | None) -> str | None:
    """ETags are kept bare (S3 quotes them on the wire)."""
    return etag.strip('"') if etag else None


class ObjectIndex:
    def __init__(self, store):
        self.store = store

    # -- objects -------------------------------------------------------------------------------
    def record_object(self, bucket: str, key: str, size: int, attrs: ObjectAttrs | None = None,
                      etag: str | None = None, checksum: tuple[str, str] | None = None,
                      parts: int | None = None) -> None:
        """A write the engine took: its size, ETag and checksum (header name, base64 value),
        and its tags and ACL (an overwrite replaces them, none given: it has none, as S3 has it)."""
        stored = f"{checksum[0].lower().removeprefix('x-amz-checksum-')} {checksum[1]}" if checksum else None
        with self.store.tx() as c:
            c.execute("INSERT INTO objects (bucket, key, size, updated_at, etag, checksum, parts) "
                      "VALUES (?,?,?,?,?,?,?) ON CONFLICT(bucket, key) DO UPDATE SET size=excluded.size, "
                      "updated_at=excluded.updated_at, etag=excluded.etag, checksum=excluded.checksum, "
                      "parts=excluded.parts", (bucket, key, size, time.time(), _etag(etag), stored, parts))
            write_object_attrs(c, bucket, key, attrs or ObjectAttrs())

    def forget_objects(self, bucket: str, keys: Iterable[str]) -> None:
        with self.store.tx() as c:
            c.executemany("DELETE FROM objects WHERE bucket=? AND key=?", [(bucket, k) for k in keys])

    def replace_bucket(self, bucket: str, found: dict[str, tuple[int, str | None]]) -> tuple[list[str], list[str]]:
        """The whole index of one bucket at once (after listing the engine: key -> (size,
        ETag)); keys that stay keep their write time and attributes. Returns (keys added,
        keys dropped)."""
        now = time.time()
        with self.store.tx() as c:
            known = {r["key"]: (r["size"], r["etag"])
                     for r in c.execute("SELECT key, size, etag FROM objects WHERE bucket=?", (bucket,))}
            gone = [k for k in known if k not in found]
            c.executemany("DELETE FROM objects WHERE bucket=? AND key=?", [(bucket, k) for k in gone])
            c.executemany("INSERT INTO objects (bucket, key, size, updated_at, etag) VALUES (?,?,?,?,?) "
                          "ON CONFLICT(bucket, key) DO UPDATE SET size=excluded.size, etag=excluded.etag",
                          [(bucket, k, s, now, _etag(e)) for k, (s, e) in found.items()
                           if known.get(k) != (s, _etag(e))])
        return [k for k in found if k not in known], gone

    def rows(self, bucket: str, after: str, prefix: str, batch: int = 1000):
        """Index rows (key, size, etag, updated_at) of `bucket` after `after` under `prefix`,
        in key order (SQLite's BINARY collation: UTF-8 byte order, as S3 lists), read in
        batches so a listing never loads a whole bucket."""
        start = max(after, prefix)
        inclusive = start == prefix and prefix > after
        while True:
            op = ">=" if inclusive else ">"
            got = self.store.query(f"SELECT key, size, etag, updated_at FROM objects WHERE bucket=? AND key {op} ? "
                                   "ORDER BY key LIMIT ?", (bucket, start, batch))
            for r in got:
                if not r["key"].startswith(prefix):
                    return
                yield dict(r)
            if len(got) < batch:
                return
            start, inclusive = got[-1]["key"], False

    def lister(self, bucket: str):
        """rows(after, prefix) of one bucket, as listing.py takes them."""
        return lambda after, prefix: self.rows(bucket, after, prefix)

    def set_etag(self, bucket: str, key: str, etag: str) -> None:
        with self.store.tx() as c:
            c.execute("UPDATE objects SET etag=? WHERE bucket=? AND key=?", (_etag(etag), bucket, key))

    def object_size(self, bucket: str, key: str) -> int | None:
        row = self.store.one("SELECT size FROM objects WHERE bucket=? AND key=?", (bucket, key))
        return row["size"] if row else None

    def row(self, bucket: str, key: str) -> dict | None:
        """The index row of one object (key, size, etag, updated_at), None if not indexed."""
        row = self.store.one("SELECT key, size, etag, updated_at, checksum, parts FROM objects "
                             "WHERE bucket=? AND key=?", (bucket, key))
        return dict(row) if row else None

    def checksum(self, bucket: str, key: str) -> tuple[str, str] | None:
        """(algorithm in lower case, base64 value) the object was stored with, if any."""
        row = self.store.one("SELECT checksum FROM objects WHERE bucket=? AND key=?", (bucket, key))
        if not row or not row["checksum"]:
            return None
        algorithm, _, value = row["checksum"].partition(" ")
        return algorithm, value

    def written_at(self, bucket: str, key: str) -> float | None:
        row = self.store.one("SELECT updated_at FROM objects WHERE bucket=? AND key=?", (bucket, key))
        return row["updated_at"] if row else None

    def objects_in(self, bucket: str) -> list[tuple[str, int, float]]:
        """(key, size, written at) of every indexed object of `bucket`."""
        return [(r["key"], r["size"], r["updated_at"]) for r in
                self.store.query("SELECT key, size, updated_at FROM objects WHERE bucket=?", (bucket,))]

    def count(self, bucket: str) -> int:
        return self.store.one("SELECT COUNT(*) AS n FROM objects WHERE bucket=?", (bucket,))["n"]

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
