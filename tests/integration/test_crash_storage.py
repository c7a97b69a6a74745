"""Kill -9 during a bucket create/delete or a multipart completion (issue 11, crash safety).

A server started with POCKETCLOUD_FAULT=storage:OP:after-STEP kills itself at that step;
started again without the hook, it settles the dead operation from what the S3 engine holds
before it answers. Then the bucket records agree with the engine (a bucket exists in both or
in neither) and the account's usage, which quotas count, equals the bytes the engine stores:
an object the engine completed is counted once, its parts no longer. The step x outcome
matrix is written to artifacts/crash-storage-matrix.md.
"""
from __future__ import annotations

import os
import signal

import boto3
import botocore.config
import botocore.exceptions
import pytest

from tests.conftest import ARTIFACTS, start_server, stop_and_check_leaks

pytestmark = pytest.mark.integration

MATRIX: list[tuple[str, str]] = []
PART = 5 * 1024 * 1024


@pytest.fixture(scope="module")
def srv(tmp_path_factory, docker_client):
    srv = start_server(tmp_path_factory.mktemp("crash-s3") / "home")
    yield srv
    srv.env.pop("POCKETCLOUD_FAULT", None)
    if srv.proc.poll() is not None:
        srv.start()
    lines = ["| killed after | outcome |", "| --- | --- |", *[f"| {p} | {o} |" for p, o in MATRIX]]
    text = "\n".join(["# Kill -9 during storage operations: step x outcome", "",
                      "tests/integration/test_crash_storage.py; settled before the restarted server answers.",
                      "", *lines, ""])
    print("\n" + text)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "crash-storage-matrix.md").write_text(text)
    stop_and_check_leaks(srv, docker_client)


def s3_of(srv, api):
    return boto3.client("s3", endpoint_url=srv.url, region_name="us-east-1", aws_access_key_id=api.key_id,
                        aws_secret_access_key=api.secret,
                        config=botocore.config.Config(retries={"max_attempts": 1}, read_timeout=60))


def engine_s3(srv):
    import json

    root = json.loads((srv.home / "storage" / "root-credentials.json").read_text())
    endpoint = srv.admin.ok("GET", "/info")["storage"]["endpoint"]
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=root["access_key"],
                        aws_secret_access_key=root["secret_key"])


def die_during(srv, point: str, action, prepare=None, errors: tuple = ()) -> None:
    """Run PREPARE, then ACTION on a server armed to die at POINT; start it again without the hook.
    ERRORS: what else ACTION may raise when the server dies under it (a REST client's)."""
    srv.stop()
    srv.env["POCKETCLOUD_FAULT"] = point
    srv.start()
    if prepare is not None:
        prepare()
    with pytest.raises((botocore.exceptions.EndpointConnectionError, botocore.exceptions.ConnectionClosedError,
                        botocore.exceptions.ReadTimeoutError) + errors):
        action()
    srv.proc.wait(60)
    try:  # the dead server's session (its S3 engine): started by this test
        os.killpg(srv.proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    srv.env.pop("POCKETCLOUD_FAULT")
    srv.start()


def engine_bytes(raw, buckets: list[str]) -> int:
    total = 0
    for b in buckets:
        for o in raw.list_objects_v2(Bucket=b).get("Contents", []):
            total += o["Size"]
    return total


def engine_uploads(raw, bucket: str) -> list[str]:
    try:
        return [u["UploadId"] for u in raw.list_multipart_uploads(Bucket=bucket).get("Uploads", [])]
    except botocore.exceptions.ClientError as e:
        if e.response["Error"]["Code"] == "NoSuchUpload":  # the stand-in's answer when it has none
            return []
        raise


def engine_buckets(raw) -> set[str]:
    return {b["Name"] for b in raw.list_buckets()["Buckets"]}


@pytest.mark.parametrize("step", ["record", "engine"])
def test_kill_9_during_bucket_create(srv, step):
    user = srv.new_user(f"cb-{step}-{srv.port}")
    name = f"crash-create-{step}-{srv.port}"
    die_during(srv, f"storage:bucket-create:after-{step}", lambda: s3_of(srv, user).create_bucket(Bucket=name))
    s3, raw = s3_of(srv, user), engine_s3(srv)
    mine = [b["name"] for b in user.ok("GET", "/buckets")["buckets"]]
    assert mine == [name] and name in engine_buckets(raw), "the create is rolled forward: in both"
    s3.put_object(Bucket=name, Key="k", Body=b"12345")
    assert user.ok("GET", "/buckets")["usage"]["bytes"] == 5 == engine_bytes(raw, [name])
    s3.delete_object(Bucket=name, Key="k")
    s3.delete_bucket(Bucket=name)
    MATRIX.append((f"bucket create, {step}", "rolled forward: the bucket exists in the records and the engine"))


def test_kill_9_during_bucket_delete(srv):
    user = srv.new_user(f"db-{srv.port}")
    name = f"crash-delete-{srv.port}"
    s3_of(srv, user).create_bucket(Bucket=name)
    die_during(srv, "storage:bucket-delete:after-engine", lambda: s3_of(srv, user).delete_bucket(Bucket=name))
    assert user.ok("GET", "/buckets")["buckets"] == [] and name not in engine_buckets(engine_s3(srv))
    s3_of(srv, user).create_bucket(Bucket=name)  # the name is free again
    s3_of(srv, user).delete_bucket(Bucket=name)
    MATRIX.append(("bucket delete, engine", "rolled forward: gone from the records and the engine; the name is free"))


def test_kill_9_during_multipart_complete(srv):
    user = srv.new_user(f"mp-{srv.port}")
    name = f"crash-mp-{srv.port}"
    s3_of(srv, user).create_bucket(Bucket=name)
    upload: dict = {}

    def prepare() -> None:
        # the stand-in keeps uploads in memory: they are made on the server armed to die
        s3 = s3_of(srv, user)
        up = s3.create_multipart_upload(Bucket=name, Key="big")["UploadId"]
        upload["parts"] = [{"PartNumber": n, "ETag": s3.upload_part(
            Bucket=name, Key="big", UploadId=up, PartNumber=n, Body=os.urandom(PART if n == 1 else 1000))["ETag"]}
            for n in (1, 2)]
        upload["id"] = up
        usage = user.ok("GET", "/buckets")["usage"]
        assert (usage["bytes"], usage["multipart_pending_bytes"]) == (0, PART + 1000)

    die_during(srv, "storage:multipart-complete:after-engine", lambda: s3_of(srv, user).complete_multipart_upload(
        Bucket=name, Key="big", UploadId=upload["id"], MultipartUpload={"Parts": upload["parts"]}), prepare)
    s3, raw = s3_of(srv, user), engine_s3(srv)
    usage = user.ok("GET", "/buckets")["usage"]
    assert (usage["bytes"], usage["multipart_pending_bytes"]) == (PART + 1000, 0), usage
    assert engine_bytes(raw, [name]) == PART + 1000
    assert s3.list_multipart_uploads(Bucket=name).get("Uploads", []) == []
    assert s3.head_object(Bucket=name, Key="big")["ContentLength"] == PART + 1000
    s3.delete_object(Bucket=name, Key="big")
    s3.delete_bucket(Bucket=name)
    MATRIX.append(("multipart complete, engine",
                   "rolled forward: the object counts once in usage, its parts no longer; the upload is gone"))


def test_uploads_the_engine_lost_in_a_restart_stop_counting(srv):
    """The stand-in keeps unfinished multipart uploads in memory: after it restarts they are
    gone, and their parts must no longer count against the owner's quota."""
    user = srv.new_user(f"lost-{srv.port}")
    name = f"crash-lost-{srv.port}"
    s3 = s3_of(srv, user)
    s3.create_bucket(Bucket=name)
    up = s3.create_multipart_upload(Bucket=name, Key="half")["UploadId"]
    s3.upload_part(Bucket=name, Key="half", UploadId=up, PartNumber=1, Body=b"x" * 1000)
    assert user.ok("GET", "/buckets")["usage"]["multipart_pending_bytes"] == 1000
    srv.restart()
    s3 = s3_of(srv, user)
    if up in engine_uploads(engine_s3(srv), name):
        outcome = "the engine kept it: still counted"  # an engine that keeps uploads (MinIO, Ceph)
        assert user.ok("GET", "/buckets")["usage"]["multipart_pending_bytes"] == 1000
        s3.abort_multipart_upload(Bucket=name, Key="half", UploadId=up)
    else:
        outcome = "forgotten with its parts: usage counts 0 pending bytes"
        assert user.ok("GET", "/buckets")["usage"]["multipart_pending_bytes"] == 0
        assert s3.list_multipart_uploads(Bucket=name).get("Uploads", []) == []
    s3.delete_bucket(Bucket=name)
    MATRIX.append(("server restart with an unfinished upload (no kill)", outcome))
