"""Object storage as a cloud service: the `Storage` facade, the only way to the S3 engine.

IAM lives here, not in the engine: the engine only ever sees the cloud's root credentials.
Each S3 operation is one method that authorizes (policy.py), holds quota (quotas.py), calls
the engine (engine.py) and keeps the size index (index.py) together; bucket records are
buckets.py's. Object and multipart operations are in objects.py, bucket-level ones here.

Bucket names are global (as in S3). Objects count against the bucket owner's storage
quota, whoever writes them; a write that would exceed it is refused before a byte reaches
the engine, and a multipart completion that would is aborted, so no partial object is
ever left behind.
"""
from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..accounts import Account
from ..errors import BackendUnavailable, EngineError, Forbidden, InvalidParameter, InvalidState, NotFound
from ..sigv4 import presign_query, uri_encode
from . import policy
from .backend import Backend, Choice
from .buckets import Bucket, BucketRecords, validate_key
from .client import BackendClient
from .engine import Engine
from .engine_admin import EngineAdmin
from .index import ObjectIndex
from .objects import ObjectOperations
from .quotas import Quotas

log = logging.getLogger("pocketcloud.storage")

MAX_POLICY = 20 * 1024


@dataclass(frozen=True)
class BucketAcl:
    """A bucket's access as S3 ACL grants show it."""
    owner: Account
    public_read: bool
    grants: dict[str, str]        # account id -> level ('read', 'read-write')


class Storage(ObjectOperations, EngineAdmin):
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
        self.buckets = BucketRecords(store)
        self.index = ObjectIndex(store)
        self.quotas = Quotas(self.index, accounts)
        self.engine = Engine(self._engine_client)

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

    def _engine_client(self) -> BackendClient:
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
    def find_bucket(self, name: str) -> Bucket | None:
        return self.buckets.find(name)

    def get_bucket(self, name: str) -> Bucket:
        return self.buckets.get(name)

    def authorize(self, account: Account | None, name: str, need: str) -> Bucket:
        """The bucket if `account` (None: anonymous) may do `need` on it (see policy.check),
        else AccessDenied/NoSuchBucket."""
        bucket = self.buckets.get(name)
        policy.check(bucket, account, need)
        return bucket

    def _owner(self, account: Account | None, name: str) -> Bucket:
        return self.authorize(account, name, "owner")

    def list_buckets(self, account: Account | None) -> list[Bucket]:
        """Owned and shared buckets; anonymous callers have none to list."""
        if account is None:
            raise Forbidden("Access Denied", code="AccessDenied")
        return self.buckets.visible_to(account.id)

    def all_buckets(self) -> list[Bucket]:
        return self.buckets.all()

    def head_bucket(self, account: Account | None, name: str) -> Bucket:
        return self.authorize(account, name, "list")

    def create_bucket(self, account: Account | None, name: str, access: str = "private",
                      configuration: Callable[[], object] | None = None) -> Bucket:
        """A new bucket owned by `account`; `configuration` reads what the request says about it
        (S3's CreateBucketConfiguration) once the caller is known."""
        if account is None:
            raise Forbidden("Access Denied", code="AccessDenied")
        if configuration:
            configuration()
        self.buckets.claim(name, account.id, access)
        try:
            if not self.engine.create_bucket(name):
                # Only the cloud holds the engine's keys, so an existing engine bucket is an earlier
                # cloud's (e.g. the state was reset): adopt it and index what it holds.
                log.warning("bucket %s already exists in the engine: adopting it", name)
                self.rescan(name)
        except BaseException:
            self.buckets.remove(name)
            raise
        log.info("bucket %s created by %s", name, account.name)
        return self.buckets.get(name)

    def delete_bucket(self, account: Account | None, name: str, force: bool = False) -> None:
        bucket = self._owner(account, name)
        if force:
            self.empty_bucket(bucket.name)
        elif self.index.count(name):
            raise InvalidState("The bucket you tried to delete is not empty", code="BucketNotEmpty")
        for upload_id, key in self.index.uploads_in(name):
            self.engine.abort(name, key, upload_id)
        reply = self.engine.delete_bucket(name)
        if (reply.status == 409 and not self.engine.list_page(name, max_keys=1)["objects"]
                and self.backend.prune_empty_dirs(name)):
            # The stand-in keeps a key's folders after its last object goes and then calls the
            # bucket not empty; with no object left, those empty folders are all that remains.
            reply = self.engine.delete_bucket(name)
        if reply.status not in (200, 204, 404):
            code, msg = reply.error()
            if code == "BucketNotEmpty":
                raise InvalidState("The bucket you tried to delete is not empty", code="BucketNotEmpty")
            raise EngineError(f"the storage engine refused to delete {name}: {code} {msg}")
        self.buckets.remove(name)
        log.info("bucket %s deleted by %s", name, account.name)

    # -- access, sharing, policy, ACL -------------------------------------------------------------
    def set_access(self, account: Account | None, name: str, access: str) -> Bucket:
        self._owner(account, name)
        self.buckets.set_access(name, access)
        return self.buckets.get(name)

    def _resolve_account(self, ref) -> str:
        ref = policy.account_ref(ref)
        try:
            return (self.accounts.get(ref) if re.fullmatch(r"\d{12}", ref) else self.accounts.by_name(ref)).id
        except NotFound:
            raise InvalidParameter(f"no account {ref[:70]!r} to share with", code="InvalidArgument") from None

    def grant(self, account: Account | None, name: str, grantee: str, level: str | None) -> Bucket:
        """Share `name` with another account (by name, 12-digit id or IAM ARN); level None revokes."""
        bucket = self._owner(account, name)
        other = self._resolve_account(grantee)
        if other == bucket.owner:
            raise InvalidParameter("the owner already has full access to its bucket", code="InvalidArgument")
        self.buckets.set_grant(name, other, level)
        return self.buckets.get(name)

    def get_policy(self, account: Account | None, name: str) -> str:
        doc = policy.document(self._owner(account, name))
        if doc is None:
            raise NotFound("The bucket policy does not exist", code="NoSuchBucketPolicy")
        return doc

    def policy_document(self, bucket: Bucket) -> str | None:
        return policy.document(bucket)

    def put_policy(self, account: Account | None, name: str, document: Callable[[], str]) -> Bucket:
        """Set access and shares from a bucket policy (see policy.parse); `document` is read
        only once the caller is known to own the bucket."""
        bucket = self._owner(account, name)
        access, grants = policy.parse(document(), bucket, self._resolve_account)
        self.buckets.replace_access(name, access, grants)
        return self.buckets.get(name)

    def delete_policy(self, account: Account | None, name: str) -> Bucket:
        self._owner(account, name)
        self.buckets.replace_access(name, "private", {})
        return self.buckets.get(name)

    def get_acl(self, account: Account | None, name: str) -> BucketAcl:
        bucket = self._owner(account, name)
        return BucketAcl(self.accounts.get(bucket.owner), bucket.access == "public-read", dict(bucket.grants))

    def put_acl(self, account: Account | None, name: str, acl: Callable[[], str]) -> Bucket:
        """A canned ACL (policy.canned_access); `acl` reads the request once ownership is checked."""
        self._owner(account, name)
        self.buckets.set_access(name, acl())
        return self.buckets.get(name)

    # -- usage ------------------------------------------------------------------------------------
    def usage(self, name: str) -> dict:
        return self.index.usage(name)

    def account_usage(self, account_id: str) -> dict:
        return {**self.index.owner_totals(account_id), "quota_bytes": self.accounts.get(account_id).storage_quota}

    def object_size(self, bucket: str, key: str) -> int | None:
        return self.index.object_size(bucket, key)

    def bucket_internals(self, account: Account | None, name: str, key: str | None = None) -> dict:
        """Where a bucket really lives: the engine, the bytes on the host's disk (walked live),
        and the path a request takes; with a key, where that object is."""
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
        internals = {
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
        return self.engine_view(internals, key)  # the engine's own view: Ceph's pool, PGs, OSDs (engine_admin.py)

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
