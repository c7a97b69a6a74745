"""Object storage as a cloud service: buckets owned by accounts, sharing, usage and quotas.

IAM lives here, not in the engine: the engine only ever sees the cloud's root credentials.
Bucket names are global (as in S3). A bucket is private to its owner unless made
public-read (anyone may GET/HEAD its objects) or shared with another account (read:
list/get/head; read-write: also put/delete/multipart). Objects count against the bucket
owner's storage quota, whoever writes them; a write that would exceed it is refused before
a byte reaches the engine, and a multipart completion that would is aborted, so no
partial object is ever left behind.

Object sizes are indexed in the store (table `objects`) as writes succeed, so usage and
quota checks never list the engine.
"""
from __future__ import annotations

import ipaddress
import json
import logging
import re
import threading
import time
from pathlib import Path
import xml.etree.ElementTree as ET
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterable, Iterator

from ..accounts import Account
from ..errors import (AlreadyExists, BackendUnavailable, EngineError, Forbidden, InvalidParameter, InvalidState,
                      NotFound, QuotaExceeded)
from .backend import Backend, Choice
from .client import BackendClient, BackendResponse
from .signing import presign_query, uri_encode

log = logging.getLogger("pocketcloud.storage")

S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/"
ACCESS = ("private", "public-read")
LEVELS = ("read", "read-write")
# what each level of access allows; "public" is anyone, signed or not, on a public-read bucket
ALLOWED = {
    "owner": {"list", "read-object", "write", "owner"},
    "read-write": {"list", "read-object", "write"},
    "read": {"list", "read-object"},
    "public": {"read-object"},
}
READ_ACTIONS = {"s3:GetObject", "s3:GetObjectVersion", "s3:ListBucket", "s3:GetBucketLocation",
                "s3:ListBucketMultipartUploads", "s3:ListMultipartUploadParts", "s3:HeadObject"}
WRITE_ACTIONS = {"s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload", "s3:*", "s3:Put*", "s3:Delete*"}
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
    if not isinstance(key, str) or not key or len(key.encode()) > MAX_KEY_BYTES:
        raise InvalidParameter("object keys are 1-1024 bytes of UTF-8", code="KeyTooLongError"
                               if isinstance(key, str) and key else "InvalidArgument")
    return key


@dataclass
class Bucket:
    name: str
    owner: str
    access: str
    created_at: float
    grants: dict[str, str] = field(default_factory=dict)   # account id -> level

    def level_of(self, account: Account | None) -> str | None:
        """'owner', 'read-write', 'read', 'public' or None."""
        if account is not None:
            if account.id == self.owner:
                return "owner"
            if account.id in self.grants:
                return self.grants[account.id]
        return "public" if self.access == "public-read" else None

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "owner": self.owner,
            "access": self.access,
            "grants": [{"account": a, "level": lvl} for a, lvl in sorted(self.grants.items())],
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.created_at)),
        }


@dataclass
class Upload:
    upload_id: str
    bucket: str
    key: str
    initiator: str
    created_at: float


def _xml_text(elem: ET.Element | None, name: str) -> str | None:
    if elem is None:
        return None
    for child in elem:
        if child.tag.split("}")[-1] == name:
            return child.text or ""
    return None


def parse_xml(data: bytes, what: str) -> ET.Element:
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise InvalidParameter(f"{what}: DTDs are not allowed", code="MalformedXML")
    try:
        return ET.fromstring(data)
    except ET.ParseError:
        raise InvalidParameter(f"{what}: the XML is not well-formed", code="MalformedXML") from None


def children(elem: ET.Element, name: str) -> list[ET.Element]:
    return [c for c in elem if c.tag.split("}")[-1] == name]


def backend_error(resp_status: int, body: bytes) -> tuple[str, str]:
    """(code, message) of an S3 error document from the engine."""
    try:
        root = ET.fromstring(body)
        return _xml_text(root, "Code") or str(resp_status), _xml_text(root, "Message") or ""
    except ET.ParseError:
        return str(resp_status), body[:200].decode("utf-8", "replace")


class Storage:
    def __init__(self, store, accounts, config, *, backend: Backend | None = None, choice: Choice | None = None):
        self.store = store
        self.accounts = accounts
        self.config = config
        self.region = getattr(config, "region", "us-east-1") or "us-east-1"
        self._backend = backend
        self._choice = choice
        self._start_lock = threading.Lock()
        self._start_error: str | None = None
        self._start_failed_at = 0.0
        self._quota_lock = threading.Lock()
        self._reserved: dict[str, int] = {}     # account id -> bytes of writes in flight

    # -- engine -------------------------------------------------------------------------------
    @property
    def backend(self) -> Backend:
        """The running engine, started on first use; a failed start is retried at most every 10 s."""
        if self._backend is not None and self._backend.status in ("running", "restarting", "failed"):
            return self._backend
        with self._start_lock:
            if self._backend is None:
                self._backend = Backend(self.config, self._choice)
            if self._backend.status == "stopped":
                if self._start_error and time.monotonic() - self._start_failed_at < 10:
                    raise BackendUnavailable(self._start_error)
                try:
                    self._backend.start()
                    self._start_error = None
                except BackendUnavailable as exc:
                    self._start_error = str(exc)
                    self._start_failed_at = time.monotonic()
                    raise
        return self._backend

    @property
    def client(self) -> BackendClient:
        backend = self.backend
        if backend.status != "running" or backend.client is None:
            raise BackendUnavailable(f"the storage engine is {backend.status}: {backend.last_error or 'restarting'}")
        return backend.client

    def start(self) -> "Storage":
        self.backend  # noqa: B018 - starts it
        return self

    def close(self) -> None:
        if self._backend is not None:
            self._backend.stop()

    def describe(self) -> dict:
        """For /api/v1/info: which engine serves objects, and why."""
        if self._backend is None:
            return {"engine": None, "status": "not started"}
        info = self._backend.describe()
        if self._start_error and info["status"] == "stopped":
            info.update(status="unavailable", last_error=self._start_error)
        return info

    # -- buckets --------------------------------------------------------------------------------
    def _bucket_from_row(self, row) -> Bucket:
        grants = {r["grantee"]: r["level"] for r in
                  self.store.query("SELECT grantee, level FROM bucket_grants WHERE bucket=?", (row["name"],))}
        return Bucket(row["name"], row["owner"], row["access"], row["created_at"], grants)

    def find_bucket(self, name: str) -> Bucket | None:
        row = self.store.one("SELECT * FROM buckets WHERE name=?", (name,))
        return self._bucket_from_row(row) if row else None

    def get_bucket(self, name: str) -> Bucket:
        bucket = self.find_bucket(name) if isinstance(name, str) else None
        if bucket is None:
            raise NotFound(f"The specified bucket does not exist: {str(name)[:70]}", code="NoSuchBucket")
        return bucket

    def authorize(self, account: Account | None, name: str, need: str) -> Bucket:
        """The bucket if `account` (None: anonymous) may do `need` on it, else AccessDenied/NoSuchBucket.

        need: 'list' (list objects, list uploads), 'read-object' (get/head objects), 'write'
        (put/delete objects, multipart), 'owner' (delete bucket, policy, access).
        """
        bucket = self.get_bucket(name)
        level = bucket.level_of(account)
        if level is None or need not in ALLOWED[level]:
            raise Forbidden("Access Denied", code="AccessDenied")
        return bucket

    def list_buckets(self, account: Account) -> list[Bucket]:
        rows = self.store.query(
            "SELECT * FROM buckets WHERE owner=? OR name IN (SELECT bucket FROM bucket_grants WHERE grantee=?) "
            "ORDER BY name", (account.id, account.id))
        return [self._bucket_from_row(r) for r in rows]

    def all_buckets(self) -> list[Bucket]:
        return [self._bucket_from_row(r) for r in self.store.query("SELECT * FROM buckets ORDER BY name")]

    def create_bucket(self, account: Account, name: str, access: str = "private") -> Bucket:
        validate_bucket_name(name)
        if access not in ACCESS:
            raise InvalidParameter(f"access must be one of {', '.join(ACCESS)}")
        with self.store.tx() as c:
            row = c.execute("SELECT owner FROM buckets WHERE name=?", (name,)).fetchone()
            if row is not None:
                if row["owner"] == account.id:
                    raise AlreadyExists("Your previous request to create the named bucket succeeded and you "
                                        "already own it.", code="BucketAlreadyOwnedByYou")
                raise AlreadyExists("The requested bucket name is not available. The bucket namespace is shared "
                                    "by all users of the system. Please select a different name and try again.",
                                    code="BucketAlreadyExists")
            c.execute("INSERT INTO buckets (name, owner, access, created_at) VALUES (?,?,?,?)",
                      (name, account.id, access, time.time()))
        try:
            status, _, body = self.client.simple("PUT", name)
            if status not in (200, 409):
                code, msg = backend_error(status, body)
                raise EngineError(f"the storage engine refused to create {name}: {code} {msg}")
            if status == 409:
                # Only the cloud holds the engine's keys, so an existing engine bucket is an earlier
                # cloud's (e.g. the state was reset): adopt it and index what it holds.
                log.warning("bucket %s already exists in the engine: adopting it", name)
                self.rescan(name)
        except BaseException:
            with self.store.tx() as c:
                c.execute("DELETE FROM buckets WHERE name=?", (name,))
            raise
        log.info("bucket %s created by %s", name, account.name)
        return self.get_bucket(name)

    def delete_bucket(self, account: Account, name: str, force: bool = False) -> None:
        bucket = self.authorize(account, name, "owner")
        client = self.client
        if force:
            self.empty_bucket(bucket.name)
        else:
            n = self.store.one("SELECT COUNT(*) AS n FROM objects WHERE bucket=?", (name,))["n"]
            if n:
                raise InvalidState("The bucket you tried to delete is not empty", code="BucketNotEmpty")
        for up in self.store.query("SELECT upload_id, key FROM multipart_uploads WHERE bucket=?", (name,)):
            client.simple("DELETE", name, up["key"], [("uploadId", up["upload_id"])])
        status, _, body = client.simple("DELETE", name)
        if (status == 409 and not self.list_objects_page(name, max_keys=1)["objects"]
                and self.backend.prune_empty_dirs(name)):
            # The stand-in keeps a key's folders after its last object goes and then calls the
            # bucket not empty; with no object left, those empty folders are all that remains.
            status, _, body = client.simple("DELETE", name)
        if status not in (200, 204, 404):
            code, msg = backend_error(status, body)
            if code == "BucketNotEmpty":
                raise InvalidState("The bucket you tried to delete is not empty", code="BucketNotEmpty")
            raise EngineError(f"the storage engine refused to delete {name}: {code} {msg}")
        with self.store.tx() as c:
            c.execute("DELETE FROM buckets WHERE name=?", (name,))
        log.info("bucket %s deleted by %s", name, account.name)

    def empty_bucket(self, name: str) -> int:
        """Delete every object of a bucket in the engine (for forced deletes); returns the count."""
        deleted = 0
        while True:
            keys = [o["key"] for o in self.list_objects_page(name, max_keys=1000)["objects"]]
            if not keys:
                break
            body = "<Delete><Quiet>true</Quiet>" + "".join(
                f"<Object><Key>{_esc(k)}</Key></Object>" for k in keys) + "</Delete>"
            status, _, data = self.client.simple("POST", name, None, [("delete", "")],
                                                 {"content-type": "application/xml"}, body.encode())
            if status != 200:
                code, msg = backend_error(status, data)
                raise EngineError(f"could not empty bucket {name}: {code} {msg}")
            with self.store.tx() as c:
                c.executemany("DELETE FROM objects WHERE bucket=? AND key=?", [(name, k) for k in keys])
            deleted += len(keys)
        with self.store.tx() as c:
            c.execute("DELETE FROM objects WHERE bucket=?", (name,))
        return deleted

    def rescan(self, name: str) -> dict:
        """Rebuild the size index of one bucket from the engine's listing."""
        sizes: dict[str, int] = {}
        token = None
        while True:
            page = self.list_objects_page(name, max_keys=1000, continuation_token=token)
            for o in page["objects"]:
                sizes[o["key"]] = o["size"]
            token = page.get("next_token")
            if not token:
                break
        now = time.time()
        with self.store.tx() as c:
            c.execute("DELETE FROM objects WHERE bucket=?", (name,))
            c.executemany("INSERT INTO objects (bucket, key, size, updated_at) VALUES (?,?,?,?)",
                          [(name, k, s, now) for k, s in sizes.items()])
        return self.usage(name)

    # -- access and sharing -------------------------------------------------------------------
    def set_access(self, account: Account, name: str, access: str) -> Bucket:
        self.authorize(account, name, "owner")
        if access not in ACCESS:
            raise InvalidParameter(f"access must be one of {', '.join(ACCESS)}", code="InvalidArgument")
        with self.store.tx() as c:
            c.execute("UPDATE buckets SET access=? WHERE name=?", (access, name))
        return self.get_bucket(name)

    def _resolve_account(self, ref: str) -> Account:
        ref = str(ref)
        m = re.fullmatch(r"arn:aws:iam::(\d{12}):(root|user/.+)", ref)
        if m:
            ref = m.group(1)
        try:
            return self.accounts.get(ref) if re.fullmatch(r"\d{12}", ref) else self.accounts.by_name(ref)
        except NotFound:
            raise InvalidParameter(f"no account {ref[:70]!r} to share with", code="InvalidArgument") from None

    def grant(self, account: Account, name: str, grantee: str, level: str | None) -> Bucket:
        """Share `name` with another account (by name, 12-digit id or IAM ARN); level None revokes."""
        bucket = self.authorize(account, name, "owner")
        other = self._resolve_account(grantee)
        if other.id == bucket.owner:
            raise InvalidParameter("the owner already has full access to its bucket", code="InvalidArgument")
        if level is not None and level not in LEVELS:
            raise InvalidParameter(f"level must be one of {', '.join(LEVELS)}", code="InvalidArgument")
        with self.store.tx() as c:
            if level is None:
                c.execute("DELETE FROM bucket_grants WHERE bucket=? AND grantee=?", (name, other.id))
            else:
                c.execute("INSERT INTO bucket_grants (bucket, grantee, level, created_at) VALUES (?,?,?,?) "
                          "ON CONFLICT(bucket, grantee) DO UPDATE SET level=excluded.level",
                          (name, other.id, level, time.time()))
        return self.get_bucket(name)

    def policy_document(self, bucket: Bucket) -> str | None:
        """The bucket's access as an S3 bucket policy (None: private, nothing shared)."""
        statements = []
        arn = f"arn:aws:s3:::{bucket.name}"
        if bucket.access == "public-read":
            statements.append({"Sid": "PublicRead", "Effect": "Allow", "Principal": {"AWS": ["*"]},
                               "Action": ["s3:GetObject"], "Resource": [f"{arn}/*"]})
        for account_id, level in sorted(bucket.grants.items()):
            actions = ["s3:GetObject", "s3:ListBucket"]
            if level == "read-write":
                actions += ["s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]
            statements.append({"Sid": f"Grant{level.title().replace('-', '')}{account_id}", "Effect": "Allow",
                               "Principal": {"AWS": [f"arn:aws:iam::{account_id}:root"]},
                               "Action": actions, "Resource": [arn, f"{arn}/*"]})
        if not statements:
            return None
        return json.dumps({"Version": "2012-10-17", "Statement": statements})

    def apply_policy(self, account: Account, name: str, text: str | None) -> Bucket:
        """Set access from a bucket policy. Understood: public-read (Principal '*', read actions
        on objects) and Allow statements for other accounts (read, or read-write when any write
        action is allowed). Anything else (Deny, Condition, other principals) is refused."""
        bucket = self.authorize(account, name, "owner")
        access, grants = "private", {}
        if text:
            try:
                doc = json.loads(text)
            except ValueError:
                raise InvalidParameter("the policy is not valid JSON", code="MalformedPolicy") from None
            statements = doc.get("Statement") if isinstance(doc, dict) else None
            if isinstance(statements, dict):
                statements = [statements]
            if not isinstance(statements, list) or not statements:
                raise InvalidParameter("the policy needs a Statement list", code="MalformedPolicy")
            for st in statements:
                if not isinstance(st, dict) or st.get("Effect") != "Allow" or "Condition" in st or \
                        "NotPrincipal" in st or "NotAction" in st:
                    raise InvalidParameter("only Allow statements without conditions are supported (public-read, "
                                           "or sharing with another account)", code="MalformedPolicy")
                actions = st.get("Action", [])
                actions = {actions} if isinstance(actions, str) else set(actions)
                unknown = actions - READ_ACTIONS - WRITE_ACTIONS
                if unknown or not actions:
                    raise InvalidParameter(f"unsupported actions in policy: {', '.join(sorted(unknown)) or 'none'}",
                                           code="MalformedPolicy")
                resources = st.get("Resource", [])
                resources = [resources] if isinstance(resources, str) else resources
                for r in resources:
                    if not isinstance(r, str) or r.split("/")[0] != f"arn:aws:s3:::{name}":
                        raise InvalidParameter(f"policy resource {str(r)[:80]!r} is not this bucket",
                                               code="MalformedPolicy")
                principal = st.get("Principal")
                if isinstance(principal, dict):
                    principal = principal.get("AWS")
                principals = [principal] if isinstance(principal, str) else (principal or [])
                for p in principals:
                    if p == "*":
                        if actions & WRITE_ACTIONS:
                            raise InvalidParameter("public access can only be read-only (public-read)",
                                                   code="MalformedPolicy")
                        access = "public-read"
                    else:
                        other = self._resolve_account(p)
                        if other.id == bucket.owner:
                            continue
                        level = "read-write" if actions & WRITE_ACTIONS else "read"
                        if grants.get(other.id) != "read-write":
                            grants[other.id] = level
                if not principals:
                    raise InvalidParameter("each statement needs a Principal", code="MalformedPolicy")
        with self.store.tx() as c:
            c.execute("UPDATE buckets SET access=? WHERE name=?", (access, name))
            c.execute("DELETE FROM bucket_grants WHERE bucket=?", (name,))
            c.executemany("INSERT INTO bucket_grants (bucket, grantee, level, created_at) VALUES (?,?,?,?)",
                          [(name, a, lvl, time.time()) for a, lvl in grants.items()])
        return self.get_bucket(name)

    def bucket_internals(self, account: Account, name: str) -> dict:
        """Where a bucket really lives: the engine, the bytes on the host's disk (walked live),
        and the path a request takes."""
        bucket = self.authorize(account, name, "list")
        engine = {k: v for k, v in self.describe().items() if k != "last_error"}
        on_disk = None
        data_dir = engine.get("data_dir")
        if data_dir:
            folder = Path(data_dir) / bucket.name
            files = [p for p in folder.rglob("*") if p.is_file()] if folder.is_dir() else []
            on_disk = {"path": str(folder), "files": len(files),
                       "bytes": sum(p.stat().st_size for p in files),
                       "note": ("each object is a plain file under this folder, its key the relative path"
                                if engine.get("engine") == "rclone" else
                                "MinIO's own on-disk format: object data and xl.meta metadata per key")}
        return {
            "bucket": bucket.name,
            "owner": bucket.owner,
            "access": bucket.access,
            "engine": engine,
            "usage": self.usage(bucket.name),
            "bytes_on_host": on_disk or {"path": None, "note": f"held by the engine at {engine.get('endpoint')}, "
                                                               "not on this host's filesystem"},
            "request_path": [
                "client: signs the request with its pocketcloud key (AWS Signature V4)",
                f"pocketcloud S3 gateway on {self.config.endpoint_url}: verifies the signature, checks ownership, "
                "sharing and quota",
                f"{engine.get('name')} at {engine.get('endpoint')}: the request re-signed with the engine's root "
                "credentials, bodies streamed both ways",
                f"storage: {on_disk['path'] if on_disk else 'the engine'}",
            ],
            "flat_namespace": "keys like 'a/b/c.txt' are whole names; folders are only a listing convention "
                              "(prefix + delimiter)",
        }

    # -- usage and quota ---------------------------------------------------------------------------
    def usage(self, name: str) -> dict:
        row = self.store.one("SELECT COUNT(*) AS n, COALESCE(SUM(size), 0) AS b FROM objects WHERE bucket=?", (name,))
        return {"objects": row["n"], "bytes": row["b"]}

    def _owner_bytes(self, owner: str) -> int:
        return self.store.one("SELECT COALESCE(SUM(o.size), 0) AS b FROM objects o JOIN buckets b "
                              "ON b.name = o.bucket WHERE b.owner=?", (owner,))["b"]

    def _pending_bytes(self, owner: str) -> int:
        return self.store.one(
            "SELECT COALESCE(SUM(p.size), 0) AS b FROM multipart_parts p JOIN multipart_uploads u "
            "ON u.upload_id = p.upload_id JOIN buckets b ON b.name = u.bucket WHERE b.owner=?", (owner,))["b"]

    def account_usage(self, account_id: str) -> dict:
        row = self.store.one(
            "SELECT COUNT(DISTINCT b.name) AS buckets, COUNT(o.key) AS n, COALESCE(SUM(o.size), 0) AS bytes "
            "FROM buckets b LEFT JOIN objects o ON o.bucket = b.name WHERE b.owner=?", (account_id,))
        quota = self.accounts.get(account_id).storage_quota
        return {"buckets": row["buckets"], "objects": row["n"], "bytes": row["bytes"],
                "multipart_pending_bytes": self._pending_bytes(account_id), "quota_bytes": quota}

    def object_size(self, bucket: str, key: str) -> int | None:
        row = self.store.one("SELECT size FROM objects WHERE bucket=? AND key=?", (bucket, key))
        return row["size"] if row else None

    @contextmanager
    def reserve(self, bucket: Bucket, size: int, *, replacing: str | None = None,
                upload_id: str | None = None) -> Iterator[None]:
        """Hold `size` bytes of the bucket owner's quota while a write is in flight.

        `replacing`: the key being overwritten (its current size is freed by the write).
        Refused with QuotaExceeded, before anything reaches the engine, when the owner's
        stored bytes + in-progress multipart parts + other writes in flight + size
        would pass the quota.
        """
        owner = bucket.owner
        with self._quota_lock:
            quota = self.accounts.get(owner).storage_quota
            if quota is not None:
                used = self._owner_bytes(owner)
                pending = self._pending_bytes(owner)
                freed = (self.object_size(bucket.name, replacing) or 0) if replacing is not None else 0
                if upload_id is not None:  # a completion: its own parts become the object
                    pending -= self.store.one("SELECT COALESCE(SUM(size),0) AS b FROM multipart_parts "
                                              "WHERE upload_id=?", (upload_id,))["b"]
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
            with self._quota_lock:
                self._reserved[owner] -= size
                if not self._reserved[owner]:
                    del self._reserved[owner]

    def record_object(self, bucket: str, key: str, size: int) -> None:
        with self.store.tx() as c:
            c.execute("INSERT INTO objects (bucket, key, size, updated_at) VALUES (?,?,?,?) "
                      "ON CONFLICT(bucket, key) DO UPDATE SET size=excluded.size, updated_at=excluded.updated_at",
                      (bucket, key, size, time.time()))

    def forget_objects(self, bucket: str, keys: Iterable[str]) -> None:
        with self.store.tx() as c:
            c.executemany("DELETE FROM objects WHERE bucket=? AND key=?", [(bucket, k) for k in keys])

    # -- multipart bookkeeping ----------------------------------------------------------------------
    def record_upload(self, upload_id: str, bucket: str, key: str, initiator: str) -> None:
        with self.store.tx() as c:
            c.execute("INSERT OR REPLACE INTO multipart_uploads (upload_id, bucket, key, initiator, created_at) "
                      "VALUES (?,?,?,?,?)", (upload_id, bucket, key, initiator, time.time()))

    def get_upload(self, upload_id: str, bucket: str, key: str) -> Upload:
        row = self.store.one("SELECT * FROM multipart_uploads WHERE upload_id=?", (upload_id,))
        if row is None or row["bucket"] != bucket or row["key"] != key:
            raise NotFound("The specified multipart upload does not exist. The upload ID may be invalid, or the "
                           "upload may have been aborted or completed.", code="NoSuchUpload")
        return Upload(row["upload_id"], row["bucket"], row["key"], row["initiator"], row["created_at"])

    def record_part(self, upload_id: str, number: int, size: int, etag: str) -> None:
        with self.store.tx() as c:
            c.execute("INSERT INTO multipart_parts (upload_id, part_number, size, etag, updated_at) VALUES (?,?,?,?,?) "
                      "ON CONFLICT(upload_id, part_number) DO UPDATE SET size=excluded.size, etag=excluded.etag, "
                      "updated_at=excluded.updated_at", (upload_id, number, size, etag, time.time()))

    def part_size(self, upload_id: str, number: int) -> int:
        row = self.store.one("SELECT size FROM multipart_parts WHERE upload_id=? AND part_number=?",
                             (upload_id, number))
        return row["size"] if row else 0

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

    # -- object operations for front ends that are not the S3 gateway (REST, CLI) -------------------
    def list_objects_page(self, name: str, *, prefix: str = "", delimiter: str = "", max_keys: int = 1000,
                          continuation_token: str | None = None, start_after: str | None = None) -> dict:
        q = [("list-type", "2"), ("max-keys", str(max_keys))]
        if prefix:
            q.append(("prefix", prefix))
        if delimiter:
            q.append(("delimiter", delimiter))
        if continuation_token:
            q.append(("continuation-token", continuation_token))
        if start_after:
            q.append(("start-after", start_after))
        status, _, data = self.client.simple("GET", name, None, q)
        if status != 200:
            code, msg = backend_error(status, data)
            if code == "NoSuchBucket":
                raise NotFound(f"The specified bucket does not exist: {name}", code="NoSuchBucket")
            raise EngineError(f"listing {name} failed: {code} {msg}")
        root = parse_xml(data, "ListObjectsV2")
        objects = [{"key": _xml_text(c, "Key"), "size": int(_xml_text(c, "Size") or 0),
                    "etag": (_xml_text(c, "ETag") or "").strip('"'), "last_modified": _xml_text(c, "LastModified")}
                   for c in children(root, "Contents")]
        prefixes = [_xml_text(p, "Prefix") for p in children(root, "CommonPrefixes")]
        truncated = _xml_text(root, "IsTruncated") == "true"
        return {"objects": objects, "prefixes": prefixes,
                "next_token": _xml_text(root, "NextContinuationToken") if truncated else None}

    def list_objects(self, account: Account, name: str, **kw) -> dict:
        self.authorize(account, name, "list")
        return self.list_objects_page(name, **kw)

    def put_object(self, account: Account | None, name: str, key: str, body: bytes | Iterable[bytes],
                   length: int, headers: dict[str, str] | None = None) -> tuple[int, dict, bytes]:
        """Stream an object into the engine under quota; returns the engine's (status, headers, body)."""
        bucket = self.authorize(account, name, "write")
        validate_key(key)
        with self.reserve(bucket, length, replacing=key):
            status, hdrs, data = self._send(self.client.request("PUT", name, key, (), headers or {}, body, length))
            if status == 200:
                self.record_object(name, key, length)
        return status, hdrs, data

    def get_object(self, account: Account | None, name: str, key: str,
                   headers: dict[str, str] | None = None, method: str = "GET") -> BackendResponse:
        """The engine's streaming response (read it with .iter(), or .close() it)."""
        self.authorize(account, name, "read-object")
        validate_key(key)
        return self.client.request(method, name, key, (), headers or {})

    def delete_object(self, account: Account, name: str, key: str) -> None:
        self.authorize(account, name, "write")
        validate_key(key)
        status, _, data = self.client.simple("DELETE", name, key)
        if status not in (200, 204, 404):
            code, msg = backend_error(status, data)
            raise EngineError(f"deleting {name}/{key} failed: {code} {msg}")
        self.forget_objects(name, [key])

    def presign(self, account: Account, key_id: str, secret: str, name: str, key: str, *, expires: int = 3600,
                method: str = "GET", endpoint: str | None = None) -> str:
        """A presigned URL on the cloud's endpoint, signed with the caller's own key."""
        self.authorize(account, name, "write" if method == "PUT" else "read-object")
        validate_key(key)
        if not isinstance(expires, int) or not 1 <= expires <= 604800:
            raise InvalidParameter("expires must be between 1 and 604800 seconds")
        if method not in ("GET", "PUT", "HEAD", "DELETE"):
            raise InvalidParameter("method must be GET, PUT, HEAD or DELETE")
        base = (endpoint or self.config.endpoint_url).rstrip("/")
        host = base.split("://", 1)[1].split("/", 1)[0]
        path = f"/{uri_encode(name)}/{uri_encode(key, keep_slash=True)}"
        qs = presign_query(method, host, path, [], access_key=key_id, secret_key=secret, region=self.region,
                           expires=expires)
        return f"{base}{path}?{qs}"

    @staticmethod
    def _send(resp: BackendResponse) -> tuple[int, dict, bytes]:
        data = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.headers}, data


def _esc(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
