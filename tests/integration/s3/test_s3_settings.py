"""Bucket and object settings that pocketcloud keeps itself, the same on every engine: tags,
CORS (stored, answered on preflight and on real requests), lifecycle (stored, and honoured
by the background pass). With unmodified boto3 and plain HTTP through the running server."""
from __future__ import annotations

import time

import pytest
import requests
from botocore.exceptions import ClientError

from .conftest import LIFECYCLE_DAY, code_of

pytestmark = pytest.mark.integration


def tagset(pairs: dict) -> dict:
    return {"TagSet": [{"Key": k, "Value": v} for k, v in pairs.items()]}


def tags_of(response) -> dict:
    return {t["Key"]: t["Value"] for t in response["TagSet"]}


# -- tags -------------------------------------------------------------------------------------------
def test_bucket_tagging(s3_of, alice, bob, bucket):
    s3 = s3_of(alice)
    with pytest.raises(ClientError) as e:
        s3.get_bucket_tagging(Bucket=bucket)
    assert code_of(e) == ("NoSuchTagSet", 404)
    s3.put_bucket_tagging(Bucket=bucket, Tagging=tagset({"team": "data", "cost centre": "4711", "empty": ""}))
    assert tags_of(s3.get_bucket_tagging(Bucket=bucket)) == {"team": "data", "cost centre": "4711", "empty": ""}
    bad = {"aws:reserved": tagset({"aws:x": "1"}), "duplicate": {"TagSet": [{"Key": "a", "Value": "1"},
                                                                               {"Key": "a", "Value": "2"}]},
           "long key": tagset({"k" * 129: "v"}), "bad chars": tagset({"a<b": "v"})}
    for what, tagging in bad.items():
        with pytest.raises(ClientError) as e:
            s3.put_bucket_tagging(Bucket=bucket, Tagging=tagging)
        assert code_of(e) == ("InvalidTag", 400), what
    with pytest.raises(ClientError) as e:
        s3.put_bucket_tagging(Bucket=bucket, Tagging=tagset({f"k{i}": "v" for i in range(51)}))
    assert code_of(e) == ("BadRequest", 400)
    for call in (lambda: s3_of(bob).get_bucket_tagging(Bucket=bucket),
                 lambda: s3_of(bob).put_bucket_tagging(Bucket=bucket, Tagging=tagset({"x": "y"})),
                 lambda: s3_of(bob).delete_bucket_tagging(Bucket=bucket)):
        with pytest.raises(ClientError) as e:
            call()
        assert code_of(e) == ("AccessDenied", 403)
    assert tags_of(s3.get_bucket_tagging(Bucket=bucket))["team"] == "data"  # unchanged by the refusals
    s3.delete_bucket_tagging(Bucket=bucket)
    with pytest.raises(ClientError) as e:
        s3.get_bucket_tagging(Bucket=bucket)
    assert code_of(e) == ("NoSuchTagSet", 404)


def test_object_tagging_follows_the_object(s3_of, alice, bob, bucket):
    s3 = s3_of(alice)
    s3.put_object(Bucket=bucket, Key="t.txt", Body=b"x", Tagging="project=blue&stage=raw%20data")
    assert tags_of(s3.get_object_tagging(Bucket=bucket, Key="t.txt")) == {"project": "blue", "stage": "raw data"}
    assert s3.get_object(Bucket=bucket, Key="t.txt")["TagCount"] == 2
    assert s3.head_object(Bucket=bucket, Key="t.txt")["ResponseMetadata"]["HTTPHeaders"]["x-amz-tagging-count"] == "2"
    # a copy keeps the source's tags (COPY), or takes new ones (REPLACE)
    s3.copy_object(Bucket=bucket, Key="copy.txt", CopySource={"Bucket": bucket, "Key": "t.txt"})
    assert tags_of(s3.get_object_tagging(Bucket=bucket, Key="copy.txt")) == {"project": "blue", "stage": "raw data"}
    s3.copy_object(Bucket=bucket, Key="copy.txt", CopySource={"Bucket": bucket, "Key": "t.txt"},
                   TaggingDirective="REPLACE", Tagging="only=this")
    assert tags_of(s3.get_object_tagging(Bucket=bucket, Key="copy.txt")) == {"only": "this"}
    # put/delete tagging; an overwrite without tags has none, as on S3
    s3.put_object_tagging(Bucket=bucket, Key="t.txt", Tagging=tagset({"stage": "clean"}))
    assert tags_of(s3.get_object_tagging(Bucket=bucket, Key="t.txt")) == {"stage": "clean"}
    s3.put_object(Bucket=bucket, Key="t.txt", Body=b"y")
    assert s3.get_object_tagging(Bucket=bucket, Key="t.txt")["TagSet"] == []
    assert "TagCount" not in s3.get_object(Bucket=bucket, Key="t.txt")
    s3.put_object_tagging(Bucket=bucket, Key="t.txt", Tagging=tagset({"a": "1"}))
    s3.delete_object_tagging(Bucket=bucket, Key="t.txt")
    assert s3.get_object_tagging(Bucket=bucket, Key="t.txt")["TagSet"] == []
    # multipart: the tags given at the start land on the completed object
    uid = s3.create_multipart_upload(Bucket=bucket, Key="mp.bin", Tagging="from=multipart")["UploadId"]
    etag = s3.upload_part(Bucket=bucket, Key="mp.bin", UploadId=uid, PartNumber=1, Body=b"m" * 1024)["ETag"]
    s3.complete_multipart_upload(Bucket=bucket, Key="mp.bin", UploadId=uid,
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})
    assert tags_of(s3.get_object_tagging(Bucket=bucket, Key="mp.bin")) == {"from": "multipart"}
    # errors: no such key, too many tags, bad header, another account
    with pytest.raises(ClientError) as e:
        s3.get_object_tagging(Bucket=bucket, Key="missing")
    assert code_of(e) == ("NoSuchKey", 404)
    with pytest.raises(ClientError) as e:
        s3.put_object_tagging(Bucket=bucket, Key="t.txt", Tagging=tagset({f"k{i}": "v" for i in range(11)}))
    assert code_of(e) == ("BadRequest", 400)
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="bad-tags.txt", Body=b"z", Tagging="aws:x=1")
    assert code_of(e) == ("InvalidTag", 400)
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="bad-tags.txt")  # refused before anything was written
    with pytest.raises(ClientError) as e:
        s3_of(bob).put_object_tagging(Bucket=bucket, Key="mp.bin", Tagging=tagset({"bob": "was here"}))
    assert code_of(e) == ("AccessDenied", 403)
    assert tags_of(s3.get_object_tagging(Bucket=bucket, Key="mp.bin")) == {"from": "multipart"}
    # deleting the object takes its tags along: a new object of that name starts without
    s3.delete_object(Bucket=bucket, Key="mp.bin")
    s3.put_object(Bucket=bucket, Key="mp.bin", Body=b"new")
    assert s3.get_object_tagging(Bucket=bucket, Key="mp.bin")["TagSet"] == []


# -- CORS -----------------------------------------------------------------------------------------------
CORS = {"CORSRules": [
    {"ID": "app", "AllowedOrigins": ["https://app.example"], "AllowedMethods": ["GET", "PUT"],
     "AllowedHeaders": ["Content-Type", "x-amz-*"], "ExposeHeaders": ["ETag"], "MaxAgeSeconds": 600},
    {"AllowedOrigins": ["*"], "AllowedMethods": ["GET"]},
]}


def preflight(s3_endpoint, bucket, origin=None, method=None, headers=None, key="page.html"):
    h = {}
    if origin:
        h["Origin"] = origin
    if method:
        h["Access-Control-Request-Method"] = method
    if headers:
        h["Access-Control-Request-Headers"] = headers
    return requests.options(f"{s3_endpoint}/{bucket}/{key}", headers=h, timeout=30)


def test_cors_configuration_preflight_and_responses(s3_of, alice, bob, bucket, s3_endpoint):
    s3 = s3_of(alice)
    s3.put_object(Bucket=bucket, Key="page.html", Body=b"<p>hi</p>", ContentType="text/html")
    with pytest.raises(ClientError) as e:
        s3.get_bucket_cors(Bucket=bucket)
    assert code_of(e) == ("NoSuchCORSConfiguration", 404)
    r = preflight(s3_endpoint, bucket, "https://app.example", "GET")
    assert r.status_code == 403 and "<Code>AccessForbidden</Code>" in r.text  # no CORS configuration yet

    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration=CORS)
    rules = s3.get_bucket_cors(Bucket=bucket)["CORSRules"]
    assert rules[0] == {"ID": "app", "AllowedHeaders": ["Content-Type", "x-amz-*"], "AllowedMethods": ["GET", "PUT"],
                        "AllowedOrigins": ["https://app.example"], "ExposeHeaders": ["ETag"], "MaxAgeSeconds": 600}
    assert rules[1] == {"AllowedMethods": ["GET"], "AllowedOrigins": ["*"]}

    # a browser app may PUT with its headers; the answer names exactly what it allows
    r = preflight(s3_endpoint, bucket, "https://app.example", "PUT", "content-type, x-amz-meta-colour")
    assert r.status_code == 200, r.text
    assert r.headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert r.headers["Access-Control-Allow-Methods"] == "GET, PUT"
    assert r.headers["Access-Control-Allow-Headers"] == "content-type, x-amz-meta-colour"
    assert r.headers["Access-Control-Expose-Headers"] == "ETag" and r.headers["Access-Control-Max-Age"] == "600"
    assert r.headers["Access-Control-Allow-Credentials"] == "true"
    # any origin may GET (the wildcard rule); nobody else may PUT or send other headers
    r = preflight(s3_endpoint, bucket, "https://elsewhere.example", "GET")
    assert r.status_code == 200 and r.headers["Access-Control-Allow-Origin"] == "*"
    for origin, method, headers in (("https://elsewhere.example", "PUT", None),
                                    ("https://app.example", "DELETE", None),
                                    ("https://app.example", "PUT", "authorization-extra")):
        r = preflight(s3_endpoint, bucket, origin, method, headers)
        assert r.status_code == 403 and "AccessForbidden" in r.text, (origin, method, headers)
    r = preflight(s3_endpoint, bucket, None, "GET")
    assert r.status_code == 400 and "Origin" in r.text
    r = preflight(s3_endpoint, bucket, "https://app.example", None)
    assert r.status_code == 400
    # a real (signed) request from the page gets the headers too; without Origin, none
    s3.meta.events.register("before-sign.s3.GetObject",
                            lambda request, **kw: request.headers.__setitem__("Origin", "https://app.example"))
    got = s3.get_object(Bucket=bucket, Key="page.html")["ResponseMetadata"]["HTTPHeaders"]
    assert got["access-control-allow-origin"] == "https://app.example"
    assert got["access-control-expose-headers"] == "ETag"
    plain = s3_of(alice).get_object(Bucket=bucket, Key="page.html")["ResponseMetadata"]["HTTPHeaders"]
    assert not any(h.startswith("access-control-") for h in plain)
    # CORS opens nothing by itself: an anonymous GET from any origin is still refused
    r = requests.get(f"{s3_endpoint}/{bucket}/page.html", headers={"Origin": "https://app.example"}, timeout=30)
    assert r.status_code == 403 and r.headers["Access-Control-Allow-Origin"] == "https://app.example"

    # bad configurations are refused and change nothing
    bad = {"method": {"CORSRules": [{"AllowedOrigins": ["*"], "AllowedMethods": ["PATCH"]}]},
           "two wildcards": {"CORSRules": [{"AllowedOrigins": ["https://*.*.example"], "AllowedMethods": ["GET"]}]}}
    for what, conf in bad.items():
        with pytest.raises(ClientError) as e:
            s3.put_bucket_cors(Bucket=bucket, CORSConfiguration=conf)
        assert code_of(e) == ("InvalidRequest", 400), what
    with pytest.raises(ClientError) as e:
        s3_of(bob).put_bucket_cors(Bucket=bucket, CORSConfiguration=CORS)
    assert code_of(e) == ("AccessDenied", 403)
    assert len(s3.get_bucket_cors(Bucket=bucket)["CORSRules"]) == 2
    s3.delete_bucket_cors(Bucket=bucket)
    assert preflight(s3_endpoint, bucket, "https://app.example", "GET").status_code == 403


# -- lifecycle -----------------------------------------------------------------------------------------
def test_lifecycle_configuration_round_trip_and_refusals(s3_of, alice, bob, bucket):
    s3 = s3_of(alice)
    with pytest.raises(ClientError) as e:
        s3.get_bucket_lifecycle_configuration(Bucket=bucket)
    assert code_of(e) == ("NoSuchLifecycleConfiguration", 404)
    rules = [
        {"ID": "logs", "Status": "Enabled", "Filter": {"Prefix": "logs/"}, "Expiration": {"Days": 30}},
        {"ID": "tagged", "Status": "Disabled", "Filter": {"Tag": {"Key": "tmp", "Value": "yes"}},
         "Expiration": {"Date": "2030-01-01T00:00:00Z"}},
        {"ID": "both", "Status": "Enabled",
         "Filter": {"And": {"Prefix": "x/", "Tags": [{"Key": "a", "Value": "1"}], "ObjectSizeGreaterThan": 10}},
         "Expiration": {"Days": 7}, "NoncurrentVersionExpiration": {"NoncurrentDays": 3}},
        {"ID": "uploads", "Status": "Enabled", "Filter": {}, "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 2}},
    ]
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": rules})
    got = s3.get_bucket_lifecycle_configuration(Bucket=bucket)
    back = {r["ID"]: r for r in got["Rules"]}
    assert back["logs"]["Filter"] == {"Prefix": "logs/"} and back["logs"]["Expiration"] == {"Days": 30}
    assert back["tagged"]["Filter"] == {"Tag": {"Key": "tmp", "Value": "yes"}} and back["tagged"]["Status"] == "Disabled"
    assert back["tagged"]["Expiration"]["Date"].year == 2030
    assert back["both"]["Filter"]["And"] == {"Prefix": "x/", "Tags": [{"Key": "a", "Value": "1"}],
                                             "ObjectSizeGreaterThan": 10}
    assert back["both"]["NoncurrentVersionExpiration"] == {"NoncurrentDays": 3}
    assert back["uploads"]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 2}
    assert got["TransitionDefaultMinimumObjectSize"] == "all_storage_classes_128K"

    refused = {
        ("InvalidArgument", 400): [{"ID": "z", "Status": "Enabled", "Filter": {}, "Expiration": {"Days": 0}},
                                   {"ID": "d", "Status": "Enabled", "Filter": {},
                                    "Expiration": {"Date": "2030-01-01T12:00:00Z"}}],
        ("NotImplemented", 501): [{"ID": "t", "Status": "Enabled", "Filter": {},
                                   "Transitions": [{"Days": 30, "StorageClass": "GLACIER"}]}],
        ("InvalidRequest", 400): [{"ID": "n", "Status": "Enabled", "Filter": {}},
                                  {"ID": "a", "Status": "Enabled", "Filter": {"Tag": {"Key": "k", "Value": "v"}},
                                   "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}}],
    }
    for expected, bad_rules in refused.items():
        for rule in bad_rules:
            with pytest.raises(ClientError) as e:
                s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [rule]})
            assert code_of(e) == expected, rule
    with pytest.raises(ClientError) as e:  # two rules, one ID
        s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [rules[0], rules[0]]})
    assert code_of(e) == ("InvalidArgument", 400)
    with pytest.raises(ClientError) as e:
        s3_of(bob).delete_bucket_lifecycle(Bucket=bucket)
    assert code_of(e) == ("AccessDenied", 403)
    assert len(s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]) == 4  # unchanged
    s3.delete_bucket_lifecycle(Bucket=bucket)
    with pytest.raises(ClientError):
        s3.get_bucket_lifecycle_configuration(Bucket=bucket)


def wait_until(condition, timeout: float = 30.0, what: str = ""):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.5)


def keys_of(s3, bucket) -> set:
    return {o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])}


def test_lifecycle_expires_what_its_rules_select(s3_of, alice, bucket):
    """The server's lifecycle day is LIFECYCLE_DAY seconds: Days=1 expires an object that
    long after its write; the background pass deletes it from the engine and the index."""
    s3 = s3_of(alice)
    s3.put_object(Bucket=bucket, Key="keep/a.txt", Body=b"a")
    s3.put_object(Bucket=bucket, Key="tmp/b.txt", Body=b"b")
    s3.put_object(Bucket=bucket, Key="scratch/big.bin", Body=b"c" * 100, Tagging="disposable=yes")
    s3.put_object(Bucket=bucket, Key="scratch/small.bin", Body=b"c", Tagging="disposable=yes")
    s3.put_object(Bucket=bucket, Key="scratch/untagged.bin", Body=b"c" * 100)
    uid = s3.create_multipart_upload(Bucket=bucket, Key="tmp/never-finished.bin")["UploadId"]
    s3.upload_part(Bucket=bucket, Key="tmp/never-finished.bin", UploadId=uid, PartNumber=1, Body=b"p" * 1000)
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [
        {"ID": "tmp", "Status": "Enabled", "Filter": {"Prefix": "tmp/"}, "Expiration": {"Days": 1},
         "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}},
        {"ID": "disposable", "Status": "Enabled",
         "Filter": {"And": {"Prefix": "scratch/", "Tags": [{"Key": "disposable", "Value": "yes"}],
                            "ObjectSizeGreaterThan": 10}},
         "Expiration": {"Days": 1}},
        {"ID": "off", "Status": "Disabled", "Filter": {"Prefix": "keep/"}, "Expiration": {"Days": 1}},
    ]})
    head = s3.head_object(Bucket=bucket, Key="tmp/b.txt")["ResponseMetadata"]["HTTPHeaders"]
    assert 'rule-id="tmp"' in head["x-amz-expiration"]
    wait_until(lambda: keys_of(s3, bucket) == {"keep/a.txt", "scratch/small.bin", "scratch/untagged.bin"},
               what="the expired objects to go")
    wait_until(lambda: not s3.list_multipart_uploads(Bucket=bucket).get("Uploads"), what="the upload to be aborted")
    assert alice.usage(bucket) == {"objects": 3, "bytes": 1 + 1 + 100}
    assert alice.account_usage()["multipart_pending_bytes"] == 0
    # a new object under tmp/ lives its lifecycle day, then goes too
    s3.put_object(Bucket=bucket, Key="tmp/later.txt", Body=b"l")
    assert "tmp/later.txt" in keys_of(s3, bucket)
    time.sleep(LIFECYCLE_DAY + 2.5)
    assert "tmp/later.txt" not in keys_of(s3, bucket)
    assert keys_of(s3, bucket) == {"keep/a.txt", "scratch/small.bin", "scratch/untagged.bin"}


@pytest.mark.parametrize("sub, good", [
    ("tagging", b"<Tagging><TagSet><Tag><Key>k</Key><Value>v</Value></Tag></TagSet></Tagging>"),
    ("cors", b"<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod>"
             b"</CORSRule></CORSConfiguration>"),
    ("lifecycle", b"<LifecycleConfiguration><Rule><ID>r</ID><Filter/><Status>Enabled</Status>"
                  b"<Expiration><Days>9</Days></Expiration></Rule></LifecycleConfiguration>"),
    ("ownershipControls", b"<OwnershipControls><Rule><ObjectOwnership>ObjectWriter</ObjectOwnership></Rule>"
                          b"</OwnershipControls>"),
])
def test_malformed_and_oversized_settings_change_nothing(s3_of, alice, bucket, signed, sub, good):
    """Each settings document: broken XML, entities, a wrong root or 5 MiB are refused, and
    the stored setting stays as it was."""
    put = lambda body: signed(alice, "PUT", f"/{bucket}", [(sub, "")], body)  # noqa: E731
    assert put(good).status_code in (200, 204)
    before = signed(alice, "GET", f"/{bucket}", [(sub, "")]).text
    bad = [b"<unclosed", b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "boom">]><x>&e;</x>',
           b"<Other><Rule/></Other>" if sub != "tagging" else b"<Tagging><NoTagSet/></Tagging>",
           good[:-20] + b" " * (5 * 1024 * 1024)]
    for body in bad:
        r = put(body)
        assert r.status_code == 400 and "<Code>" in r.text, (body[:40], r.status_code, r.text[:300])
    after = signed(alice, "GET", f"/{bucket}", [(sub, "")])
    assert after.status_code == 200 and after.text == before
