"""One S3 namespace whatever the engine (issue 19): arbitrary keys coexist, listings follow
S3's rules (compared with tests/s3model.py, AWS's documented behaviour), on every engine the
suite runs on; on the stand-in, an older home's objects are moved to the encoded layout at
first start, and the index is repaired from the engine both ways."""
from __future__ import annotations

import re
import secrets

import pytest
import requests
from botocore.exceptions import ClientError

from emulator.storage import keynames
from tests.conftest import ARTIFACTS
from tests.integration.cloud import start_s3_server
from tests.s3model import boto_page, listing, url_decoded

from .conftest import client_for, code_of

pytestmark = pytest.mark.integration

KEYS = ["a", "a/", "a/b", "a//b", "/lead", "%", "%25", "+", "a b", "a+b", "caf\u00e9/\u00fc", "\U0001F600",
        "~x", "k" * 1024, "z/" * 100 + "deep"]


def test_any_keys_coexist(s3_of, alice, bucket):
    s3 = s3_of(alice)
    for i, key in enumerate(KEYS):
        s3.put_object(Bucket=bucket, Key=key, Body=f"body {i}".encode())
    for i, key in enumerate(KEYS):
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == f"body {i}".encode(), key
        assert s3.head_object(Bucket=bucket, Key=key)["ContentLength"] == len(f"body {i}")
    listed = [o["Key"] for p in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
              for o in p.get("Contents", [])]
    assert listed == sorted(KEYS, key=lambda k: k.encode())
    s3.copy_object(Bucket=bucket, Key="a//b-copy", CopySource={"Bucket": bucket, "Key": "a//b"})
    assert s3.get_object(Bucket=bucket, Key="a//b-copy")["Body"].read() == f"body {KEYS.index('a//b')}".encode()
    out = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in KEYS[:8]]})
    assert sorted(d["Key"] for d in out["Deleted"]) == sorted(KEYS[:8])
    for key in KEYS[8:] + ["a//b-copy"]:
        s3.delete_object(Bucket=bucket, Key=key)
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0
    s3.delete_bucket(Bucket=bucket)  # nothing left behind on the engine either


def test_multipart_under_a_key_that_is_also_a_folder(s3_of, alice, bucket):
    s3 = s3_of(alice)
    s3.put_object(Bucket=bucket, Key="data/x", Body=b"x")
    up = s3.create_multipart_upload(Bucket=bucket, Key="data")
    assert up["Key"] == "data"
    part = s3.upload_part(Bucket=bucket, Key="data", UploadId=up["UploadId"], PartNumber=1, Body=b"p" * 100)
    done = s3.complete_multipart_upload(Bucket=bucket, Key="data", UploadId=up["UploadId"],
                                        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]})
    assert done["Key"] == "data"
    listed = {o["Key"]: o["ETag"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    assert listed == {"data": done["ETag"], "data/x": s3.head_object(Bucket=bucket, Key="data/x")["ETag"]}


LISTED = ["a", "a/1", "a/2/x", "a/2/y", "b-c", "b-d/e", "b/", "c d", "c+d", "\u00e9/1", "\u00e9/2"]


@pytest.fixture
def listed_bucket(s3_of, alice, bucket):
    s3 = s3_of(alice)
    for key in LISTED:
        s3.put_object(Bucket=bucket, Key=key, Body=b"1")
    return bucket


@pytest.mark.parametrize("prefix, delimiter, after", [
    ("", "", ""), ("", "/", ""), ("a/", "/", ""), ("", "-", ""), ("b", "-", ""), ("", "/2/", ""),
    ("", "/", "a/"), ("", "/", "a/2/x"), ("\u00e9", "/", ""), ("", "d", "b"), ("nothing", "/", ""),
])
def test_listings_match_the_model(s3_of, alice, listed_bucket, prefix, delimiter, after):
    s3 = s3_of(alice)
    expected = listing(LISTED, prefix, delimiter, after)
    v2 = s3.list_objects_v2(Bucket=listed_bucket, Prefix=prefix, Delimiter=delimiter, StartAfter=after)
    v1 = s3.list_objects(Bucket=listed_bucket, Prefix=prefix, Delimiter=delimiter, Marker=after)
    assert boto_page(v2) == expected and boto_page(v1) == expected
    assert v2["KeyCount"] == len(expected) and not v2["IsTruncated"] and not v1["IsTruncated"]
    # page by one: each item once, in order; v2 echoes the token it was given
    seen, kw = [], {}
    while True:
        page = s3.list_objects_v2(Bucket=listed_bucket, Prefix=prefix, Delimiter=delimiter, StartAfter=after,
                                  MaxKeys=1, **kw)
        if "ContinuationToken" in kw:
            assert page["ContinuationToken"] == kw["ContinuationToken"]
        assert page.get("StartAfter", "") == after
        seen += boto_page(page)
        if not page["IsTruncated"]:
            break
        kw = {"ContinuationToken": page["NextContinuationToken"]}
    assert seen == expected
    seen, marker = [], after
    while True:
        page = s3.list_objects(Bucket=listed_bucket, Prefix=prefix, Delimiter=delimiter, Marker=marker, MaxKeys=2)
        seen += boto_page(page)
        if not page["IsTruncated"]:
            break
        marker = page["NextMarker"] if delimiter else page["Contents"][-1]["Key"]
        assert "NextMarker" in page or not delimiter
    assert seen == expected


def test_listing_details(s3_of, alice, listed_bucket, signed):
    s3 = s3_of(alice)
    page = s3.list_objects_v2(Bucket=listed_bucket, MaxKeys=0)
    assert page["KeyCount"] == 0 and "Contents" not in page and page["MaxKeys"] == 0
    assert "Owner" not in s3.list_objects_v2(Bucket=listed_bucket)["Contents"][0]
    owner = s3.list_objects_v2(Bucket=listed_bucket, FetchOwner=True)["Contents"][0]["Owner"]
    assert owner["ID"] == alice.id
    assert s3.list_objects(Bucket=listed_bucket)["Contents"][0]["Owner"]["ID"] == alice.id  # v1 always has it
    got = s3.head_object(Bucket=listed_bucket, Key="c d")
    entry = next(o for o in s3.list_objects_v2(Bucket=listed_bucket)["Contents"] if o["Key"] == "c d")
    assert entry["ETag"] == got["ETag"] and entry["Size"] == 1 and entry["StorageClass"] == "STANDARD"
    # EncodingType=url asked for: values come encoded (botocore decodes only what it asked for itself)
    page = s3.list_objects_v2(Bucket=listed_bucket, EncodingType="url", Prefix="c", Delimiter=" ")
    assert [(kind, url_decoded(v)) for kind, v in boto_page(page)] == listing(LISTED, "c", " ")
    assert url_decoded(page["Delimiter"]) == " "
    raw = signed(alice, "GET", f"/{listed_bucket}", [("list-type", "2"), ("encoding-type", "url"),
                                                     ("prefix", "c"), ("start-after", "c\u00e9")])
    assert raw.status_code == 200
    keys = re.findall(r"<Key>([^<]*)</Key>", raw.text)
    assert keys == [] or all(re.fullmatch(r"[A-Za-z0-9/%._~*-]*", k) for k in keys)
    raw = signed(alice, "GET", f"/{listed_bucket}", [("list-type", "2"), ("encoding-type", "url"), ("prefix", "c")])
    assert re.findall(r"<Key>([^<]*)</Key>", raw.text) == ["c%20d", "c%2Bd"]
    assert "<Prefix>c</Prefix>" in raw.text and "<EncodingType>url</EncodingType>" in raw.text
    for params, code in (({"MaxKeys": -1}, "InvalidArgument"), ({"ContinuationToken": "bm9wZQ=="}, "InvalidArgument")):
        with pytest.raises(ClientError) as e:
            s3.list_objects_v2(Bucket=listed_bucket, **params)
        assert code_of(e) == (code, 400)
    bad = signed(alice, "GET", f"/{listed_bucket}", [("encoding-type", "base64")])
    assert bad.status_code == 400 and "<Code>InvalidArgument</Code>" in bad.text


def test_listing_by_others_and_anonymous(s3_of, alice, bob, listed_bucket, s3_endpoint):
    with pytest.raises(ClientError) as e:
        s3_of(bob).list_objects_v2(Bucket=listed_bucket)
    assert code_of(e) == ("AccessDenied", 403)
    r = requests.get(f"{s3_endpoint}/{listed_bucket}?list-type=2", timeout=30)
    assert r.status_code == 403 and "<Code>AccessDenied</Code>" in r.text


# -- the stand-in's own home: first-start migration and reconcile ------------------------------------------
def _files(data):
    return sorted(p.relative_to(data).as_posix() for p in data.rglob("*") if p.is_file())


def test_old_home_is_migrated_and_the_index_repaired(tmp_path):
    """A home whose stand-in files are in the layout before issue 19 (each object the file at its
    key's path; folder markers in the index only): after a restart every key answers, lists
    and deletes; then a file put on the engine behind the cloud's back is indexed and an indexed
    object whose file went is dropped, each with a log line."""
    srv = start_s3_server(tmp_path / "home", ARTIFACTS, "rclone")   # its own server: runs once, not per engine
    try:
        user = srv.admin.ok("POST", "/accounts", 201, json={"name": f"mig-{secrets.token_hex(3)}"})
        who = type("W", (), {"key_id": user["access_key_id"], "secret": user["secret_access_key"]})
        s3 = client_for(srv.url, who)
        s3.create_bucket(Bucket="old-home")
        old = {"top.txt": b"1", "dir/x": b"22", "dir/sub/y z": b"333", "caf\u00e9": b"4"}
        for key, body in old.items():
            s3.put_object(Bucket="old-home", Key=key, Body=body)
        s3.put_object(Bucket="old-home", Key="marker/", Body=b"")
        srv.stop()
        # rewrite the home as the code before issue 19 kept it
        data = srv.home / "storage" / "data" / "old-home"
        for key in old:
            src, dst = data / keynames.encode(key), data / key
            dst.parent.mkdir(parents=True, exist_ok=True)
            src.rename(dst)
        (data / keynames.encode("marker/")).unlink()
        for d in sorted((p for p in data.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
            if not any(d.iterdir()):
                d.rmdir()
        (srv.home / "storage" / "layout").unlink()
        assert _files(data) == sorted(old)
        srv.start()
        for key, body in old.items():
            assert s3.get_object(Bucket="old-home", Key=key)["Body"].read() == body
        assert s3.get_object(Bucket="old-home", Key="marker/")["Body"].read() == b""
        assert [o["Key"] for o in s3.list_objects_v2(Bucket="old-home")["Contents"]] == \
            sorted([*old, "marker/"], key=lambda k: k.encode())
        s3.put_object(Bucket="old-home", Key="dir", Body=b"now possible")
        # reconcile, both ways
        srv.stop()
        (data / keynames.encode("dir/x")).unlink()
        (data / keynames.encode("behind/the-back")).parent.mkdir(parents=True, exist_ok=True)
        (data / keynames.encode("behind/the-back")).write_bytes(b"hello")
        srv.start()
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket="old-home")["Contents"]]
        assert "dir/x" not in keys and "behind/the-back" in keys
        assert s3.get_object(Bucket="old-home", Key="behind/the-back")["Body"].read() == b"hello"
        log = srv.log_path.read_text()
        assert "moved to the new key layout" in log
        assert re.search(r"reconcile: old-home/behind/the-back is on the engine but was not indexed", log)
        assert re.search(r"reconcile: old-home/dir/x was indexed but the engine has no such object", log)
        for key in keys:
            s3.delete_object(Bucket="old-home", Key=key)
        s3.delete_bucket(Bucket="old-home")
    finally:
        srv.stop()
