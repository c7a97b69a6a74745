"""Browser form uploads (POST Object) with a signed policy, as S3 defines them: boto3's
generate_presigned_post (SigV4) and a SigV2 form, conditions enforced, success_action_*
answers, CORS on the route; anonymous and other accounts' forms, on every engine."""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json

import pytest
import requests

from .conftest import code_of

pytestmark = pytest.mark.integration


def post(endpoint, bucket, fields, body=b"hello form", filename="f.txt", **kw):
    return requests.post(f"{endpoint}/{bucket}", data=fields, files={"file": (filename, body)}, timeout=30, **kw)


def test_sigv4_form_upload_with_conditions(s3_of, alice, bob, bucket, s3_endpoint):
    s3 = s3_of(alice, signature_version="s3v4")   # boto3's default form signature is SigV2
    form = s3.generate_presigned_post(bucket, "uploads/${filename}",
                                      Fields={"Content-Type": "text/plain", "success_action_status": "201"},
                                      Conditions=[["starts-with", "$key", "uploads/"], {"Content-Type": "text/plain"},
                                                  ["content-length-range", 1, 100], {"success_action_status": "201"}],
                                      ExpiresIn=300)
    r = post(s3_endpoint, bucket, form["fields"], filename="note.txt")
    assert r.status_code == 201, r.text
    assert "<Key>uploads/note.txt</Key>" in r.text and "<Bucket>" in r.text
    got = s3.get_object(Bucket=bucket, Key="uploads/note.txt")
    assert got["Body"].read() == b"hello form" and got["ContentType"] == "text/plain"
    # each condition, broken
    for change, code in (({"key": "elsewhere/x"}, "AccessDenied"), ({"Content-Type": "text/html"}, "AccessDenied"),
                         ({"extra-field": "1"}, "AccessDenied"), ({"x-amz-signature": "0" * 64}, "SignatureDoesNotMatch")):
        r = post(s3_endpoint, bucket, {**form["fields"], **change})
        assert r.status_code == 403 and f"<Code>{code}</Code>" in r.text, (change, r.text)
    r = post(s3_endpoint, bucket, form["fields"], body=b"x" * 101)
    assert r.status_code == 400 and "<Code>EntityTooLarge</Code>" in r.text
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["uploads/note.txt"]
    # bob's own signed form cannot write into alice's bucket
    assert "x-amz-signature" in form["fields"]
    theirs = s3_of(bob).generate_presigned_post(bucket, "uploads/bob.txt", ExpiresIn=300)
    r = post(s3_endpoint, bucket, theirs["fields"])
    assert r.status_code == 403 and "<Code>AccessDenied</Code>" in r.text


def test_redirect_default_status_expiry_and_cors(s3_of, alice, bucket, s3_endpoint):
    s3 = s3_of(alice)
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": [
        {"AllowedOrigins": ["https://app.example"], "AllowedMethods": ["POST"], "AllowedHeaders": ["*"]}]})
    form = s3.generate_presigned_post(bucket, "r.txt", Fields={"success_action_redirect": "https://app.example/done"},
                                      Conditions=[{"success_action_redirect": "https://app.example/done"}])
    r = post(s3_endpoint, bucket, form["fields"], allow_redirects=False, headers={"Origin": "https://app.example"})
    assert r.status_code == 303 and r.headers["Location"].startswith("https://app.example/done?bucket=")
    assert "key=r.txt" in r.headers["Location"] and r.headers["Access-Control-Allow-Origin"] == "https://app.example"
    pre = requests.options(f"{s3_endpoint}/{bucket}", timeout=30, headers={
        "Origin": "https://app.example", "Access-Control-Request-Method": "POST"})
    assert pre.status_code == 200 and pre.headers["Access-Control-Allow-Origin"] == "https://app.example"
    form = s3.generate_presigned_post(bucket, "plain.txt")
    r = post(s3_endpoint, bucket, form["fields"])
    assert r.status_code == 204 and r.headers["ETag"]
    form = s3.generate_presigned_post(bucket, "late.txt", ExpiresIn=-10)
    r = post(s3_endpoint, bucket, form["fields"])
    assert r.status_code == 403 and "Policy expired" in r.text


def test_sigv2_form_and_anonymous_forms(s3_of, alice, bucket, s3_endpoint):
    policy = base64.b64encode(json.dumps({
        "expiration": (dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "conditions": [{"bucket": bucket}, ["starts-with", "$key", "v2/"], {"acl": "public-read"}]}).encode()).decode()
    signature = base64.b64encode(hmac.new(alice.secret.encode(), policy.encode(), hashlib.sha1).digest()).decode()
    fields = {"key": "v2/a.txt", "acl": "public-read", "AWSAccessKeyId": alice.key_id, "policy": policy,
              "signature": signature}
    r = post(s3_endpoint, bucket, fields)
    assert r.status_code == 204, r.text
    assert requests.get(f"{s3_endpoint}/{bucket}/v2/a.txt", timeout=30).content == b"hello form"   # public-read
    r = post(s3_endpoint, bucket, {**fields, "acl": "private"})
    assert r.status_code == 403
    # no policy: an anonymous upload, refused on a private bucket, taken where anyone may write
    r = post(s3_endpoint, bucket, {"key": "anon.txt"})
    assert r.status_code == 403 and "<Code>AccessDenied</Code>" in r.text
    s3_of(alice).put_bucket_acl(Bucket=bucket, ACL="public-read-write")
    assert post(s3_endpoint, bucket, {"key": "anon.txt"}).status_code == 204
    r = requests.post(f"{s3_endpoint}/{bucket}", data=b"not a form", timeout=30)
    assert r.status_code == 400
