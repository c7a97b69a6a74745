"""Behind the abstraction: what the host really runs for an instance, checked against /proc."""
from __future__ import annotations

import os
import platform
import statistics
import time

import pytest

pytestmark = pytest.mark.integration


def test_container_internals_match_the_host(server, user, cleanup, docker_client):
    inst = user.ok("POST", "/instances", 201, json={"image": "tiny", "type": "t2.nano"})
    cleanup.append((user, inst["id"]))
    data = user.ok("GET", f"/instances/{inst['id']}/internals")
    pid = data["pid1"]["host_pid"]
    assert pid == docker_client.containers.get(f"pc-{inst['id']}").attrs["State"]["Pid"]
    # the PID is really in the container's cgroup
    container_id = data["engine"]["container_id"]
    with open(f"/proc/{pid}/cgroup") as f:
        assert container_id in f.read()
    assert data["cgroup"]["paths"]["memory"].endswith(container_id)
    ns = data["namespaces"]
    for name in ("pid", "mnt", "net", "uts", "ipc"):
        assert ns[name]["shared_with_host"] is False, name
        assert ns[name]["instance"] == os.readlink(f"/proc/{pid}/ns/{name}")
    assert ns["pid"]["host"] == os.readlink(f"/proc/{os.getpid()}/ns/pid")
    limits = data["cgroup"]["limits"]
    mem = limits.get("memory_limit_bytes") or int(limits["memory_max"])
    assert mem == 512 * 1024 * 1024 == data["type"]["memory_mib"] * 1024 * 1024
    assert data["kernel"]["instance"] == platform.release() and data["kernel"]["shared"] is True
    names = [step["name"] for step in data["runtime_chain"]]
    assert names[0] == "dockerd" and "containerd" in names and "containerd-shim" in names
    assert data["rootfs"]["storage_driver"] and data["rootfs"]["image_layers"]


def test_internals_of_another_account_are_hidden(server, cleanup):
    a = server.new_user(f"ina-{server.port}")
    b = server.new_user(f"inb-{server.port}")
    inst = a.ok("POST", "/instances", 201, json={"image": "tiny"})
    cleanup.append((a, inst["id"]))
    status, body = b("GET", f"/instances/{inst['id']}/internals")
    assert status == 404 and body["error"]["code"] == "InvalidInstanceID.NotFound"


def test_info_reports_the_host(server, user):
    info = user.ok("GET", "/info")
    host = info["host"]
    assert host["kernel"] == platform.release()
    with open("/proc/cpuinfo") as f:
        assert host["runs_in_vm"] == (" hypervisor" in f.read())
    assert info["engines"]["container"]["available"] is True


def test_bucket_internals_show_where_the_bytes_live(server, user):
    import boto3

    s3 = boto3.client("s3", endpoint_url=server.url, region_name="us-east-1",
                      aws_access_key_id=user.key_id, aws_secret_access_key=user.secret)
    bucket = f"inside-{server.port}"
    s3.create_bucket(Bucket=bucket)
    try:
        s3.put_object(Bucket=bucket, Key="a/b/c.txt", Body=b"x" * 1000)
        s3.put_object(Bucket=bucket, Key="top.txt", Body=b"y" * 24)
        data = user.ok("GET", f"/buckets/{bucket}/internals")
        assert data["usage"] == {"objects": 2, "bytes": 1024}
        assert data["engine"]["engine"] == user.ok("GET", "/info")["storage"]["engine"]
        disk = data["bytes_on_host"]
        if data["engine"]["engine"] == "rclone":
            assert disk["files"] == 2 and disk["bytes"] == 1024
            with open(f"{disk['path']}/a/b/~c.txt", "rb") as f:   # the key's encoded name (keynames.py)
                assert f.read() == b"x" * 1000
            seen = user.ok("GET", f"/buckets/{bucket}/internals", params={"key": "a/b/c.txt"})["object"]
            assert seen["exists"] and seen["host_path"] == f"{disk['path']}/a/b/~c.txt"
        assert "gateway" in data["request_path"][1]
        other = server.new_user(f"peek-{server.port}")
        status, _ = other("GET", f"/buckets/{bucket}/internals")
        assert status in (403, 404)
    finally:
        for key in ("a/b/c.txt", "top.txt"):
            s3.delete_object(Bucket=bucket, Key=key)
        s3.delete_bucket(Bucket=bucket)
