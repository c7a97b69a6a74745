"""Who may do what with a bucket: access levels, bucket policies and ACLs. Pure functions,
no I/O: the facade hands in the bucket and, where a policy names accounts, a resolver.

A bucket is private to its owner unless made public-read (anyone may GET/HEAD its objects)
or shared with another account (read: list/get/head; read-write: also put/delete/multipart).
Policies are the S3 spelling of the same two things and nothing more: anything they could
say beyond that (Deny, conditions, other principals) is refused rather than half-honoured.
"""
from __future__ import annotations

import json
import re
from typing import Callable

from ..errors import Forbidden, InvalidParameter

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
# S3 ACL permissions a share level shows as
PERMISSIONS = {"read": ("READ",), "read-write": ("READ", "WRITE")}
CANNED_ACLS = ("private", "public-read")
_ARN = re.compile(r"arn:aws:iam::(\d{12}):(root|user/.+)")


def level_of(bucket, account) -> str | None:
    """'owner', 'read-write', 'read', 'public' or None; `account` None is an anonymous caller."""
    if account is not None:
        if account.id == bucket.owner:
            return "owner"
        if account.id in bucket.grants:
            return bucket.grants[account.id]
    return "public" if bucket.access == "public-read" else None


def check(bucket, account, need: str) -> None:
    """AccessDenied unless `account` may do `need` on `bucket`.

    need: 'list' (list objects, list uploads), 'read-object' (get/head objects), 'write'
    (put/delete objects, multipart), 'owner' (delete bucket, policy, access).
    """
    level = level_of(bucket, account)
    if level is None or need not in ALLOWED[level]:
        raise Forbidden("Access Denied", code="AccessDenied")


def account_ref(ref) -> str:
    """The account a principal names: a 12-digit id (from an IAM ARN or as is) or a name."""
    ref = str(ref)
    m = _ARN.fullmatch(ref)
    return m.group(1) if m else ref


def document(bucket) -> str | None:
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


def _malformed(message: str) -> InvalidParameter:
    return InvalidParameter(message, code="MalformedPolicy")


def _as_list(value) -> list:
    if isinstance(value, list):
        return value
    return [] if value is None else [value]


def parse(text: str, bucket, resolve: Callable[[str], str]) -> tuple[str, dict[str, str]]:
    """(access, grants) that a bucket policy sets. Understood: public-read (Principal '*',
    read actions on objects) and Allow statements for other accounts (read, or read-write
    when any write action is allowed). `resolve(ref) -> account id` raises for unknown ones."""
    try:
        doc = json.loads(text)
    except ValueError:
        raise _malformed("the policy is not valid JSON") from None
    statements = doc.get("Statement") if isinstance(doc, dict) else None
    if isinstance(statements, dict):
        statements = [statements]
    if not isinstance(statements, list) or not statements:
        raise _malformed("the policy needs a Statement list")
    access, grants = "private", {}
    for st in statements:
        if not isinstance(st, dict) or st.get("Effect") != "Allow" or "Condition" in st or \
                "NotPrincipal" in st or "NotAction" in st:
            raise _malformed("only Allow statements without conditions are supported (public-read, "
                             "or sharing with another account)")
        actions = st.get("Action", [])
        actions = {actions} if isinstance(actions, str) else set(actions) if isinstance(actions, list) else set()
        unknown = actions - READ_ACTIONS - WRITE_ACTIONS
        if unknown or not actions:
            raise _malformed(f"unsupported actions in policy: {', '.join(sorted(map(str, unknown))) or 'none'}")
        for r in _as_list(st.get("Resource")):
            if not isinstance(r, str) or r.split("/")[0] != f"arn:aws:s3:::{bucket.name}":
                raise _malformed(f"policy resource {str(r)[:80]!r} is not this bucket")
        principal = st.get("Principal")
        if isinstance(principal, dict):
            principal = principal.get("AWS")
        principals = _as_list(principal)
        if not principals:
            raise _malformed("each statement needs a Principal")
        for p in principals:
            if p == "*":
                if actions & WRITE_ACTIONS:
                    raise _malformed("public access can only be read-only (public-read)")
                access = "public-read"
                continue
            other = resolve(p)
            if other == bucket.owner:
                continue
            if grants.get(other) != "read-write":
                grants[other] = "read-write" if actions & WRITE_ACTIONS else "read"
    return access, grants


def canned_access(acl: str, has_body: bool) -> str:
    """The access a PutBucketAcl sets: only the canned ACLs private and public-read, by header."""
    acl = (acl or "").lower()
    if has_body or acl not in CANNED_ACLS:
        raise InvalidParameter("only the canned ACLs private and public-read (x-amz-acl header) are supported",
                               code="NotImplemented")
    return acl
