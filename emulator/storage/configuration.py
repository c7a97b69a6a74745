"""Bucket and object settings of the `Storage` facade that are pocketcloud's own on every
engine (tags, CORS, lifecycle), and versioning, the one here that depends on the engine.

Versioning: the cloud relays it to the engine and remembers what the engine accepted.
An engine that keeps versions (Ceph RGW, MinIO) then answers ListObjectVersions and
versioned GET/DELETE itself; on one that does not (the embedded stand-in) enabling answers
NotImplemented naming the engine, `Suspended` is accepted (it is what such a bucket does
anyway: every write replaces the one `null` version), and ListObjectVersions lists the
objects as their `null` versions.

A mixin of Storage, which provides `authorize`, `settings`, `index`, `engine` and `describe`.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from ..errors import InvalidParameter, NotFound
from . import cors, lifecycle, listing, policy, tagging
from .buckets import Bucket, validate_key
from .engine import Reply

if TYPE_CHECKING:
    from ..accounts import Account


def _missing(message: str, code: str) -> NotFound:
    return NotFound(message, code=code)


# Bucket settings pocketcloud does not keep (writing one answers NotImplemented). Reading one
# answers what S3 answers for a bucket that has none, as tools that read every setting of a
# bucket expect (Terraform's aws_s3_bucket reads all of these on each refresh): the empty
# document, or the error S3 gives for a setting that is not there. Encryption is the
# pre-2023 answer: S3 now reports SSE-S3 on every bucket, and no engine here encrypts at rest.
UNKEPT_EMPTY = ("logging", "accelerate", "notification")
UNKEPT_MISSING = {
    "website": ("NoSuchWebsiteConfiguration", "The specified bucket does not have a website configuration"),
    "replication": ("ReplicationConfigurationNotFoundError", "The replication configuration was not found"),
    "encryption": ("ServerSideEncryptionConfigurationNotFoundError",
                   "The server side encryption configuration was not found"),
    "object-lock": ("ObjectLockConfigurationNotFoundError", "Object Lock configuration does not exist for this bucket"),
}


class SettingsOperations:
    authorize: Callable[..., Bucket]
    settings: object
    index: object
    engine: object

    # -- generic: a document per bucket and kind, owner only ------------------------------------------
    def _get_setting(self, account, name: str, kind: str, missing: NotFound):
        doc = self.authorize(account, name, "owner").settings.get(kind)
        if doc is None:
            raise missing
        return doc

    def _put_setting(self, account, name: str, kind: str, read: Callable[[], object], check: Callable) -> None:
        self.authorize(account, name, "owner")
        self.settings.put(name, kind, check(read()))

    def _delete_setting(self, account, name: str, kind: str) -> None:
        self.authorize(account, name, "owner")
        self.settings.delete(name, kind)

    def read_unkept_setting(self, account, name: str, kind: str) -> None:
        """A setting of UNKEPT_*, read: returns for an empty one (the caller renders it), raises
        S3's not-found error for the others. The bucket's owner's (or a policy's Allow)."""
        self.authorize(account, name, "owner")
        if kind in UNKEPT_MISSING:
            code, message = UNKEPT_MISSING[kind]
            raise _missing(message, code)
        assert kind in UNKEPT_EMPTY, kind

    # -- bucket tags -------------------------------------------------------------------------------------
    def get_bucket_tagging(self, account: "Account | None", name: str) -> list[tuple[str, str]]:
        return [tuple(t) for t in self._get_setting(account, name, "tagging",
                                                    _missing("The TagSet does not exist", "NoSuchTagSet"))]

    def put_bucket_tagging(self, account: "Account | None", name: str, read: Callable[[], list]) -> None:
        self._put_setting(account, name, "tagging", read,
                          lambda tags: [list(t) for t in tagging.check(tags, limit=tagging.MAX_BUCKET_TAGS)])

    def delete_bucket_tagging(self, account: "Account | None", name: str) -> None:
        self._delete_setting(account, name, "tagging")

    # -- object tags ---------------------------------------------------------------------------------------
    def _object_tags(self, account: "Account | None", name: str, key: str, need: str):
        """The object's attributes if `account` may do `need` ('read-object', 'write') on its
        tags: the bucket's grants where the bucket's owner owns it; its owner alone where
        another account does (ObjectWriter: its ACL grants no tagging, as on S3)."""
        bucket = self.buckets.get(name)
        validate_key(key)
        attrs = self.settings.object_attrs(name, key)
        if policy.object_owner(bucket, attrs.owner) == bucket.owner:
            policy.check(bucket, account, need, key=key)
        else:
            policy.check_object(bucket, account, need, attrs.owner, None, key)
        self._existing_object(name, key)
        return attrs

    def get_object_tagging(self, account: "Account | None", name: str, key: str) -> list[tuple[str, str]]:
        return self._object_tags(account, name, key, "read-object").tags

    def put_object_tagging(self, account: "Account | None", name: str, key: str, read: Callable[[], list]) -> None:
        attrs = self._object_tags(account, name, key, "write")
        attrs.tags = tagging.check(read(), limit=tagging.MAX_OBJECT_TAGS)
        self.settings.set_object_attrs(name, key, attrs)

    def delete_object_tagging(self, account: "Account | None", name: str, key: str) -> None:
        self.put_object_tagging(account, name, key, lambda: [])

    # -- CORS ---------------------------------------------------------------------------------------------
    def get_cors(self, account: "Account | None", name: str) -> list[dict]:
        return self._get_setting(account, name, "cors", _missing("The CORS configuration does not exist",
                                                                   "NoSuchCORSConfiguration"))

    def put_cors(self, account: "Account | None", name: str, read: Callable[[], list]) -> None:
        self._put_setting(account, name, "cors", read, cors.check)

    def delete_cors(self, account: "Account | None", name: str) -> None:
        self._delete_setting(account, name, "cors")

    def cors_rules(self, name: str | None) -> list[dict] | None:
        """A bucket's CORS rules for answering browsers (no caller: a preflight carries no
        credentials); None when the bucket does not exist or has none."""
        bucket = self.buckets.find(name) if name else None
        return bucket.settings.get("cors") if bucket else None

    # -- lifecycle ------------------------------------------------------------------------------------------
    def get_lifecycle(self, account: "Account | None", name: str) -> list[dict]:
        return self._get_setting(account, name, "lifecycle", _missing("The lifecycle configuration does not exist",
                                                                        "NoSuchLifecycleConfiguration"))

    def put_lifecycle(self, account: "Account | None", name: str, read: Callable[[], list]) -> None:
        self._put_setting(account, name, "lifecycle", read, lifecycle.check)

    def delete_lifecycle(self, account: "Account | None", name: str) -> None:
        self._delete_setting(account, name, "lifecycle")

    # -- versioning -------------------------------------------------------------------------------------------
    def engine_versioned(self, bucket: Bucket) -> bool:
        """Whether the engine keeps this bucket's versions (it once accepted Enabled)."""
        return bool((bucket.settings.get("versioning") or {}).get("engine"))

    def get_versioning(self, account: "Account | None", name: str) -> dict:
        """{'Status': 'Enabled'|'Suspended'} or {} for a bucket never versioned (as S3 answers)."""
        bucket = self.authorize(account, name, "owner")
        stored = bucket.settings.get("versioning") or {}
        if stored.get("engine"):
            return {"Status": self.engine.get_versioning(name) or stored["Status"]}
        return {"Status": stored["Status"]} if stored else {}

    def put_versioning(self, account: "Account | None", name: str, read: Callable[[], dict]) -> None:
        bucket = self.authorize(account, name, "owner")
        doc = read()
        status = doc.get("Status")
        if doc.get("MFADelete") == "Enabled":
            raise InvalidParameter("MFA delete needs an MFA device, which pocketcloud accounts do not have",
                                   code="NotImplemented")
        if status not in ("Enabled", "Suspended"):
            raise InvalidParameter("The versioning Status is Enabled or Suspended", code="MalformedXML")
        reply = self.engine.put_versioning(name, status)
        if reply.status == 501 or (not reply.ok and reply.error()[0] == "NotImplemented"):
            raise InvalidParameter(f"Versioning is kept by the storage engine, and this cloud's engine "
                                   f"({self.engine_name}) does not keep object versions: "
                                   f"only Suspended (one `null` version per key) is possible here",
                                   code="NotImplemented")
        reply.raise_for_status(f"setting versioning of {name} to {status}")
        engine = self.engine_versioned(bucket) or status == "Enabled"
        self.settings.put(name, "versioning", {"Status": status, "engine": engine})

    def put_request_payment(self, account: "Account | None", name: str, read: Callable[[], str]) -> None:
        """PutBucketRequestPayment: the bucket owner pays, as ever; requester-pays buckets are
        refused clearly (pocketcloud bills the owner of what is stored, billing/)."""
        self.authorize(account, name, "owner")
        if read() == "Requester":
            raise InvalidParameter("Requester Pays buckets are not supported: in pocketcloud the bucket owner "
                                   "pays for every request (RequestPaymentConfiguration Payer=Requester refused)",
                                   code="NotImplemented")

    def list_versions(self, account: "Account | None", name: str, params: dict[str, str]) -> Reply | dict:
        """ListObjectVersions: the engine's answer where it keeps versions (a Reply to relay),
        else the objects as their `null` versions (data; see versions.py)."""
        bucket = self.authorize(account, name, "list")
        if self.engine_versioned(bucket):
            return self.engine.listing(name, None, [("versions", "")] + list(params.items()))
        page = listing.versions_page(self.index.lister(name), params)
        self._fill_etags(name, page["versions"])
        page["name"], page["owner"] = name, self._who(bucket.owner)
        return page

    def check_version(self, bucket: Bucket, version_id: str | None) -> list[tuple[str, str]]:
        """The engine query for a versionId on GET/HEAD/DELETE: passed on where the engine
        keeps versions; else only `null` (the one version) exists."""
        if version_id is None:
            return []
        if self.engine_versioned(bucket):
            return [("versionId", version_id)]
        if version_id != "null":
            raise InvalidParameter("Invalid version id specified", code="InvalidArgument")
        return []
