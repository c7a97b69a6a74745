"""Bucket access rules (emulator/storage/policy.py: pure functions), object key rules, and the
facade's bucket-level operations on a real state database (no engine needed for those)."""
from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from emulator.accounts import Accounts
from emulator.config import Config
from emulator.errors import Forbidden, InvalidParameter, NotFound
from emulator.state import Store
from emulator.storage import Bucket, Storage, policy, validate_key
from emulator.storage.backend import Choice

OWNER, OTHER, THIRD = "111111111111", "222222222222", "333333333333"


def who(account_id):
    return SimpleNamespace(id=account_id)


def bucket(access="private", grants=None):
    return Bucket("bkt", OWNER, access, 0.0, dict(grants or {}))


def resolver(known=(OTHER, THIRD), names=None):
    names = names or {"bob": OTHER}

    def resolve(ref):
        ref = policy.account_ref(ref)
        if ref in known:
            return ref
        if ref in names:
            return names[ref]
        raise InvalidParameter(f"no account {ref}", code="InvalidArgument")
    return resolve


@pytest.mark.parametrize("b, account, level", [
    (bucket(), who(OWNER), "owner"),
    (bucket(), who(OTHER), None),
    (bucket(), None, None),
    (bucket("public-read"), None, "public"),
    (bucket("public-read"), who(OTHER), "public"),
    (bucket(grants={OTHER: "read"}), who(OTHER), "read"),
    (bucket("public-read", {OTHER: "read-write"}), who(OTHER), "read-write"),
])
def test_levels(b, account, level):
    assert policy.level_of(b, account) == level


@pytest.mark.parametrize("level, allowed", [
    ("owner", {"list", "read-object", "write", "owner", "read-acp", "write-acp"}),
    ("read-write", {"list", "read-object", "write"}),
    ("read", {"list", "read-object"}),
    ("public", {"read-object"}),
])
def test_each_level_allows_exactly_its_needs(level, allowed):
    b = {"owner": bucket(), "read-write": bucket(grants={OTHER: "read-write"}),
         "read": bucket(grants={OTHER: "read"}), "public": bucket("public-read")}[level]
    account = who(OWNER) if level == "owner" else (None if level == "public" else who(OTHER))
    for need in ("list", "read-object", "write", "owner", "read-acp", "write-acp"):
        if need in allowed:
            policy.check(b, account, need)
        else:
            with pytest.raises(Forbidden) as e:
                policy.check(b, account, need)
            assert e.value.code == "AccessDenied"


def test_policy_parse_and_document_round_trip():
    doc = {"Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::bkt/*"},
        {"Effect": "Allow", "Principal": {"AWS": ["bob"]}, "Action": ["s3:GetObject", "s3:PutObject"],
         "Resource": ["arn:aws:s3:::bkt/*"]},
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{THIRD}:root"}, "Action": "s3:ListBucket",
         "Resource": "arn:aws:s3:::bkt"},
        {"Effect": "Allow", "Principal": {"AWS": OWNER}, "Action": "s3:*", "Resource": "arn:aws:s3:::bkt/*"},
    ]}
    access, grants = policy.parse(json.dumps(doc), bucket(), resolver(known=(OTHER, THIRD, OWNER)))
    assert access == "public-read" and grants == {OTHER: "read-write", THIRD: "read"}  # the owner is no grant
    again = policy.parse(policy.document(bucket(access, grants)), bucket(), resolver())
    assert again == (access, grants)
    assert policy.document(bucket()) is None


@pytest.mark.parametrize("statement", [
    # Deny, public writes and conditions are honoured by evaluation (policy_eval.py): they set no share
    {"Effect": "Deny", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::bkt/*"},
    {"Effect": "Allow", "Principal": "*", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::bkt/*"},
    {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::bkt/*",
     "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}},
])
def test_policies_honoured_by_evaluation_set_no_shares(statement):
    assert policy.parse(json.dumps({"Statement": [statement]}), bucket(), resolver()) == ("private", {})


@pytest.mark.parametrize("statement", [
    {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::other/*"},
    {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::bkt-2/*"},
    {"Effect": "Allow", "Principal": "*", "Action": "iam:CreateUser", "Resource": "arn:aws:s3:::bkt/*"},
    {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::bkt/*",
     "Condition": {"StringFancy": {"aws:SourceIp": "x"}}},
    {"Effect": "Allow", "NotPrincipal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::bkt/*"},
    {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::bkt/*"},
    {"Effect": "Allow", "Principal": {"AWS": "nobody"}, "Action": "s3:GetObject", "Resource": "arn:aws:s3:::bkt/*"},
    {"Effect": "Allow", "Principal": "*", "Action": 7, "Resource": "arn:aws:s3:::bkt/*"},
    {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": 7},
    "not a statement",
])
def test_policies_that_say_more_than_pocketcloud_can_honour_are_refused(statement):
    with pytest.raises(InvalidParameter) as e:
        policy.parse(json.dumps({"Statement": [statement]}), bucket(), resolver())
    assert e.value.code in ("MalformedPolicy", "InvalidArgument")


@pytest.mark.parametrize("text", ["", "{", "[]", '{"Statement": []}', '{"Statement": 3}'])
def test_malformed_policy_documents(text):
    with pytest.raises(InvalidParameter) as e:
        policy.parse(text, bucket(), resolver())
    assert e.value.code == "MalformedPolicy"


def test_canned_acl_names():
    assert policy.canned_acl("PUBLIC-READ") == "public-read"
    assert policy.canned_acl(None) is None and policy.canned_acl("", default="private") == "private"
    for name in ("private", "public-read-write", "authenticated-read", "bucket-owner-full-control"):
        assert policy.canned_acl(name) == name
    with pytest.raises(InvalidParameter) as e:
        policy.canned_acl("public")
    assert e.value.code == "InvalidArgument"


def with_settings(b, **settings):
    b.settings.update(settings)
    return b


@pytest.mark.parametrize("canned, account, need, allowed", [
    ("public-read", None, "list", True),
    ("public-read", None, "write", False),
    ("public-read", None, "read-object", False),      # a bucket ACL opens the listing, not the objects
    ("public-read-write", None, "write", True),
    ("authenticated-read", None, "list", False),
    ("authenticated-read", who(OTHER), "list", True),
    ("authenticated-read", who(OTHER), "write", False),
    ("bucket-owner-full-control", who(OTHER), "list", False),
    ("log-delivery-write", None, "write", False),
])
def test_bucket_acls(canned, account, need, allowed):
    b = with_settings(bucket(), acl={"canned": canned})
    if allowed:
        policy.check(b, account, need)
    else:
        with pytest.raises(Forbidden):
            policy.check(b, account, need)


@pytest.mark.parametrize("grants, account, allowed", [
    ([(OTHER, "READ_ACP")], who(OTHER), {"read-acp"}),
    ([(OTHER, "WRITE_ACP")], who(OTHER), {"write-acp"}),
    ([(OTHER, "FULL_CONTROL")], who(OTHER), {"read-acp", "write-acp", "list", "write"}),
    ([(OTHER, "READ"), (OTHER, "WRITE")], who(OTHER), {"list", "write"}),
    ([(policy.AUTHENTICATED_USERS, "READ_ACP")], who(THIRD), {"read-acp"}),
    ([(policy.AUTHENTICATED_USERS, "READ_ACP")], None, set()),
    ([(policy.ALL_USERS, "READ_ACP"), (policy.ALL_USERS, "WRITE_ACP")], None, {"read-acp", "write-acp"}),
    ([(OTHER, "READ_ACP")], who(THIRD), set()),
])
def test_acp_grants_on_a_bucket_give_exactly_their_permission(grants, account, allowed):
    b = with_settings(bucket(), acl={"canned": policy.explicit_acl(grants)})
    for need in ("list", "read-object", "write", "owner", "read-acp", "write-acp"):
        if need in allowed:
            policy.check(b, account, need)
        else:
            with pytest.raises(Forbidden):
                policy.check(b, account, need)
    enforced = with_settings(bucket(), acl=b.settings["acl"], ownership_controls={"ObjectOwnership":
                                                                                  "BucketOwnerEnforced"})
    for need in allowed:                                # ACLs off: no grant counts
        with pytest.raises(Forbidden):
            policy.check(enforced, account, need)


def test_object_ownership_decides_who_owns_a_write():
    unset, enforced = bucket(), with_settings(bucket(), ownership_controls={"ObjectOwnership": "BucketOwnerEnforced"})
    writer = with_settings(bucket(), ownership_controls={"ObjectOwnership": "ObjectWriter"})
    preferred = with_settings(bucket(), ownership_controls={"ObjectOwnership": "BucketOwnerPreferred"})
    assert policy.new_object_owner(writer, who(OTHER), None) == OTHER
    assert policy.new_object_owner(writer, who(OTHER), "bucket-owner-full-control") == OTHER
    assert policy.new_object_owner(preferred, who(OTHER), "bucket-owner-full-control") is None
    assert policy.new_object_owner(preferred, who(OTHER), "bucket-owner-read") == OTHER
    for b in (unset, enforced, writer, preferred):
        assert policy.new_object_owner(b, who(OWNER), None) is None      # the bucket's owner's own writes
        assert policy.new_object_owner(b, None, None) is None            # anonymous writes: the owner's
    assert policy.new_object_owner(unset, who(OTHER), None) is None
    assert policy.new_object_owner(enforced, who(OTHER), None) is None
    assert policy.object_owner(writer, OTHER) == OTHER and policy.object_owner(writer, None) == OWNER
    assert policy.object_owner(enforced, OTHER) == OWNER                   # BucketOwnerEnforced takes it


def test_an_object_another_account_owns():
    b = with_settings(bucket("public-read", {THIRD: "read-write"}), ownership_controls={"ObjectOwnership":
                                                                                       "ObjectWriter"})
    for need in ("read-object", "read-acp", "write-acp"):
        policy.check_object(b, who(OTHER), need, OTHER, None, "k")       # its writer owns it
        for account in (who(OWNER), who(THIRD), None):                   # nobody else: not the bucket's
            with pytest.raises(Forbidden):                               # owner, shares, public access
                policy.check_object(b, account, need, OTHER, None, "k")
    policy.check_object(b, who(OWNER), "read-object", OTHER, "bucket-owner-read", "k")
    with pytest.raises(Forbidden):
        policy.check_object(b, who(OWNER), "read-acp", OTHER, "bucket-owner-read", "k")
    for need in ("read-object", "read-acp", "write-acp"):
        policy.check_object(b, who(OWNER), need, OTHER, "bucket-owner-full-control", "k")
    policy.check_object(b, who(THIRD), "read-acp", OTHER, policy.explicit_acl([(THIRD, "READ_ACP")]), "k")
    with pytest.raises(Forbidden):
        policy.check_object(b, who(THIRD), "read-object", OTHER, policy.explicit_acl([(THIRD, "READ_ACP")]), "k")
    # the bucket's owner owns it (None, or the writer under BucketOwnerEnforced): the bucket's grants count
    policy.check_object(b, who(THIRD), "read-object", None, None, "k")
    policy.check_object(b, None, "read-object", None, None, "k")
    with pytest.raises(Forbidden):                                       # a share reads objects, not ACLs
        policy.check_object(b, who(THIRD), "read-acp", None, None, "k")
    deny = json.dumps({"Statement": [{"Effect": "Deny", "Principal": "*", "Action": "s3:GetObject",
                                      "Resource": "arn:aws:s3:::bkt/*"}]})
    with_settings(b, policy={"document": deny})
    with pytest.raises(Forbidden):                                       # a Deny binds the object's owner too
        policy.check_object(b, who(OTHER), "read-object", OTHER, None, "k")
    policy.check_object(b, who(OTHER), "read-acp", OTHER, None, "k")


def test_object_acls_open_only_their_object_for_reading():
    b = bucket()
    policy.check(b, None, "read-object", object_acl="public-read")
    policy.check(b, who(OTHER), "read-object", object_acl="authenticated-read")
    for account, acl in ((None, "authenticated-read"), (None, None), (who(OTHER), "private")):
        with pytest.raises(Forbidden):
            policy.check(b, account, "read-object", object_acl=acl)
    with pytest.raises(Forbidden):
        policy.check(b, None, "write", object_acl="public-read-write")


def test_public_access_block_and_ownership():
    b = with_settings(bucket("public-read"), acl={"canned": "public-read"})
    policy.check(b, None, "list")
    policy.check(b, None, "read-object")
    with_settings(b, public_access_block={"IgnorePublicAcls": True})
    with pytest.raises(Forbidden):
        policy.check(b, None, "list")
    policy.check(b, None, "read-object")                # the policy part still counts...
    with_settings(b, public_access_block={"IgnorePublicAcls": True, "RestrictPublicBuckets": True})
    with pytest.raises(Forbidden):                       # ...until RestrictPublicBuckets
        policy.check(b, None, "read-object")
    with pytest.raises(Forbidden):
        policy.check(b, None, "read-object", object_acl="public-read")
    with_settings(b, public_access_block={"BlockPublicAcls": True, "BlockPublicPolicy": True})
    with pytest.raises(Forbidden):
        policy.check_acl_allowed(b, "public-read")
    policy.check_acl_allowed(b, "private")
    with pytest.raises(Forbidden):
        policy.check_public_policy_allowed(b, "public-read")
    enforced = with_settings(bucket(), acl={"canned": "public-read"},
                             ownership_controls={"ObjectOwnership": "BucketOwnerEnforced"})
    with pytest.raises(Forbidden):
        policy.check(enforced, None, "list")           # ACLs disabled: the stored one no longer counts
    with pytest.raises(InvalidParameter) as e:
        policy.check_acl_allowed(enforced, "public-read")
    assert e.value.code == "AccessControlListNotSupported"
    policy.check_acl_allowed(enforced, "bucket-owner-full-control")


def test_principal_references():
    assert policy.account_ref(f"arn:aws:iam::{OTHER}:root") == OTHER
    assert policy.account_ref(f"arn:aws:iam::{OTHER}:user/alice") == OTHER
    assert policy.account_ref("bob") == "bob"
    assert policy.account_ref("arn:aws:iam::12:root") == "arn:aws:iam::12:root"


@pytest.mark.parametrize("key", ["a", "dir/sub dir/ünïcode+plus&amp.bin", "a..b", ".hidden", "a/.../b", "x" * 1024,
                                 "folder/", "a//b", "/a", "//"])
def test_good_keys(key):
    assert validate_key(key) == key


@pytest.mark.parametrize("key, code", [
    ("", "InvalidArgument"), (None, "InvalidArgument"), ("x" * 1025, "KeyTooLongError"),
    ("ü" * 513, "KeyTooLongError"), ("..", "InvalidArgument"), ("../other-bucket/k", "InvalidArgument"),
    ("a/../../other/k", "InvalidArgument"), ("a/./b", "InvalidArgument"), ("a/..", "InvalidArgument"),
    ("a\x07b", "InvalidArgument"), ("\ufffe", "InvalidArgument"),  # no XML listing could name them
])
def test_bad_keys(key, code):
    with pytest.raises(InvalidParameter) as e:
        validate_key(key)
    assert e.value.code == code


@pytest.fixture
def storage(tmp_path):
    config = Config(home=tmp_path, s3_endpoint="")
    store = Store(config.db_path)
    accounts = Accounts(store, config.secret_key_path)
    s = Storage(store, accounts, config, choice=Choice("rclone", "/nonexistent", "unit test"))
    a, _ = accounts.create("alice")
    b, _ = accounts.create("bob")
    # a bucket row without the engine: bucket-level operations only touch the state
    with store.tx() as c:
        c.execute("INSERT INTO buckets (name, owner, access, created_at) VALUES ('bkt', ?, 'private', 0)", (a.id,))
    return s, a, b


def test_facade_policy_acl_and_shares(storage):
    s, a, b = storage
    with pytest.raises(Forbidden):
        s.authorize(b, "bkt", "read-object")
    read = []
    doc = json.dumps({"Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::bkt/*"},
        {"Effect": "Allow", "Principal": {"AWS": [b.name]}, "Action": ["s3:GetObject", "s3:PutObject"],
         "Resource": ["arn:aws:s3:::bkt/*"]}]})
    with pytest.raises(Forbidden):  # bob may not set it, and his document is never read
        s.put_policy(b, "bkt", lambda: read.append(1) or doc)
    assert read == []
    bucket = s.put_policy(a, "bkt", lambda: doc)
    assert bucket.access == "public-read" and bucket.grants == {b.id: "read-write"}
    s.authorize(None, "bkt", "read-object")
    s.authorize(b, "bkt", "write")
    with pytest.raises(Forbidden):
        s.authorize(None, "bkt", "list")
    with pytest.raises(Forbidden):
        s.get_policy(b, "bkt")
    assert json.loads(s.get_policy(a, "bkt")) == json.loads(doc)   # read back as written
    acl = s.get_acl(a, "bkt")
    assert acl.owner.id == a.id and acl.canned == "private" and acl.grants == {b.id: "read-write"}
    s.set_access(a, "bkt", "public-read")             # shares changed through REST: the policy says so
    assert json.loads(s.get_policy(a, "bkt"))["Statement"][0]["Sid"] == "PublicRead"
    s.delete_policy(a, "bkt")
    with pytest.raises(NotFound) as e:
        s.get_policy(a, "bkt")
    assert e.value.code == "NoSuchBucketPolicy"
    with pytest.raises(Forbidden):
        s.authorize(b, "bkt", "read-object")
    assert s.put_acl(a, "bkt", lambda owner: "public-read").acl == "public-read"
    s.authorize(None, "bkt", "list")
    assert s.get_acl(a, "bkt").canned == "public-read"
    assert s.grant(a, "bkt", f"arn:aws:iam::{b.id}:root", "read").grants == {b.id: "read"}
    with pytest.raises(InvalidParameter):
        s.grant(a, "bkt", a.name, "read")
    with pytest.raises(InvalidParameter):
        s.grant(a, "bkt", "nobody-by-that-name", "read")
    assert s.grant(a, "bkt", b.name, None).grants == {}
    assert [x.name for x in s.list_buckets(a)] == ["bkt"] and s.list_buckets(b) == []
    with pytest.raises(Forbidden):
        s.list_buckets(None)
    with pytest.raises(NotFound) as e:
        s.authorize(a, "no-such-bucket", "list")
    assert e.value.code == "NoSuchBucket"
