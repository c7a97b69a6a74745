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
import threading
import time
from pathlib import Path
from typing import Callable

from ..accounts import Account
from ..errors import BackendUnavailable, EngineError, Forbidden, InvalidParameter, InvalidState
from ..sigv4 import presign_query, uri_encode
from . import policy
from .access import AccessOperations
from .backend import ENGINE_NAMES, Backend, Choice
from .buckets import Bucket, BucketRecords, validate_bucket_name, validate_key
from .client import BackendClient
from .conditions import KeyLocks
from .configuration import SettingsOperations
from .doubt import KeysInDoubt
from .engine import Engine
from .expiry import LifecycleWorker
from .engine_admin import EngineAdmin
from .index import ObjectIndex
from .journal import StorageJournal
from .multipart import MultipartOperations
from .objects import ObjectOperations
from .quotas import Quotas

log = logging.getLogger("pocketcloud.storage")

MAX_POLICY = 20 * 1024


class Storage(ObjectOperations, MultipartOperations, AccessOperations, SettingsOperations, EngineAdmin):
    def __init__(self, store, accounts, config, *, backend: Backend | None = None, choice: Choice | None = None,
                 boot_id: str | None = None):
        self.store = store
        self.journal = StorageJournal(store, boot_id, getattr(config, "fault", "") or "")
        self.accounts = accounts
        self.config = config
        self.region = getattr(config, "region", "us-east-1") or "us-east-1"
        self._backend = backend
        self._choice = choice
        self._start_lock = threading.Lock()
        self._start_error: str | None = None
        self._start_failed_at = 0.0
        self._engine_seen: tuple | None = None  # the engine start whose lost uploads were forgotten
        self.buckets = BucketRecords(store)
        self.settings = self.buckets.settings
        self.index = ObjectIndex(store)
        self.quotas = Quotas(self.index, accounts)
        self.engine = Engine(self._engine_client, lambda: self.keys_are_paths)
        self.key_locks = KeyLocks()
        self.in_doubt = KeysInDoubt(self.engine, self.index, self.settings, self.buckets, self.key_locks)
        self.lifecycle_day = float(getattr(config, "lifecycle_day", 86400) or 86400)
        self.lifecycle = LifecycleWorker(self, interval=float(getattr(config, "lifecycle_interval", 60) or 60),
                                         day=self.lifecycle_day)

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
        backend = self.backend
        if backend.migrated:
            self._restore_folder_markers()
        return self

    def _restore_folder_markers(self) -> None:
        """Empty 'dir/' objects the gateway kept in its index only before keys were encoded
        (the stand-in could not hold them): written to the engine now that it can."""
        for bucket in self.buckets.all():
            for key, size, _ in self.index.objects_in(bucket.name):
                if key.endswith("/") and size == 0 and self.engine.size(bucket.name, key) is None:
                    self.engine.put(bucket.name, key, {}, b"", 0).raise_for_status(f"restoring {bucket.name}/{key}")

    def reconcile_index(self) -> dict:
        """The index of every bucket checked against the engine, both ways (see rescan); at
        start, and on demand. Skipped while the engine is not serving."""
        report = {"added": 0, "dropped": 0, "strays": 0}
        try:
            self._engine_client()
        except BackendUnavailable as exc:
            log.warning("reconcile: object index not checked: %s", exc)
            return report
        for bucket in self.buckets.all():
            try:
                got = self.rescan(bucket.name)
            except (EngineError, BackendUnavailable) as exc:
                log.warning("reconcile: bucket %s not checked: %s", bucket.name, exc)
                continue
            for k in report:
                report[k] += got[k]
        return report

    def start_lifecycle(self) -> None:
        """Honour lifecycle rules from now on, in the background (expiry.py)."""
        self.lifecycle.start()

    def close(self) -> None:
        self.lifecycle.stop()
        if self._backend is not None:
            self._backend.stop()

    @property
    def engine_kind(self) -> str | None:
        """Which engine serves ('rclone', 'ceph', ...), without asking it anything."""
        choice = self._backend.choice if self._backend is not None else self._choice
        return choice.engine if choice is not None else None

    @property
    def engine_name(self) -> str:
        return ENGINE_NAMES.get(self.engine_kind or "", "unknown")

    @property
    def keys_are_paths(self) -> bool:
        """Whether the engine stores keys as file paths (then keys reach it encoded, keynames.py)."""
        return self.engine_kind == "rclone"

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
                      configuration: Callable[[], object] | None = None, acl: str | None = None,
                      ownership: str | None = None) -> Bucket:
        """A new bucket owned by `account`; `configuration` reads what the request says about it
        (S3's CreateBucketConfiguration) once the caller is known; `acl` (canned) and
        `ownership` (ObjectOwnership) as x-amz-acl and x-amz-object-ownership set them."""
        if account is None:
            raise Forbidden("Access Denied", code="AccessDenied")
        if ownership is not None and ownership not in policy.OWNERSHIP:
            raise InvalidParameter(f"x-amz-object-ownership must be one of {', '.join(policy.OWNERSHIP)}",
                                   code="InvalidArgument")
        if ownership == "BucketOwnerEnforced" and acl not in (None, *policy.ENFORCED_OK):
            raise InvalidParameter("Bucket cannot have ACLs set with ObjectOwnership's BucketOwnerEnforced setting",
                                   code="InvalidBucketAclWithObjectOwnership")
        if configuration:
            configuration()
        self.check_grantees(acl)
        validate_bucket_name(name)  # before the journal, which records only a real name
        with self.journal.track("bucket-create", name):
            self.buckets.claim(name, account.id, access)
            self.journal.fault("bucket-create", "record")
            try:
                if acl not in (None, "private"):
                    self.settings.put(name, "acl", {"canned": acl})
                if ownership:
                    self.settings.put(name, "ownership_controls", {"ObjectOwnership": ownership})
                if not self.engine.create_bucket(name):
                    # Only the cloud holds the engine's keys, so an existing engine bucket is an earlier
                    # cloud's (e.g. the state was reset): adopt it and index what it holds.
                    log.warning("bucket %s already exists in the engine: adopting it", name)
                    self.rescan(name)
                self.journal.fault("bucket-create", "engine")
            except BaseException:
                self.buckets.remove(name)
                raise
        log.info("bucket %s created by %s", name, account.name)
        return self.buckets.get(name)

    def delete_bucket(self, account: Account | None, name: str, force: bool = False) -> None:
        bucket = self._owner(account, name)
        with self.journal.track("bucket-delete", bucket.name):
            self._delete_bucket(account, bucket, force)

    def _delete_bucket(self, account: Account, bucket: Bucket, force: bool) -> None:
        name = bucket.name
        self.in_doubt.settle(name)   # a write lost with the engine may have stored an object the index lacks
        if force:
            self.empty_bucket(bucket.name)
        elif self.index.count(name):
            raise InvalidState("The bucket you tried to delete is not empty", code="BucketNotEmpty")
        for upload_id, key in self.index.uploads_in(name):
            self.engine.abort(name, key, upload_id)
        reply = self.engine.delete_bucket(name)
        if (reply.status == 409 and not self.engine.list_page(name, max_keys=1)["objects"]
                and self._clear_leftovers(name)):
            reply = self.engine.delete_bucket(name)
        if reply.status not in (200, 204, 404):
            code, msg = reply.error()
            if code == "BucketNotEmpty":
                raise InvalidState("The bucket you tried to delete is not empty", code="BucketNotEmpty")
            raise EngineError(f"the storage engine refused to delete {name}: {code} {msg}")
        self.journal.fault("bucket-delete", "engine")
        self.buckets.remove(name)
        log.info("bucket %s deleted by %s", name, account.name)

    def _clear_leftovers(self, name: str) -> bool:
        """The stand-in keeps a key's folders after its last object or upload goes and then
        calls the bucket not empty; with no object left, those empty folders (and temp files
        of failed uploads) are all that remains. They go on disk, and through the engine too:
        its directory cache would otherwise still see them. True if anything went."""
        data_dir = self.describe().get("data_dir") if self.keys_are_paths else None
        root = Path(data_dir) / name if data_dir else None
        folders = sorted((p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_dir()),
                         key=lambda rel: rel.count("/"), reverse=True) if root and root.is_dir() else []
        for rel in folders:         # the engine drops an empty folder when asked to delete it
            self.engine.delete_name(name, rel + "/")
        if self.backend.prune_empty_dirs(name):
            for rel in folders:     # a folder emptied on disk only now: tell the engine
                self.engine.delete_name(name, rel + "/")
        return bool(folders)

    def settle_journal(self) -> list[str]:
        """Roll forward what a dead server left half done (storage/journal.py), and after each
        start of the engine forget the uploads it lost (the stand-in keeps them in memory),
        whose parts would otherwise count against the quota forever; then settle the keys
        whose writes the engine was lost under (doubt.py). Needs the engine."""
        done = self.journal.settle(self) if self.journal.dead() else []
        backend = self.backend
        generation = (backend.started_at, backend.restarts)
        if backend.status == "running" and generation != self._engine_seen:
            lost = [u for u in self.index.all_uploads() if not self.engine.upload_exists(*u)]
            for _bucket, _key, upload_id in lost:
                self.index.forget_upload(upload_id)
            if lost:
                log.warning("the storage engine lost %d unfinished multipart uploads; forgotten", len(lost))
            self._engine_seen = generation
        if backend.status == "running":
            self.in_doubt.settle()
        return done

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
                       "note": ("each object is a plain file under this folder, its key encoded as the relative "
                                "path: '/' splits folders, the file's name starts with '~', other characters "
                                "than letters, digits and ._- are %XX"
                                if engine.get("engine") == "rclone" else
                                "MinIO's own on-disk format: object data and xl.meta metadata per key")}
        internals = {
            "bucket": bucket.name,
            "owner": bucket.owner,
            "access": bucket.access,
            "settings": {"kept_by": "pocketcloud's state database, enforced by its gateway: the same on every engine",
                         "kinds": sorted(k for k in bucket.settings if k != "versioning"),
                         "versioning": "kept by the engine" if self.engine_versioned(bucket) else "never enabled"},
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
