"""Who may do what with a bucket and its objects: share levels, bucket policies, canned ACLs,
public access blocks and object ownership. Pure functions, no I/O: the facade hands in the
bucket (with its settings) and, where a policy names accounts, a resolver.

Three sources grant access, each as S3 has it:
- shares (pocketcloud's own, and what a bucket policy says): another account reads (list,
  get, head) or reads and writes; Principal '*' makes objects public-read (the `access`
  column). A public access block's RestrictPublicBuckets ignores that public part.
- the bucket's canned ACL: public-read lets anyone list, public-read-write also write,
  authenticated-read any signed-in account list.
- an object's canned ACL: public-read(-write) lets anyone read it, authenticated-read any
  signed-in account. IgnorePublicAcls ignores public ACLs; BucketOwnerEnforced ownership
  disables ACLs altogether.
- READ_ACP / WRITE_ACP grants (FULL_CONTROL has both) let their grantee read / replace the
  ACL of the bucket or object they are on, and nothing else (check's 'read-acp', 'write-acp').
- object ownership (ObjectWriter, BucketOwnerPreferred): an object another account wrote is
  that account's. Its writer may read it and its ACL; everyone else, the bucket owner
  included, only what its ACL grants (bucket-owner-read/-full-control name the bucket owner);
  the bucket's shares and a policy's Allow do not reach it, a Deny does (check_object).
  Unset, and BucketOwnerEnforced, the bucket owner owns every object.
- a bucket policy as written, evaluated per request (policy_eval.py): an explicit Deny
  refuses whatever else allows, an Allow grants what it names. Its plain Allow statements
  are also read as shares and public access (parse), the REST and console view of them.
"""
from __future__ import annotations

import json
import re
import time
from typing import Callable

from ..errors import Forbidden, InvalidParameter
from . import policy_eval

# what each level of access allows; "public" is anyone, signed or not, on a public-read bucket
ALLOWED = {
    "owner": {"list", "read-object", "write", "owner", "read-acp", "write-acp"},
    "read-write": {"list", "read-object", "write"},
    "read": {"list", "read-object"},
    "public": {"read-object"},
}
READ_ACTIONS = {"s3:GetObject", "s3:GetObjectVersion", "s3:ListBucket", "s3:GetBucketLocation",
                "s3:ListBucketMultipartUploads", "s3:ListMultipartUploadParts", "s3:HeadObject"}
WRITE_ACTIONS = {"s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload", "s3:*", "s3:Put*", "s3:Delete*"}
# S3 ACL permissions a share level shows as
PERMISSIONS = {"read": ("READ",), "read-write": ("READ", "WRITE")}
_ARN = re.compile(r"arn:aws:iam::(\d{12}):(root|user/.+)")

# canned ACLs: the groups each grants to, beyond the owner's FULL_CONTROL
ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
AUTHENTICATED_USERS = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"
LOG_DELIVERY = "http://acs.amazonaws.com/groups/s3/LogDelivery"
CANNED = {
    "private": (),
    "public-read": ((ALL_USERS, "READ"),),
    "public-read-write": ((ALL_USERS, "READ"), (ALL_USERS, "WRITE")),
    "authenticated-read": ((AUTHENTICATED_USERS, "READ"),),
    "aws-exec-read": (),                # EC2's read access to AMI bundles: nobody else here
    "bucket-owner-read": (),            # the bucket owner's: for objects, see object_grants
    "bucket-owner-full-control": (),
    "log-delivery-write": ((LOG_DELIVERY, "WRITE"), (LOG_DELIVERY, "READ_ACP")),
}
PUBLIC_ACLS = ("public-read", "public-read-write", "authenticated-read")
# with BucketOwnerEnforced only these may still be sent (they grant nothing beyond the owner)
ENFORCED_OK = ("private", "bucket-owner-full-control")
OWNERSHIP = ("BucketOwnerPreferred", "ObjectWriter", "BucketOwnerEnforced")
PAB_FLAGS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")


def _pab(bucket, flag: str) -> bool:
    return bool((bucket.settings.get("public_access_block") or {}).get(flag))


def acls_enabled(bucket) -> bool:
    return (bucket.settings.get("ownership_controls") or {}).get("ObjectOwnership") != "BucketOwnerEnforced"


# An ACL is kept as a string: a canned ACL's name, or GRANTS + JSON [[grantee, permission], ...]
# for explicit grants (x-amz-grant-*, an AccessControlPolicy), the grantee an account id or a
# group URI. The owner's FULL_CONTROL is implicit in both.
GRANTS = "grants:"
ACL_PERMISSIONS = ("READ", "WRITE", "READ_ACP", "WRITE_ACP", "FULL_CONTROL")


def explicit_acl(grants: list[tuple[str, str]]) -> str:
    if not grants:
        return "private"
    return GRANTS + json.dumps(sorted({(g, p) for g, p in grants}))


# canned ACLs that grant the bucket's owner something on an object (nothing when it owns it)
BUCKET_OWNER_GRANTS = {"bucket-owner-read": "READ", "bucket-owner-full-control": "FULL_CONTROL"}


def acl_grants(acl: str | None, bucket_owner: str | None = None) -> list[tuple[str, str]]:
    """(grantee, permission) pairs an ACL grants beyond the owner's FULL_CONTROL; with
    `bucket_owner` (an object's ACL), what bucket-owner-read/-full-control give that account."""
    if not acl:
        return []
    if acl.startswith(GRANTS):
        return [(g, p) for g, p in json.loads(acl[len(GRANTS):])]
    if bucket_owner is not None and acl in BUCKET_OWNER_GRANTS:
        return [(bucket_owner, BUCKET_OWNER_GRANTS[acl])]
    return list(CANNED.get(acl, ()))


def is_public_acl(acl: str | None) -> bool:
    return any(g in (ALL_USERS, AUTHENTICATED_USERS) for g, _ in acl_grants(acl))


def _acl_counts(bucket, canned: str | None) -> bool:
    """Whether an ACL takes effect on this bucket (ownership and the public access block)."""
    if not canned or not acls_enabled(bucket):
        return False
    return not (is_public_acl(canned) and _pab(bucket, "IgnorePublicAcls"))


def level_of(bucket, account) -> str | None:
    """'owner', 'read-write', 'read', 'public' or None; `account` None is an anonymous caller."""
    if account is not None:
        if account.id == bucket.owner:
            return "owner"
        if account.id in bucket.grants:
            return bucket.grants[account.id]
    if bucket.access == "public-read" and not _pab(bucket, "RestrictPublicBuckets"):
        return "public"
    return None


# the ACL permission each need asks for
_PERMISSION_OF = {"list": "READ", "read-object": "READ", "write": "WRITE", "read-acp": "READ_ACP",
                  "write-acp": "WRITE_ACP"}


def acl_allows(canned: str | None, account, need: str, bucket_owner: str | None = None) -> bool:
    """What an ACL gives a caller who is not the owner: READ is list on a bucket and
    read-object on an object, WRITE is write (buckets only), READ_ACP / WRITE_ACP reading /
    replacing the ACL itself, FULL_CONTROL all four. `bucket_owner`: as for acl_grants."""
    who = {ALL_USERS} | ({AUTHENTICATED_USERS, account.id} if account is not None else set())
    perms = {p for g, p in acl_grants(canned, bucket_owner) if g in who}
    wanted = _PERMISSION_OF.get(need)
    return wanted is not None and (wanted in perms or "FULL_CONTROL" in perms)


# the S3 action a need stands for when the request does not say (REST, console, a copy's source)
DEFAULT_ACTION = {"list": "s3:ListBucket", "read-object": "s3:GetObject", "write": "s3:PutObject",
                  "owner": "s3:PutBucketPolicy", "read-acp": "s3:GetBucketAcl", "write-acp": "s3:PutBucketAcl"}
_NEED_OF = {"s3:listbucket": "list", "s3:listbucketversions": "list", "s3:listbucketmultipartuploads": "list",
            "s3:getobject": "read-object", "s3:getobjectversion": "read-object",
            "s3:getobjectattributes": "read-object", "s3:listmultipartuploadparts": "write",
            "s3:putobject": "write", "s3:deleteobject": "write", "s3:deleteobjectversion": "write",
            "s3:abortmultipartupload": "write", "s3:getbucketacl": "read-acp", "s3:getobjectacl": "read-acp",
            "s3:putbucketacl": "write-acp", "s3:putobjectacl": "write-acp"}
# what a bucket's owner may always do, whatever its policy denies (as the root user on AWS)
_OWNER_ALWAYS = {"s3:getbucketpolicy", "s3:putbucketpolicy", "s3:deletebucketpolicy", "s3:getbucketpolicystatus"}


def _policy_verdict(bucket, account, need: str, key: str | None) -> str | None:
    written = bucket.settings.get("policy")
    if not written:
        return None
    ctx = policy_eval.current.get()
    action = ctx.action if ctx and ctx.action and _NEED_OF.get(ctx.action.lower(), "owner") == need \
        else DEFAULT_ACTION[need]
    if account is not None and account.id == bucket.owner and action.lower() in _OWNER_ALWAYS:
        return None
    arn = f"arn:aws:s3:::{bucket.name}"
    if need in ("read-object", "write"):
        key = key if key is not None else (ctx.key if ctx else None)
        resource = f"{arn}/{key}" if key is not None else f"{arn}/*"
    elif need in ("read-acp", "write-acp"):     # a bucket's ACL, or (with a key) an object's
        key = key if key is not None else (ctx.key if ctx else None)
        resource = f"{arn}/{key}" if key is not None else arn
    else:
        resource = arn
    now = time.time()
    values = {"aws:currenttime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)), "aws:epochtime": int(now),
              **({"aws:principalaccount": account.id, "aws:userid": account.id} if account is not None else {}),
              **(ctx.values if ctx else {})}
    return policy_eval.evaluate(written["document"], account.id if account else None, action, resource, values)


def check(bucket, account, need: str, object_acl: str | None = None, key: str | None = None) -> None:
    """AccessDenied unless `account` may do `need` on `bucket` (or, for 'read-object', on an
    object whose canned ACL is `object_acl`; `key`: the object, else the request's).

    need: 'list' (list objects, list uploads), 'read-object' (get/head objects), 'write'
    (put/delete objects, multipart), 'read-acp' / 'write-acp' (get / put the bucket's ACL),
    'owner' (delete bucket, policy, access, settings). Objects another account owns: check_object.
    """
    verdict = _policy_verdict(bucket, account, need, key)
    if verdict == "Deny":
        raise Forbidden("Access Denied", code="AccessDenied")
    if verdict == "Allow" and not (account is None and _pab(bucket, "RestrictPublicBuckets")):
        return
    level = level_of(bucket, account)
    if level is not None and need in ALLOWED[level]:
        return
    bucket_acl = (bucket.settings.get("acl") or {}).get("canned")
    if need in ("list", "write", "read-acp", "write-acp") and _acl_counts(bucket, bucket_acl) \
            and acl_allows(bucket_acl, account, need):
        return
    if need == "read-object" and _acl_counts(bucket, object_acl) and acl_allows(object_acl, account, need):
        return
    raise Forbidden("Access Denied", code="AccessDenied")


def ownership(bucket) -> str | None:
    """The bucket's ObjectOwnership, None when never set."""
    return (bucket.settings.get("ownership_controls") or {}).get("ObjectOwnership")


def object_owner(bucket, stored: str | None) -> str:
    """Who owns an object whose attributes name `stored` (None: the bucket's owner). With
    BucketOwnerEnforced the bucket's owner owns every object, as on S3 (ACLs are off)."""
    return stored if stored and acls_enabled(bucket) else bucket.owner


def new_object_owner(bucket, account, acl: str | None) -> str | None:
    """Who will own an object `account` writes with `acl` (None: the bucket's owner).
    ObjectWriter: the writer; BucketOwnerPreferred: the writer unless it sends
    bucket-owner-full-control. Unset and BucketOwnerEnforced: the bucket's owner (pocketcloud's
    default keeps a shared bucket's objects its owner's). Anonymous writes are the owner's."""
    if account is None or account.id == bucket.owner:
        return None
    mode = ownership(bucket)
    if mode == "ObjectWriter" or (mode == "BucketOwnerPreferred" and acl != "bucket-owner-full-control"):
        return account.id
    return None


def check_object(bucket, account, need: str, owner: str | None, object_acl: str | None, key: str) -> None:
    """AccessDenied unless `account` may do `need` ('read-object', 'read-acp', 'write-acp') on
    one object, owned by `owner` as stored (None: the bucket's) with ACL `object_acl`. A
    policy's Deny refuses anyone; the object's owner may; what the bucket grants (shares,
    a policy's Allow, public access) reaches only the objects its owner owns; the object's ACL
    grants what it names."""
    owner = object_owner(bucket, owner)
    verdict = _policy_verdict(bucket, account, need, key)
    if verdict == "Deny":
        raise Forbidden("Access Denied", code="AccessDenied")
    if account is not None and account.id == owner:
        return
    if owner == bucket.owner:
        if verdict == "Allow" and not (account is None and _pab(bucket, "RestrictPublicBuckets")):
            return
        level = level_of(bucket, account)
        if level is not None and need in ALLOWED[level]:
            return
    if _acl_counts(bucket, object_acl) and acl_allows(object_acl, account, need, bucket.owner):
        return
    raise Forbidden("Access Denied", code="AccessDenied")


def check_acl_allowed(bucket, canned: str) -> None:
    """Whether a canned ACL may be set on the bucket or one of its objects now: refused when
    ACLs are disabled (BucketOwnerEnforced) or public ones blocked (BlockPublicAcls)."""
    if not acls_enabled(bucket) and canned not in ENFORCED_OK:
        raise InvalidParameter("The bucket does not allow ACLs", code="AccessControlListNotSupported")
    if is_public_acl(canned) and _pab(bucket, "BlockPublicAcls"):
        raise Forbidden("Access Denied: the bucket's public access block (BlockPublicAcls) refuses public ACLs",
                        code="AccessDenied")


def check_public_policy_allowed(bucket, access: str) -> None:
    if access == "public-read" and _pab(bucket, "BlockPublicPolicy"):
        raise Forbidden("Access Denied: the bucket's public access block (BlockPublicPolicy) refuses public "
                        "policies", code="AccessDenied")


def canned_acl(value: str | None, *, default: str | None = None) -> str | None:
    """A canned ACL name as S3 knows it (x-amz-acl), lower-cased; None/empty gives `default`."""
    if not value:
        return default
    acl = value.strip().lower()
    if acl not in CANNED:
        raise InvalidParameter(f"the canned ACL {value[:40]!r} is not one of {', '.join(CANNED)}",
                               code="InvalidArgument")
    return acl


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
    """(access, grants) a bucket policy shows as in the REST model: public-read (Principal '*'
    allowed read actions on objects, no condition) and shares with other accounts (read, or
    read-write when any write action is allowed), from statements on the whole bucket.
    Statements with conditions, Deny, other actions, part of the bucket or a public write act
    only through evaluation (policy_eval.py). The whole document
    is checked: resources must be this bucket's, principals known accounts (`resolve(ref) ->
    account id` raises for unknown ones)."""
    statements = policy_eval.statements(text)
    access, grants = "private", {}
    for st in statements:
        for r in _as_list(st.get("Resource", st.get("NotResource"))):
            if not isinstance(r, str) or r.split("/")[0] != f"arn:aws:s3:::{bucket.name}":
                raise _malformed(f"policy resource {str(r)[:80]!r} is not this bucket")
        principals = policy_eval.principal_ids(st)
        if not principals:
            raise _malformed("each statement needs a Principal")
        ids = {p: resolve(p) for p in principals if p != "*"}
        actions = st.get("Action", [])
        actions = {actions} if isinstance(actions, str) else set(actions) if isinstance(actions, list) else set()
        whole = {f"arn:aws:s3:::{bucket.name}", f"arn:aws:s3:::{bucket.name}/*"}
        plain = st["Effect"] == "Allow" and "Condition" not in st and "Action" in st and "Resource" in st \
            and actions and not actions - READ_ACTIONS - WRITE_ACTIONS and set(_as_list(st["Resource"])) <= whole
        if not plain:
            continue
        for p in principals:
            if p == "*":
                if not actions & WRITE_ACTIONS:
                    access = "public-read"
                continue
            other = ids[p]
            if other == bucket.owner:
                continue
            if grants.get(other) != "read-write":
                grants[other] = "read-write" if actions & WRITE_ACTIONS else "read"
    return access, grants


