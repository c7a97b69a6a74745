"""Access operations of the `Storage` facade: shares, bucket policies, canned ACLs on buckets
and objects, public access blocks and ownership controls. Who may do what is policy.py's;
this is where it is changed, always by the bucket's owner.

The policy document a client put is kept as written (Terraform compares what it reads back
with what it wrote); changing shares or public access through the REST API drops it, and the
policy then reads back as the one those shares make.

A mixin of Storage, which provides `buckets`, `accounts`, `settings` and `index`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from ..errors import InvalidParameter, NotFound
from . import policy, policy_eval
from .buckets import Bucket, validate_key

if TYPE_CHECKING:
    from ..accounts import Account

DEFAULT_PAB = {flag: False for flag in policy.PAB_FLAGS}


@dataclass(frozen=True)
class BucketAcl:
    """A bucket's (or an object's) access as S3 ACL grants show it."""
    owner: "Account"
    canned: str                   # the ACL in force: a canned ACL or explicit grants (policy.acl_grants)
    grants: dict[str, str]        # shares: account id -> level ('read', 'read-write'); none for objects
    bucket_owner: str | None = None   # an object's: whom bucket-owner-read/-full-control name


class AccessOperations:
    buckets: object
    accounts: object
    settings: object
    index: object
    authorize: Callable[..., Bucket]
    engine: object
    key_locks: object
    in_doubt: object

    def _owner(self, account: "Account | None", name: str) -> Bucket:
        return self.authorize(account, name, "owner")

    def check_grantees(self, acl: str | None) -> None:
        """Explicit grants name existing accounts (by id) or S3's groups: else InvalidArgument."""
        for grantee, _ in policy.acl_grants(acl):
            if grantee.startswith(("http://", "https://")):
                if grantee not in (policy.ALL_USERS, policy.AUTHENTICATED_USERS, policy.LOG_DELIVERY):
                    raise InvalidParameter(f"Invalid group uri {grantee[:80]!r}", code="InvalidArgument")
                continue
            try:
                self.accounts.get(grantee)
            except NotFound:
                raise InvalidParameter(f"Invalid id: no account {grantee[:40]!r}", code="InvalidArgument") from None

    # -- shares and public access (pocketcloud's REST model of a policy) ------------------------------
    def set_access(self, account: "Account | None", name: str, access: str) -> Bucket:
        bucket = self._owner(account, name)
        policy.check_public_policy_allowed(bucket, access)
        self.buckets.set_access(name, access)
        self.settings.delete(name, "policy")
        return self.buckets.get(name)

    def _resolve_account(self, ref) -> str:
        ref = policy.account_ref(ref)
        try:
            return (self.accounts.get(ref) if re.fullmatch(r"\d{12}", ref) else self.accounts.by_name(ref)).id
        except NotFound:
            raise InvalidParameter(f"no account {ref[:70]!r} to share with", code="InvalidArgument") from None

    def grant(self, account: "Account | None", name: str, grantee: str, level: str | None) -> Bucket:
        """Share `name` with another account (by name, 12-digit id or IAM ARN); level None revokes."""
        bucket = self._owner(account, name)
        other = self._resolve_account(grantee)
        if other == bucket.owner:
            raise InvalidParameter("the owner already has full access to its bucket", code="InvalidArgument")
        self.buckets.set_grant(name, other, level)
        self.settings.delete(name, "policy")
        return self.buckets.get(name)

    # -- bucket policy ---------------------------------------------------------------------------------
    def get_policy(self, account: "Account | None", name: str) -> str:
        doc = self.policy_document(self._owner(account, name))
        if doc is None:
            raise NotFound("The bucket policy does not exist", code="NoSuchBucketPolicy")
        return doc

    def policy_document(self, bucket: Bucket) -> str | None:
        written = bucket.settings.get("policy")
        return written["document"] if written else policy.document(bucket)

    def put_policy(self, account: "Account | None", name: str, document: Callable[[], str]) -> Bucket:
        """Set access and shares from a bucket policy (see policy.parse); `document` is read
        only once the caller is known to own the bucket."""
        bucket = self._owner(account, name)
        text = document()
        access, grants = policy.parse(text, bucket, self._resolve_account)
        policy.check_public_policy_allowed(bucket, access)
        self.buckets.replace_access(name, access, grants)
        self.settings.put(name, "policy", {"document": text})
        return self.buckets.get(name)

    def get_policy_status(self, account: "Account | None", name: str) -> bool:
        """GetBucketPolicyStatus: whether the bucket's policy makes it public (policy_eval.is_public)."""
        doc = self.get_policy(account, name)
        return policy_eval.is_public(doc)

    def delete_policy(self, account: "Account | None", name: str) -> Bucket:
        self._owner(account, name)
        self.buckets.replace_access(name, "private", {})
        self.settings.delete(name, "policy")
        return self.buckets.get(name)

    # -- ACLs ------------------------------------------------------------------------------------------
    # Reading an ACL takes READ_ACP, replacing it WRITE_ACP (policy.py: 'read-acp', 'write-acp'):
    # the owner's, or granted by that ACL itself (FULL_CONTROL has both), or a policy's Allow.
    def get_acl(self, account: "Account | None", name: str) -> BucketAcl:
        bucket = self.authorize(account, name, "read-acp")
        canned = bucket.acl if policy.acls_enabled(bucket) else "private"
        return BucketAcl(self.accounts.get(bucket.owner), canned, dict(bucket.grants))

    def put_acl(self, account: "Account | None", name: str, acl: Callable[[str], str]) -> Bucket:
        """`acl(owner id)` reads the request's ACL once the caller may write it."""
        bucket = self.authorize(account, name, "write-acp")
        canned = acl(bucket.owner)
        policy.check_acl_allowed(bucket, canned)
        self.check_grantees(canned)
        if canned == "private":
            self.settings.delete(name, "acl")
        else:
            self.settings.put(name, "acl", {"canned": canned})
        return self.buckets.get(name)

    def _existing_object(self, name: str, key: str) -> None:
        """NoSuchKey unless the object exists; one the engine has but the index missed is indexed."""
        validate_key(key)
        with self.key_locks.held(name, key):
            self.in_doubt.settle_held(name, key)   # a write lost with the engine: indexed as it landed
            if self.index.object_size(name, key) is None:
                size = self.engine.size(name, key)
                if size is None:
                    raise NotFound("The specified key does not exist.", code="NoSuchKey")
                self.index.record_object(name, key, size)

    def _object_acp(self, account: "Account | None", name: str, key: str, need: str):
        """The bucket and the object's attributes, if `account` may do `need` on its ACL;
        whether the key exists is told only to who may (a missing one has no grants)."""
        bucket = self.buckets.get(name)
        validate_key(key)
        attrs = self.settings.object_attrs(name, key)
        policy.check_object(bucket, account, need, attrs.owner, attrs.acl, key)
        self._existing_object(name, key)
        return bucket, attrs

    def get_object_acl(self, account: "Account | None", name: str, key: str) -> BucketAcl:
        bucket, attrs = self._object_acp(account, name, key, "read-acp")
        canned = attrs.acl if policy.acls_enabled(bucket) else None
        owner = policy.object_owner(bucket, attrs.owner)
        return BucketAcl(self.accounts.get(owner), canned or "private", {}, bucket_owner=bucket.owner)

    def put_object_acl(self, account: "Account | None", name: str, key: str, acl: Callable[[str], str]) -> None:
        """`acl(owner id)` reads the request's ACL once the caller may write it; the object
        keeps its owner."""
        bucket, attrs = self._object_acp(account, name, key, "write-acp")
        owner = policy.object_owner(bucket, attrs.owner)
        canned = acl(owner)
        policy.check_acl_allowed(bucket, canned)
        self.check_grantees(canned)
        grants_nothing = canned == "private" or (canned in policy.BUCKET_OWNER_GRANTS and owner == bucket.owner)
        attrs.acl = None if grants_nothing else canned
        self.settings.set_object_attrs(name, key, attrs)

    # -- public access block, ownership controls ---------------------------------------------------------
    def get_public_access_block(self, account: "Account | None", name: str) -> dict:
        doc = self._owner(account, name).settings.get("public_access_block")
        if doc is None:
            raise NotFound("The public access block configuration was not found",
                           code="NoSuchPublicAccessBlockConfiguration")
        return doc

    def put_public_access_block(self, account: "Account | None", name: str, read: Callable[[], dict]) -> None:
        self._owner(account, name)
        doc = read()
        unknown = set(doc) - set(policy.PAB_FLAGS)
        if unknown:
            raise InvalidParameter(f"unknown public access block settings: {', '.join(sorted(unknown))}",
                                   code="MalformedXML")
        self.settings.put(name, "public_access_block", {**DEFAULT_PAB, **doc})

    def delete_public_access_block(self, account: "Account | None", name: str) -> None:
        self._owner(account, name)
        self.settings.delete(name, "public_access_block")

    def get_ownership_controls(self, account: "Account | None", name: str) -> str:
        doc = self._owner(account, name).settings.get("ownership_controls")
        if doc is None:
            raise NotFound("The bucket ownership controls were not found", code="OwnershipControlsNotFoundError")
        return doc["ObjectOwnership"]

    def put_ownership_controls(self, account: "Account | None", name: str, read: Callable[[], str]) -> None:
        self._owner(account, name)
        ownership = read()
        if ownership not in policy.OWNERSHIP:
            raise InvalidParameter(f"ObjectOwnership must be one of {', '.join(policy.OWNERSHIP)}",
                                   code="MalformedXML")
        self.settings.put(name, "ownership_controls", {"ObjectOwnership": ownership})
        if ownership == "BucketOwnerEnforced":
            self.settings.drop_object_owners(name)   # as on S3, the bucket's owner takes every object

    def delete_ownership_controls(self, account: "Account | None", name: str) -> None:
        self._owner(account, name)
        self.settings.delete(name, "ownership_controls")
