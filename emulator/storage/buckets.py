"""Buckets as the cloud records them: names, owners, public access and shares (table
`buckets`, `bucket_grants`), and their settings (settings.py: ACL, policy document, public
access block, ownership, tags, CORS, lifecycle, versioning). Who may do what with them is
policy.py's; the engine only ever holds the data.
"""
from __future__ import annotations

import ipaddress
import re
import time
from dataclasses import dataclass, field

from ..errors import AlreadyExists, InvalidParameter, NotFound
from ..xmldoc import xml_safe
from . import policy
from .settings import Settings

ACCESS = ("private", "public-read")
LEVELS = ("read", "read-write")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
MAX_KEY_BYTES = 1024


def validate_bucket_name(name) -> str:
    """S3's bucket naming rules (the general-purpose bucket ones)."""
    why = None
    if not isinstance(name, str) or not _BUCKET.match(name):
        why = "3-63 characters: lowercase letters, digits, '.' and '-', starting and ending with a letter or digit"
    elif ".." in name or ".-" in name or "-." in name:
        why = "no two adjacent periods, and no period next to a hyphen"
    elif name.startswith(("xn--", "sthree-", "amzn-s3-demo-")) or name.endswith(("-s3alias", "--ol-s3", "--x-s3")):
        why = "the prefixes xn--, sthree- and the suffixes -s3alias, --ol-s3 are reserved"
    else:
        try:
            ipaddress.IPv4Address(name)
            why = "a bucket name must not look like an IP address"
        except ValueError:
            pass
    if why:
        raise InvalidParameter(f"The specified bucket is not valid ({str(name)[:70]!r}): {why}",
                               code="InvalidBucketName")
    return name


def validate_key(key) -> str:
    """1-1024 bytes of UTF-8; no '.' or '..' segment, no character XML cannot carry.

    Engines that store keys as paths (the stand-in, MinIO) would resolve a dot segment:
    'a/../../other-bucket/k' names another bucket's object there, so pocketcloud refuses
    such keys itself rather than trust each engine to.
    """
    if not isinstance(key, str) or not key or len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise InvalidParameter("object keys are 1-1024 bytes of UTF-8", code="KeyTooLongError"
                               if isinstance(key, str) and key else "InvalidArgument")
    segments = key.split("/")
    if any(seg in (".", "..") for seg in segments):
        raise InvalidParameter(f"object key {key[:80]!r}: '.' and '..' path segments are not allowed",
                               code="InvalidArgument")
    # (empty segments are fine: path-backed engines get keynames.py's names.) What no listing
    # could name in XML is refused here rather than as a 500.
    if xml_safe(key) != key:
        raise InvalidParameter("object keys may not hold control characters that XML cannot carry",
                               code="InvalidArgument")
    return key


@dataclass
class Bucket:
    name: str
    owner: str
    access: str
    created_at: float
    grants: dict[str, str] = field(default_factory=dict)   # account id -> level
    settings: dict = field(default_factory=dict)           # kind -> document (settings.py)

    @property
    def acl(self) -> str:
        """The bucket's canned ACL."""
        return (self.settings.get("acl") or {}).get("canned") or "private"

    def level_of(self, account) -> str | None:
        """'owner', 'read-write', 'read', 'public' or None."""
        return policy.level_of(self, account)

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "owner": self.owner,
            "access": self.access,
            "grants": [{"account": a, "level": lvl} for a, lvl in sorted(self.grants.items())],
            "acl": self.acl,
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.created_at)),
        }


class BucketRecords:
    """The buckets table and its grants."""

    def __init__(self, store):
        self.store = store
        self.settings = Settings(store)

    def _from_row(self, row) -> Bucket:
        grants = {r["grantee"]: r["level"] for r in
                  self.store.query("SELECT grantee, level FROM bucket_grants WHERE bucket=?", (row["name"],))}
        return Bucket(row["name"], row["owner"], row["access"], row["created_at"], grants,
                      self.settings.all_of(row["name"]))

    def find(self, name: str) -> Bucket | None:
        row = self.store.one("SELECT * FROM buckets WHERE name=?", (name,))
        return self._from_row(row) if row else None

    def get(self, name) -> Bucket:
        bucket = self.find(name) if isinstance(name, str) else None
        if bucket is None:
            raise NotFound(f"The specified bucket does not exist: {str(name)[:70]}", code="NoSuchBucket")
        return bucket

    def visible_to(self, account_id: str) -> list[Bucket]:
        """Owned and shared buckets."""
        rows = self.store.query(
            "SELECT * FROM buckets WHERE owner=? OR name IN (SELECT bucket FROM bucket_grants WHERE grantee=?) "
            "ORDER BY name", (account_id, account_id))
        return [self._from_row(r) for r in rows]

    def all(self) -> list[Bucket]:
        return [self._from_row(r) for r in self.store.query("SELECT * FROM buckets ORDER BY name")]

    def claim(self, name: str, owner: str, access: str) -> None:
        """Record a new bucket; the name is global, as in S3."""
        validate_bucket_name(name)
        if access not in ACCESS:
            raise InvalidParameter(f"access must be one of {', '.join(ACCESS)}")
        with self.store.tx() as c:
            row = c.execute("SELECT owner FROM buckets WHERE name=?", (name,)).fetchone()
            if row is not None:
                if row["owner"] == owner:
                    raise AlreadyExists("Your previous request to create the named bucket succeeded and you "
                                        "already own it.", code="BucketAlreadyOwnedByYou")
                raise AlreadyExists("The requested bucket name is not available. The bucket namespace is shared "
                                    "by all users of the system. Please select a different name and try again.",
                                    code="BucketAlreadyExists")
            c.execute("INSERT INTO buckets (name, owner, access, created_at) VALUES (?,?,?,?)",
                      (name, owner, access, time.time()))

    def remove(self, name: str) -> None:
        with self.store.tx() as c:
            c.execute("DELETE FROM buckets WHERE name=?", (name,))

    def set_access(self, name: str, access: str) -> None:
        if access not in ACCESS:
            raise InvalidParameter(f"access must be one of {', '.join(ACCESS)}", code="InvalidArgument")
        with self.store.tx() as c:
            c.execute("UPDATE buckets SET access=? WHERE name=?", (access, name))

    def set_grant(self, name: str, grantee: str, level: str | None) -> None:
        if level is not None and level not in LEVELS:
            raise InvalidParameter(f"level must be one of {', '.join(LEVELS)}", code="InvalidArgument")
        with self.store.tx() as c:
            if level is None:
                c.execute("DELETE FROM bucket_grants WHERE bucket=? AND grantee=?", (name, grantee))
            else:
                c.execute("INSERT INTO bucket_grants (bucket, grantee, level, created_at) VALUES (?,?,?,?) "
                          "ON CONFLICT(bucket, grantee) DO UPDATE SET level=excluded.level",
                          (name, grantee, level, time.time()))

    def replace_access(self, name: str, access: str, grants: dict[str, str]) -> None:
        """Public access and every share at once (a bucket policy replaces them all)."""
        with self.store.tx() as c:
            c.execute("UPDATE buckets SET access=? WHERE name=?", (access, name))
            c.execute("DELETE FROM bucket_grants WHERE bucket=?", (name,))
            c.executemany("INSERT INTO bucket_grants (bucket, grantee, level, created_at) VALUES (?,?,?,?)",
                          [(name, a, lvl, time.time()) for a, lvl in grants.items()])
