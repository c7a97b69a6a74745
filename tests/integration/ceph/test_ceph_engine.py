"""Ceph RGW as the S3 engine, through a real `pocketcloud serve`: boto3 end to end, health and
placement, a dead OSD (degraded yet serving), supervision, restarts that reuse the cluster,
the durability lab's logic, and no secret on any command line."""
from __future__ import annotations

import hashlib
import io
import json
import os
import re
import signal
import time
from pathlib import Path

import boto3
import pytest
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError

from emulator.errors import NotFound

from tests.integration.procs import assert_no_secret_on_command_lines

from .conftest import ceph_processes, console_session, storage_info, wait_serving, wait_storage

pytestmark = pytest.mark.integration


def s3_for(srv, who):
    return boto3.client("s3", endpoint_url=srv.url, aws_access_key_id=who.key_id, aws_secret_access_key=who.secret,
                        region_name="us-east-1", config=BotoConfig(retries={"max_attempts": 2}))


@pytest.fixture
def user_s3(ceph_server):
    who = ceph_server.new_user(f"ceph-{os.urandom(3).hex()}")
    return s3_for(ceph_server, who)


def test_boto3_put_get_list_delete_through_the_gateway(ceph_server, user_s3):
    s3 = user_s3
    s3.create_bucket(Bucket="ceph-objects")
    s3.put_object(Bucket="ceph-objects", Key="dir/hello.txt", Body=b"hello from ceph")
    big = os.urandom(9 * 1024 * 1024)  # multipart with boto3's 8 MiB threshold; RGW stripes it in RADOS
    s3.upload_fileobj(io.BytesIO(big), "ceph-objects", "big.bin")
    assert s3.get_object(Bucket="ceph-objects", Key="dir/hello.txt")["Body"].read() == b"hello from ceph"
    got = s3.get_object(Bucket="ceph-objects", Key="big.bin")["Body"].read()
    assert hashlib.sha256(got).digest() == hashlib.sha256(big).digest()
    listed = s3.list_objects_v2(Bucket="ceph-objects")
    assert {(o["Key"], o["Size"]) for o in listed["Contents"]} == {("dir/hello.txt", 15), ("big.bin", len(big))}
    ranged = s3.get_object(Bucket="ceph-objects", Key="big.bin", Range="bytes=100-199")["Body"].read()
    assert ranged == big[100:200]
    s3.delete_object(Bucket="ceph-objects", Key="big.bin")
    s3.delete_object(Bucket="ceph-objects", Key="dir/hello.txt")
    assert s3.list_objects_v2(Bucket="ceph-objects")["KeyCount"] == 0
    s3.delete_bucket(Bucket="ceph-objects")
    with pytest.raises(ClientError) as e:
        s3.head_bucket(Bucket="ceph-objects")
    assert e.value.response["Error"]["Code"] in ("404", "NoSuchBucket")


def test_info_shows_engine_version_health_osds_and_pgs(ceph_server, ceph_net):
    info = storage_info(ceph_server)
    assert info["engine"] == "ceph" and info["status"] == "running"
    assert re.match(r"1[6-9]\.\d+\.\d+", info["version"]), info["version"]
    assert info["health"] in ("HEALTH_OK", "HEALTH_WARN")
    assert info["health"] == "HEALTH_OK" or info["health_reason"]  # a warning always says why
    assert info["osds"]["total"] == 3 and info["osds"]["in"] == 3
    assert sum(info["pgs"]["states"].values()) == info["pgs"]["total"] > 0
    assert set(info["daemons"]) == {"mon.a", "mgr.x", "osd.0", "osd.1", "osd.2", "rgw"}
    assert info["data_dir"].startswith(str(ceph_server.home))
    assert info["endpoint"].startswith("http://127.0.0.1:")  # RGW: only the gateway here talks to it
    assert info["mon"].startswith(f"{ceph_net.host_ip}:")  # made for more than one machine
    assert "secret" not in json.dumps(info).lower()
    r = ceph_server.cli("storage", "status")
    assert f"cluster {info['fsid']}" in r.stdout and "OSDs     3 up, 3 in, of 3" in r.stdout
    assert re.search(r"^osd\.1\s+running", r.stdout, re.M) and ceph_net.host_ip in r.stdout


def test_placement_of_an_object_from_the_engine_layer(ceph_server, user_s3, cluster):
    user_s3.create_bucket(Bucket="ceph-placement")
    try:
        user_s3.put_object(Bucket="ceph-placement", Key="where/am-i.txt", Body=b"x" * 1234)
        where = cluster.placement("ceph-placement", "where/am-i.txt")
        assert where["exists"] and where["size"] == 1234
        assert where["pool"] == "default.rgw.buckets.data"
        assert where["object"].endswith("_where/am-i.txt") and where["object"].startswith(where["bucket_marker"])
        assert len(where["acting"]) == 3 and len(set(where["acting"])) == 3 and where["primary"] == where["acting"][0]
        assert re.match(r"\d+\.[0-9a-f]+$", where["pg"])
        for replica in where["replicas"]:
            path = Path(replica["host_path"])
            assert path.is_file() and str(path).startswith(str(ceph_server.home))
        missing = cluster.placement("ceph-placement", "not-there")
        assert missing["exists"] is False and missing["pg"]  # placement is computed, existence is checked
        with pytest.raises(NotFound):
            cluster.placement("no-such-bucket-here", "k")
    finally:
        user_s3.delete_object(Bucket="ceph-placement", Key="where/am-i.txt")
        user_s3.delete_bucket(Bucket="ceph-placement")


def _secrets(home: Path) -> dict[str, str]:
    keys = home / "storage" / "ceph" / "keys"
    found = {"rgw user secret": json.loads((keys / "rgw-user.json").read_text())["secret_key"]}
    for ring in keys.glob("*.keyring"):
        m = re.search(r"key = (\S+)", ring.read_text())
        if m:
            found[ring.name] = m.group(1)
    for ring in (home / "storage" / "ceph").glob("*/*/keyring"):  # the monitor's own copy
        for m in re.finditer(r"key = (\S+)", ring.read_text()):
            found[f"{ring}"] = m.group(1)
    return found


def test_no_ceph_secret_on_any_command_line_and_keyrings_private(ceph_server):
    home = Path(ceph_server.home)
    secrets = _secrets(home)
    assert {"rgw user secret", "ceph.client.admin.keyring", "ceph.client.rgw.pc.keyring"} <= set(secrets)
    assert len(ceph_processes(home)) == 6
    assert_no_secret_on_command_lines(secrets)
    ceph_dir = home / "storage" / "ceph"
    assert oct(ceph_dir.stat().st_mode & 0o777) == "0o700"
    for f in (ceph_dir / "keys").iterdir():
        assert oct(f.stat().st_mode & 0o777) == "0o600", f


def test_one_osd_down_is_degraded_but_serving_then_recovers(ceph_server, cluster):
    who = ceph_server.new_user(f"ceph-{os.urandom(3).hex()}")
    s3 = s3_for(ceph_server, who)
    s3.create_bucket(Bucket="ceph-degraded")
    s3.put_object(Bucket="ceph-degraded", Key="before", Body=b"written with three OSDs")
    victim = f"osd.{cluster.placement('ceph-degraded', 'before')['primary']}"
    cluster.hold(victim)
    try:
        pid = cluster.kill(victim)
        assert pid
        info = wait_storage(ceph_server, lambda i: i["osds"]["up"] == 2, f"{victim} reported down", 60)
        assert info["health"] == "HEALTH_WARN" and "osds down" in info["health_reason"]
        assert info["osds"]["down"] == [victim] and info["daemons"][victim]["state"] == "held"
        # reads and writes go on with two replicas of three (min_size 2)
        assert s3.get_object(Bucket="ceph-degraded", Key="before")["Body"].read() == b"written with three OSDs"
        s3.put_object(Bucket="ceph-degraded", Key="during", Body=b"written with two")
        assert s3.get_object(Bucket="ceph-degraded", Key="during")["Body"].read() == b"written with two"
        # the OSD count drops first; the PGs say undersized once they have peered without it
        wait_storage(ceph_server, lambda i: i["serving"] == "degraded" and any(
            "undersized" in s or "degraded" in s for s in i["pgs"]["states"]), "degraded-but-serving PGs", 60)
        # the bucket's internals say so too, and where the object is: two of its three OSDs serve it
        seen = who.ok("GET", "/buckets/ceph-degraded/internals", params={"key": "before"})
        assert seen["ceph"]["serving"] == "degraded" and victim in seen["ceph"]["osds"]["down"]
        assert seen["object"]["exists"] and f"osd.{seen['object']['primary']}" != victim  # a new primary took over
        assert len(seen["object"]["acting"]) == 2 and seen["ceph"]["pool"] == seen["object"]["pool"]
        status, body = ceph_server.new_user(f"other-{os.urandom(2).hex()}")(
            "GET", "/buckets/ceph-degraded/internals", params={"key": "before"})
        assert status in (403, 404) and "object" not in body  # another account learns nothing of it
        page = console_session(ceph_server).get(ceph_server.console_url + "/ui/system").text
        assert "degraded" in page and "HEALTH_WARN" in page and f"down: {victim}" in page and ">held<" in page
    finally:
        cluster.release(victim)
    info = wait_storage(ceph_server, lambda i: i["osds"]["up"] == 3 and i["serving"] == "ok", "recovery", 180)
    assert info["daemons"][victim]["state"] == "running" and info["daemons"][victim]["pid"] != pid
    assert set(info["pgs"]["states"]) == {"active+clean"}
    for key in ("before", "during"):
        s3.delete_object(Bucket="ceph-degraded", Key=key)
    s3.delete_bucket(Bucket="ceph-degraded")


def test_a_dead_gateway_is_restarted_by_the_supervisor(ceph_server, user_s3, cluster):
    before = storage_info(ceph_server)["daemons"]["rgw"]
    pid = cluster.kill("rgw")
    assert pid == before["pid"]
    info = wait_storage(ceph_server, lambda i: i["daemons"]["rgw"]["restarts"] > before["restarts"]
                        and i["daemons"]["rgw"]["state"] == "running", "RGW restarted", 60)
    assert info["daemons"]["rgw"]["pid"] != pid
    deadline = time.monotonic() + 60
    while True:  # RGW takes a few seconds to open its port again; boto3 sees 503 meanwhile
        try:
            user_s3.list_buckets()
            break
        except ClientError as e:
            assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 503, e.response
            assert time.monotonic() < deadline, "S3 did not come back after RGW's restart"
            time.sleep(0.5)
    assert re.search(r"\[ceph\] rgw is down \(killed by SIGKILL\): restarting it", ceph_server.log_path.read_text())


def test_lab_durability_on_the_real_cluster_timeline_chart_and_report(ceph_server, tmp_path):
    """`pocketcloud lab durability` as a student runs it: over the API, the server's
    supervisor restarting the OSD; a short run (20 small objects) in bounded time."""
    out = tmp_path / "lab"
    r = ceph_server.cli("-o", "json", "lab", "durability", "--objects", "20", "--size", "16384", "--timeout", "180",
                        "--out", str(out), check=False, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    report = json.loads(r.stdout)
    assert report["intact"] == 20 and report["objects"] == 20
    assert report["osd"] in ("osd.0", "osd.1", "osd.2")
    assert 0 <= report["seconds_to_detect"] <= report["seconds_degraded"]
    assert report["seconds_to_recover"] >= 0
    events = [e["event"] for e in report["events"]]
    assert events[0].startswith("wrote 20 objects") and events[-1].startswith("recovered")
    assert any(e.startswith(f"killed {report['osd']}") for e in events)
    assert any(s["serving"] == "degraded" for s in report["samples"])
    assert report["samples"][-1]["serving"] == "ok"
    assert (out / "durability.png").read_bytes()[:4] == b"\x89PNG"
    md = (out / "report.md").read_text()
    assert "## Timeline" in md and f"The lab killed {report['osd']}" in md and "recovered: all" in md
    assert json.loads((out / "durability.json").read_text())["events"] == report["events"]
    info = storage_info(ceph_server)
    assert not any(d["state"] == "held" for d in info["daemons"].values())  # nothing left held down
    assert not any(b["name"] == report["bucket"] for b in ceph_server.admin.ok("GET", "/buckets")["buckets"])
    for name in ("durability.json", "durability.png", "report.md"):
        (Path(ceph_server.log_path).parent / f"ceph-durability-{name}").write_bytes((out / name).read_bytes())


def test_server_restart_reuses_the_cluster_and_kill_9_leaves_daemons_to_adopt(ceph_server, user_s3):
    home = Path(ceph_server.home)
    user_s3.create_bucket(Bucket="ceph-survives")
    user_s3.put_object(Bucket="ceph-survives", Key="k", Body=b"kept across restarts")
    fsid = storage_info(ceph_server)["fsid"]

    ceph_server.stop()  # a clean stop stops the cluster's daemons, and only those
    assert ceph_processes(home) == {}
    ceph_server.start()
    info = wait_serving(ceph_server)
    assert info["fsid"] == fsid
    log = ceph_server.log_path.read_text()
    assert log.count("[ceph] bootstrapping a new cluster") == 1
    assert re.search(rf"\[ceph\] found cluster {fsid} .*: 0 daemons running \(adopted\)", log)
    assert user_s3.get_object(Bucket="ceph-survives", Key="k")["Body"].read() == b"kept across restarts"

    pids = {tuple(argv[1:]): pid for pid, argv in ceph_processes(home).items()}
    assert len(pids) == 6
    os.killpg(ceph_server.proc.pid, signal.SIGKILL)  # the server dies, the daemons (own session) live on
    ceph_server.proc.wait()
    assert {tuple(a[1:]): p for p, a in ceph_processes(home).items()} == pids
    ceph_server.start()
    info = wait_serving(ceph_server)
    assert info["fsid"] == fsid
    assert re.search(rf"\[ceph\] found cluster {fsid} .*: 6 daemons running \(adopted\), starting none",
                     ceph_server.log_path.read_text())
    assert {tuple(a[1:]): p for p, a in ceph_processes(home).items()} == pids  # adopted, no duplicate
    assert {d["pid"] for d in info["daemons"].values()} == set(pids.values())
    assert user_s3.get_object(Bucket="ceph-survives", Key="k")["Body"].read() == b"kept across restarts"
    user_s3.delete_object(Bucket="ceph-survives", Key="k")
    user_s3.delete_bucket(Bucket="ceph-survives")


def test_kill_9_during_bootstrap_starts_over_cleanly(tmp_path):
    """The worst moment: the server dies after the OSDs were made, before RGW and the S3 user.
    The next start stops what the half bootstrap left running and bootstraps anew."""
    from tests.integration.cloud import Server

    from .conftest import ARTIFACTS

    home = tmp_path / "home"
    srv = Server(home, ARTIFACTS)
    srv.env["POCKETCLOUD_S3_ENGINE"] = "ceph"
    srv.start()
    try:
        deadline = time.monotonic() + 120
        while "OSDs created" not in srv.log_path.read_text():
            assert time.monotonic() < deadline, srv.log_path.read_text()[-2000:]
            time.sleep(0.1)
        os.killpg(srv.proc.pid, signal.SIGKILL)
        srv.proc.wait()
        state = json.loads((home / "storage" / "ceph" / "cluster.json").read_text())
        assert state["bootstrapped"] is False and ceph_processes(home)  # half a cluster is running
        srv.start()
        info = wait_serving(srv)
        assert info["fsid"] != state["fsid"] and info["osds"]["total"] == 3
        assert "[ceph] an unfinished bootstrap" in srv.log_path.read_text()
        assert len(ceph_processes(home)) == 6  # nothing of the first attempt is left running
    finally:
        srv.stop()
        left = ceph_processes(home)
        for pid in left:
            os.kill(pid, signal.SIGKILL)
    assert not left
