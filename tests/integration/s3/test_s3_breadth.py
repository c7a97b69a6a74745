"""What the aws CLI, boto3 and Terraform call beyond the basics: versioning as the engine
really keeps it, ListObjectVersions, UploadPartCopy, every paginator, virtual-hosted-style
addressing next to path style, GetBucketLocation, and nosniff on every answer."""
from __future__ import annotations

import hashlib
import shutil
import socket
import subprocess

import boto3
import pytest
import requests
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError

from .conftest import code_of

pytestmark = pytest.mark.integration
MiB = 1024 * 1024


# -- versioning, versions ----------------------------------------------------------------------------
def test_versioning_is_what_the_engine_keeps(s3_of, alice, bob, bucket, engine, keeps_versions):
    s3 = s3_of(alice)
    got = s3.get_bucket_versioning(Bucket=bucket)
    assert "Status" not in got                          # never versioned: S3 answers an empty configuration
    if keeps_versions:
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
        v1 = s3.put_object(Bucket=bucket, Key="v.txt", Body=b"one")["VersionId"]
        s3.put_object(Bucket=bucket, Key="v.txt", Body=b"two")
        assert s3.get_object(Bucket=bucket, Key="v.txt", VersionId=v1)["Body"].read() == b"one"
        assert len(s3.list_object_versions(Bucket=bucket)["Versions"]) == 2
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})
        assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Suspended"
    else:
        with pytest.raises(ClientError) as e:
            s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        assert code_of(e) == ("NotImplemented", 501)
        assert engine["name"] in e.value.response["Error"]["Message"]  # names the engine that cannot
        assert "Status" not in s3.get_bucket_versioning(Bucket=bucket)  # nothing changed
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})
        assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Suspended"
        s3.put_object(Bucket=bucket, Key="v.txt", Body=b"one")
        put = s3.put_object(Bucket=bucket, Key="v.txt", Body=b"two")
        assert "VersionId" not in put
        assert s3.get_object(Bucket=bucket, Key="v.txt", VersionId="null")["Body"].read() == b"two"
        with pytest.raises(ClientError) as e:
            s3.get_object(Bucket=bucket, Key="v.txt", VersionId="3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY")
        assert code_of(e) == ("InvalidArgument", 400)
    with pytest.raises(ClientError) as e:
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled", "MFADelete": "Enabled"},
                                 MFA="serial 123456")
    assert code_of(e) == ("NotImplemented", 501) and "MFA" in e.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as e:
        s3_of(bob).put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})
    assert code_of(e) == ("AccessDenied", 403)


def test_list_object_versions_of_an_unversioned_bucket(s3_of, alice, bob, bucket, keeps_versions):
    s3 = s3_of(alice)
    keys = ["a.txt", "dir/b.txt", "dir/c.txt", "dir/sub/d.txt", "e space+plus.txt", "z.txt"]
    for k in keys:
        s3.put_object(Bucket=bucket, Key=k, Body=k.encode())
    listed = s3.list_object_versions(Bucket=bucket)
    assert [v["Key"] for v in listed["Versions"]] == sorted(keys)
    assert {v["VersionId"] for v in listed["Versions"]} == {"null"} and all(v["IsLatest"] for v in listed["Versions"])
    first = listed["Versions"][0]
    assert first["Size"] == len(b"a.txt") and first["ETag"] == '"' + hashlib.md5(b"a.txt").hexdigest() + '"'
    assert first["Owner"]["ID"] == alice.id and not listed.get("DeleteMarkers")
    # delimiter, prefix, and the paginator over max-keys
    top = s3.list_object_versions(Bucket=bucket, Delimiter="/")
    assert [v["Key"] for v in top["Versions"]] == ["a.txt", "e space+plus.txt", "z.txt"]
    assert [p["Prefix"] for p in top["CommonPrefixes"]] == ["dir/"]
    under = s3.list_object_versions(Bucket=bucket, Prefix="dir/", Delimiter="/")
    assert [v["Key"] for v in under["Versions"]] == ["dir/b.txt", "dir/c.txt"]
    assert [p["Prefix"] for p in under["CommonPrefixes"]] == ["dir/sub/"]
    pages = list(s3.get_paginator("list_object_versions").paginate(Bucket=bucket, PaginationConfig={"PageSize": 2}))
    assert len(pages) == 3 and [v["Key"] for p in pages for v in p["Versions"]] == sorted(keys)
    pages = list(s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Delimiter="/",
                                                                   PaginationConfig={"PageSize": 1}))
    seen = [v["Key"] for p in pages for v in p.get("Versions", [])] + \
        [c["Prefix"] for p in pages for c in p.get("CommonPrefixes", [])]
    assert sorted(seen) == ["a.txt", "dir/", "e space+plus.txt", "z.txt"]
    with pytest.raises(ClientError) as e:
        s3_of(bob).list_object_versions(Bucket=bucket)
    assert code_of(e) == ("AccessDenied", 403)
    # how Terraform's force_destroy and clean-up tools empty a bucket: delete every listed version
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        objects = [{"Key": v["Key"], "VersionId": v["VersionId"]} for v in page.get("Versions", [])]
        if objects:
            assert not s3.delete_objects(Bucket=bucket, Delete={"Objects": objects}).get("Errors")
    assert "Versions" not in s3.list_object_versions(Bucket=bucket)
    assert alice.usage(bucket) == {"objects": 0, "bytes": 0}
    s3.delete_bucket(Bucket=bucket)


# -- UploadPartCopy ---------------------------------------------------------------------------------
def test_upload_part_copy(s3_of, alice, bob, bucket, tenant):
    s3 = s3_of(alice)
    source = bytes(range(256)) * (24 * 1024)             # 6 MiB
    s3.put_object(Bucket=bucket, Key="src.bin", Body=source)
    uid = s3.create_multipart_upload(Bucket=bucket, Key="assembled.bin")["UploadId"]
    p1 = s3.upload_part_copy(Bucket=bucket, Key="assembled.bin", UploadId=uid, PartNumber=1,
                             CopySource={"Bucket": bucket, "Key": "src.bin"}, CopySourceRange=f"bytes=0-{5 * MiB - 1}")
    assert p1["CopyPartResult"]["ETag"].strip('"') == hashlib.md5(source[:5 * MiB]).hexdigest()
    p2 = s3.upload_part_copy(Bucket=bucket, Key="assembled.bin", UploadId=uid, PartNumber=2,
                             CopySource={"Bucket": bucket, "Key": "src.bin"})
    p3 = s3.upload_part(Bucket=bucket, Key="assembled.bin", UploadId=uid, PartNumber=3, Body=b"tail")
    parts = s3.list_parts(Bucket=bucket, Key="assembled.bin", UploadId=uid)["Parts"]
    assert [(p["PartNumber"], p["Size"]) for p in parts] == [(1, 5 * MiB), (2, len(source)), (3, 4)]
    # refused: a range past the end, a malformed range, a missing source, a source bob may not read
    with pytest.raises(ClientError) as e:
        s3.upload_part_copy(Bucket=bucket, Key="assembled.bin", UploadId=uid, PartNumber=4,
                            CopySource={"Bucket": bucket, "Key": "src.bin"}, CopySourceRange="bytes=10-5")
    assert code_of(e) == ("InvalidArgument", 400)
    with pytest.raises(ClientError) as e:
        s3.upload_part_copy(Bucket=bucket, Key="assembled.bin", UploadId=uid, PartNumber=4,
                            CopySource={"Bucket": bucket, "Key": "src.bin"},
                            CopySourceRange=f"bytes={len(source) + 10}-{len(source) + 20}")
    assert code_of(e) == ("InvalidRange", 416)
    with pytest.raises(ClientError) as e:
        s3.upload_part_copy(Bucket=bucket, Key="assembled.bin", UploadId=uid, PartNumber=4,
                            CopySource={"Bucket": bucket, "Key": "missing.bin"})
    assert code_of(e) == ("NoSuchKey", 404)
    carol = tenant("carol")
    s3_of(carol).create_bucket(Bucket=f"{bucket}-c")
    try:
        s3_of(carol).put_object(Bucket=f"{bucket}-c", Key="secret", Body=b"carol's")
        with pytest.raises(ClientError) as e:
            s3.upload_part_copy(Bucket=bucket, Key="assembled.bin", UploadId=uid, PartNumber=4,
                                CopySource={"Bucket": f"{bucket}-c", "Key": "secret"})
        assert code_of(e) == ("AccessDenied", 403)
        with pytest.raises(ClientError) as e:      # and nobody copies into alice's upload
            s3_of(bob).upload_part_copy(Bucket=bucket, Key="assembled.bin", UploadId=uid, PartNumber=4,
                                        CopySource={"Bucket": bucket, "Key": "src.bin"})
        assert code_of(e) == ("AccessDenied", 403)
    finally:
        carol.force_delete(f"{bucket}-c")
    assert len(s3.list_parts(Bucket=bucket, Key="assembled.bin", UploadId=uid)["Parts"]) == 3
    s3.complete_multipart_upload(Bucket=bucket, Key="assembled.bin", UploadId=uid, MultipartUpload={"Parts": [
        {"PartNumber": 1, "ETag": p1["CopyPartResult"]["ETag"]}, {"PartNumber": 2, "ETag": p2["CopyPartResult"]["ETag"]},
        {"PartNumber": 3, "ETag": p3["ETag"]}]})
    assert s3.get_object(Bucket=bucket, Key="assembled.bin")["Body"].read() == source[:5 * MiB] + source + b"tail"
    assert alice.usage(bucket)["bytes"] == len(source) + 5 * MiB + len(source) + 4


# -- paginators ------------------------------------------------------------------------------------------
def test_every_listing_pages_with_boto3s_paginators(s3_of, alice, bucket):
    s3 = s3_of(alice)
    keys = [f"p/{i:02d}.txt" for i in range(7)] + ["q/x.txt"]
    for k in keys:
        s3.put_object(Bucket=bucket, Key=k, Body=b"x")

    def collected(op, field, key, **kw):
        pages = list(s3.get_paginator(op).paginate(Bucket=bucket, PaginationConfig={"PageSize": 3}, **kw))
        return len(pages), [item[key] for p in pages for item in p.get(field, [])]

    assert collected("list_objects", "Contents", "Key") == (3, keys)
    assert collected("list_objects_v2", "Contents", "Key") == (3, keys)
    assert collected("list_object_versions", "Versions", "Key") == (3, keys)
    uploads = {}
    for k in ("u/a", "u/b", "u/b", "u/c", "w/d"):
        uploads.setdefault(k, []).append(s3.create_multipart_upload(Bucket=bucket, Key=k)["UploadId"])
    pages, listed = collected("list_multipart_uploads", "Uploads", "UploadId")
    assert pages == 2 and sorted(listed) == sorted(u for ids in uploads.values() for u in ids)
    pages = list(s3.get_paginator("list_multipart_uploads").paginate(Bucket=bucket, Delimiter="/",
                                                                     PaginationConfig={"PageSize": 1}))
    assert [c["Prefix"] for p in pages for c in p.get("CommonPrefixes", [])] == ["u/", "w/"]
    uid = uploads["u/a"][0]
    for n in range(1, 8):
        s3.upload_part(Bucket=bucket, Key="u/a", UploadId=uid, PartNumber=n, Body=b"part")
    pages = list(s3.get_paginator("list_parts").paginate(Bucket=bucket, Key="u/a", UploadId=uid,
                                                         PaginationConfig={"PageSize": 3}))
    assert len(pages) == 3 and [p["PartNumber"] for pg in pages for p in pg["Parts"]] == list(range(1, 8))
    assert pages[0]["Initiator"]["ID"] == alice.id and pages[0]["StorageClass"] == "STANDARD"


# -- addressing -----------------------------------------------------------------------------------------
@pytest.fixture
def localhost_names(monkeypatch):
    """Resolve NAME.localhost to 127.0.0.1 in this process, as RFC 6761 resolvers (systemd-resolved,
    nss-myhostname, curl's own) do; this machine's glibc (hosts: files dns) does not."""
    real = socket.getaddrinfo

    def getaddrinfo(host, *args, **kw):
        if isinstance(host, str) and host.endswith(".localhost"):
            host = "127.0.0.1"
        return real(host, *args, **kw)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def test_virtual_hosted_style_next_to_path_style(server, alice, bucket, localhost_names):
    vhost_endpoint = f"http://localhost:{server.port}"
    s3 = boto3.client("s3", endpoint_url=vhost_endpoint, aws_access_key_id=alice.key_id,
                      aws_secret_access_key=alice.secret, region_name="us-east-1",
                      config=BotoConfig(s3={"addressing_style": "virtual"}, retries={"max_attempts": 1}))
    sent = []
    s3.meta.events.register("before-send.s3", lambda request, **kw: sent.append(request.url))
    s3.put_object(Bucket=bucket, Key="api/v1/health", Body=b"an object, not the REST API")
    s3.put_object(Bucket=bucket, Key="dir/a b+c.txt", Body=b"vhost")
    assert s3.get_object(Bucket=bucket, Key="dir/a b+c.txt")["Body"].read() == b"vhost"
    assert s3.get_object(Bucket=bucket, Key="api/v1/health")["Body"].read() == b"an object, not the REST API"
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["api/v1/health", "dir/a b+c.txt"]
    assert all(u.startswith(f"http://{bucket}.localhost:{server.port}/") for u in sent), sent
    assert s3.get_bucket_location(Bucket=bucket)["LocationConstraint"] in (None, "")  # botocore: path style
    # the same objects through path style
    path = boto3.client("s3", endpoint_url=server.url, aws_access_key_id=alice.key_id,
                        aws_secret_access_key=alice.secret, region_name="us-east-1")
    assert path.get_object(Bucket=bucket, Key="dir/a b+c.txt")["Body"].read() == b"vhost"
    # curl resolves *.localhost by itself and signs with SigV4: a client nobody configured for us
    # (curl 7.88 does not send S3's x-amz-content-sha256 by itself: the empty body's hash, given)
    curl = [shutil.which("curl"), "-sS", "--fail-with-body", "--aws-sigv4", "aws:amz:us-east-1:s3",
            "--user", f"{alice.key_id}:{alice.secret}", "-H", f"x-amz-content-sha256: {hashlib.sha256().hexdigest()}"]
    out = subprocess.run([*curl, f"http://{bucket}.localhost:{server.port}/dir/a%20b%2Bc.txt"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout == "vhost", out.stdout + out.stderr
    out = subprocess.run([*curl, f"http://{bucket}.localhost:{server.port}/?location="], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0 and "<LocationConstraint" in out.stdout, out.stdout + out.stderr
    # unsigned: the REST API is not reachable through a bucket's host, and a private object stays private
    r = requests.get(f"http://{bucket}.localhost:{server.port}/api/v1/health", timeout=30)
    assert r.status_code == 403 and "<Code>AccessDenied</Code>" in r.text


def test_env_prints_what_makes_the_tools_pick_a_working_style(server):
    out = server.cli("env").stdout
    assert f"export AWS_ENDPOINT_URL=http://127.0.0.1:{server.port}" in out
    assert "path style" in out and f"BUCKET.localhost:{server.port}" in out


def test_every_s3_answer_says_nosniff(s3_of, alice, bucket, s3_endpoint):
    s3 = s3_of(alice)
    s3.put_object(Bucket=bucket, Key="x.html", Body=b"<script>alert(1)</script>", ContentType="text/html")
    answers = [s3.get_object(Bucket=bucket, Key="x.html"), s3.list_objects_v2(Bucket=bucket),
               s3.head_bucket(Bucket=bucket)]
    for a in answers:
        assert a["ResponseMetadata"]["HTTPHeaders"]["x-content-type-options"] == "nosniff"
    r = requests.get(f"{s3_endpoint}/{bucket}/x.html", timeout=30)  # an error document too
    assert r.status_code == 403 and r.headers["X-Content-Type-Options"] == "nosniff"
    assert "Content-Security-Policy" not in r.headers


def test_folder_markers_coexist_with_the_keys_under_them(s3_of, alice, bucket, engine):
    """Empty 'dir/' objects, as pyarrow and consoles make them, next to 'dir/file'."""
    s3 = s3_of(alice)
    s3.put_object(Bucket=bucket, Key="data/", Body=b"")
    s3.put_object(Bucket=bucket, Key="data/file.csv", Body=b"a,b\n")
    s3.put_object(Bucket=bucket, Key="data/sub/", Body=b"")
    head = s3.head_object(Bucket=bucket, Key="data/")
    assert head["ContentLength"] == 0 and head["ETag"] == '"' + hashlib.md5(b"").hexdigest() + '"'
    assert s3.get_object(Bucket=bucket, Key="data/")["Body"].read() == b""
    assert s3.get_object(Bucket=bucket, Key="data/file.csv")["Body"].read() == b"a,b\n"
    versions = [v["Key"] for v in s3.list_object_versions(Bucket=bucket)["Versions"]]
    assert versions == ["data/", "data/file.csv", "data/sub/"]
    assert [p["Prefix"] for p in s3.list_object_versions(Bucket=bucket, Prefix="data/", Delimiter="/")
            .get("CommonPrefixes", [])] == ["data/sub/"]
    s3.put_object(Bucket=bucket, Key="notes/", Body=b"not empty")   # a '/' key is any object, on every engine
    assert s3.get_object(Bucket=bucket, Key="notes/")["Body"].read() == b"not empty"
    s3.delete_object(Bucket=bucket, Key="notes/")
    s3.delete_object(Bucket=bucket, Key="data/")
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="data/")
    assert code_of(e)[1] == 404
    assert s3.get_object(Bucket=bucket, Key="data/file.csv")["Body"].read() == b"a,b\n"
    s3.delete_object(Bucket=bucket, Key="data/file.csv")
    s3.delete_object(Bucket=bucket, Key="data/sub/")
    s3.delete_bucket(Bucket=bucket)
