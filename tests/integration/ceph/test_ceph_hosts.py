"""A second machine joins the shared cluster: `pocketcloud storage add-host` over real SSH to a
network namespace on a bridge the tests made (hostnet.py), Ceph's own tools there, no key on
any command line; the cluster places replicas on it, the console and `buckets explain` show
which host holds an object; its OSD killed -9 is brought back with `start-host`; and
`remove-host` leaves nothing behind (daemon, files, CRUSH host).

This module runs after test_ceph_engine.py (which counts three OSDs) and gives the shared
cluster back with three."""
from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import time
from pathlib import Path

import pytest

from emulator.storage.ceph.daemons import _cmdline

from tests.integration.cloud import PC

from .conftest import console_session, storage_info, wait_storage

pytestmark = pytest.mark.integration


def cli_json(srv, *args: str) -> dict:
    r = srv.cli("-o", "json", *args, check=False, timeout=400)
    assert r.returncode == 0, f"pocketcloud {' '.join(args)} failed ({r.returncode}): {r.stderr[-3000:]}"
    return json.loads(r.stdout)


def processes_with(text: str) -> dict[int, list[str]]:
    found = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            argv = _cmdline(int(entry.name))
            if argv and any(text in a for a in argv):
                found[int(entry.name)] = argv
    return found


class CommandLines(threading.Thread):
    """Every command line seen on the host while it runs (sampled every 20 ms)."""

    def __init__(self):
        super().__init__(daemon=True)
        self.seen: set[str] = set()
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            for entry in os.scandir("/proc"):
                if entry.name.isdigit():
                    try:
                        self.seen.add(Path(f"/proc/{entry.name}/cmdline").read_bytes().decode(errors="replace"))
                    except OSError:
                        pass
            time.sleep(0.02)


def osd_key(home: Path, osd_id: int) -> str:
    out = subprocess.run(["ceph", "-c", str(home / "storage" / "ceph" / "ceph.conf"), "auth", "get", f"osd.{osd_id}"],
                         capture_output=True, text=True, check=True, timeout=30).stdout
    return re.search(r"key = (\S+)", out).group(1)


def test_a_second_host_joins_over_ssh_holds_replicas_and_leaves_cleanly(ceph_server, ceph_net, tmp_path):
    srv, home = ceph_server, Path(ceph_server.home)
    data_dir = tmp_path / "h2-data"
    name = f"h2-{ceph_net.label}"
    peer = ceph_net.start_peer()
    admin = srv.admin
    try:
        watch = CommandLines()
        watch.start()
        try:
            rec = cli_json(srv, "storage", "add-host", peer["target"], "--address", ceph_net.peer_ip, "--name", name,
                           "--ssh-config", peer["config"], "--data-dir", str(data_dir))
        finally:
            watch.halt.set()
            watch.join()
        (Path(srv.log_path).parent / "ceph-add-host.json").write_text(json.dumps(rec, indent=1))
        assert [o["id"] for o in rec["osds"]] == [3] and rec["name"] == name and rec["address"] == ceph_net.peer_ip
        assert set(rec["timings"]) == {"probe", "keys", "copy", "mkfs", "up"}
        key = osd_key(home, 3)
        assert not any(key in line for line in watch.seen), "osd.3's key was on a command line"
        assert any("ceph-osd" in line and "--mkfs" in line for line in watch.seen)  # it was watched, really
        ring = data_dir / "keys" / "ceph.osd.3.keyring"
        assert key in ring.read_text() and oct(ring.stat().st_mode & 0o777) == "0o600"
        assert "host=" + name in (data_dir / "ceph.conf").read_text()

        # the OSD runs there: in the second host's network, not in ours
        osd = {p: a for p, a in processes_with(str(data_dir / "ceph.conf")).items() if "ceph-osd" in a[0]}
        assert len(osd) == 1, osd
        pid = next(iter(osd))
        assert pid in ceph_net.peer_pids()
        assert os.readlink(f"/proc/{pid}/ns/net") != os.readlink("/proc/self/ns/net")

        hosts = {h["name"]: h for h in cli_json(srv, "storage", "hosts")["hosts"]}
        assert hosts[name]["role"] == "added" and hosts[name]["address"] == ceph_net.peer_ip
        assert hosts[name]["osds"] == [{"id": 3, "name": "osd.3", "status": "up", "in": True}]
        local = [h for h in hosts.values() if h["role"] == "cluster"]
        assert len(local) == 1 and [o["id"] for o in local[0]["osds"]] == [0, 1, 2]
        assert local[0]["address"] == ceph_net.host_ip
        wait_storage(srv, lambda i: i["osds"]["total"] == 4 and i["osds"]["up"] == 4 and i["serving"] == "ok",
                     "four OSDs, every PG clean", 120)

        # CRUSH puts replicas on the new host: find an object one of whose three copies is there
        admin.ok("POST", "/buckets", 201, json={"name": "ceph-hosts"})
        there = None
        for i in range(24):
            k = f"spread/{i}"
            admin.ok("PUT", f"/buckets/ceph-hosts/objects/{k}", 201, data=f"object {i}".encode())
            where = admin.ok("GET", "/buckets/ceph-hosts/internals", params={"key": k})["object"]
            if 3 in where["acting"]:
                there = (k, where)
                break
        assert there, "no object of 24 had a replica on osd.3 (each PG has 3 of the 4 OSDs)"
        k, where = there
        replica = next(r for r in where["replicas"] if r["osd"] == 3)
        assert replica["host"] == name and replica["host_path"] == f"{data_dir}/osd/3/block"
        assert {r["host"] for r in where["replicas"] if r["osd"] != 3} == {local[0]["name"]}
        explained = srv.cli("buckets", "explain", f"s3://ceph-hosts/{k}", check=False)
        assert explained.returncode == 0, explained.stderr
        assert name in explained.stdout and f"{data_dir}/osd/3/block" in explained.stdout
        assert f"placement group {where['pg']}" in explained.stdout
        page = console_session(srv).get(srv.console_url + "/ui/system").text
        assert name in page and ceph_net.peer_ip in page and "added over SSH" in page

        # that machine's OSD dies (a crash, a reboot): the data stays served, start-host brings it back
        os.kill(pid, 9)
        info = wait_storage(srv, lambda i: i["osds"]["up"] == 3, "osd.3 reported down", 90)
        assert "osd.3" in info["osds"]["down"]
        assert admin.s.get(f"{srv.url}/api/v1/buckets/ceph-hosts/objects/{k}").content == f"object {k.split('/')[1]}".encode()
        started = cli_json(srv, "storage", "start-host", name)
        assert started["osds"] == [3]
        assert storage_info(srv)["osds"]["up"] == 4
        # right after its return the PGs it holds are still recovering: removing it now would take them
        # offline, and remove-host says so instead of doing it
        wait_storage(srv, lambda i: i["serving"] == "ok", "recovery after start-host", 120)

        out = cli_json(srv, "storage", "remove-host", name)
        assert out["osds"] == [3] and out["problems"] == []
        assert not processes_with(str(data_dir / "ceph.conf")), "the removed host's OSD still runs"
        assert not data_dir.exists()
        assert name not in {h["name"] for h in cli_json(srv, "storage", "hosts")["hosts"]}
        wait_storage(srv, lambda i: i["osds"]["total"] == 3 and i["osds"]["up"] == 3, "three OSDs again", 60)
        for i in range(int(k.split("/")[1]) + 1):
            admin.ok("DELETE", f"/buckets/ceph-hosts/objects/spread/{i}", 204)
        admin.ok("DELETE", "/buckets/ceph-hosts", 204)
    finally:
        state = json.loads((home / "storage" / "ceph" / "cluster.json").read_text())
        if any(h["name"] == name for h in state["hosts"]):  # a failure half-way: give the cluster back its 3 OSDs
            subprocess.run([PC, "storage", "remove-host", name, "--force"], env=srv.env, capture_output=True,
                           timeout=180)
        for pid in processes_with(str(data_dir)):
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        ceph_net.stop_peer()
    assert not ceph_net.peer_pids() and ceph_net.ns not in subprocess.run(
        ["ip", "netns", "list"], capture_output=True, text=True).stdout


def test_add_host_refuses_clearly_and_changes_nothing(ceph_server, ceph_net, tmp_path):
    srv = ceph_server
    before = storage_info(srv)["osds"]["total"]
    # nobody listens there (an address on the tests' bridge with no machine): ssh fails, nothing is made
    r = srv.cli("storage", "add-host", "root@" + ceph_net.peer_ip, "--address", ceph_net.peer_ip, "--name", "nobody",
                check=False, timeout=120)
    assert r.returncode == 1 and "ssh root@" in r.stderr and "could not log in" in r.stderr, r.stderr
    for bad in (["--address", ceph_net.peer_ip, "--", "-oProxyCommand=touch /tmp/pwned"],
                ["root@" + ceph_net.peer_ip, "--address", "127.0.0.1"],
                ["root@" + ceph_net.peer_ip, "--address", ceph_net.peer_ip, "--data-dir", "/etc/../x"]):
        r = srv.cli("storage", "add-host", *bad, check=False, timeout=60)
        assert r.returncode == 1 and "InvalidParameterValue" in r.stderr, (bad, r.stderr)
    assert not Path("/tmp/pwned").exists()
    assert storage_info(srv)["osds"]["total"] == before
    r = srv.cli("storage", "remove-host", "no-such-host", check=False)
    assert r.returncode == 1 and "NoSuchHost" in r.stderr
    user = srv.new_user(f"ceph-hosts-{os.urandom(2).hex()}")
    status, body = user("GET", "/storage/hosts")
    assert status == 403 and body["error"]["code"] == "UnauthorizedOperation"
    status, body = user("POST", "/storage/daemons/osd.0/kill", json={})
    assert status == 403 and storage_info(srv)["osds"]["up"] == before
    status, body = srv.admin("POST", "/storage/daemons/osd.9/kill", json={})
    assert status == 400 and "no daemon 'osd.9'" in body["error"]["message"]
    status, body = srv.admin("POST", "/storage/daemons/osd.0/kill", json={"hold": "yes"})
    assert status == 400 and storage_info(srv)["osds"]["up"] == before


def test_on_the_standin_the_cluster_commands_refuse_with_how_to_get_ceph(server, tmp_path):
    """The session's cloud runs the embedded stand-in: no cluster, no daemons, no lab; yet
    `buckets explain` shows where an object's file is."""
    for args in (["lab", "durability", "--out", str(tmp_path / "lab")], ["storage", "hosts"], ["storage", "status"],
                 ["storage", "kill", "osd.0"]):
        r = server.cli(*args, check=False, timeout=60)
        assert r.returncode == 1 and "NotACluster" in r.stderr, (args, r.stderr)
        assert "rclone" in r.stderr and "POCKETCLOUD_S3_ENGINE=ceph" in r.stderr and "ceph-packages.sh" in r.stderr
    assert not (tmp_path / "lab").exists()
    r = server.cli("storage", "add-host", "root@192.0.2.10", "--address", "192.0.2.10", check=False, timeout=60)
    assert r.returncode == 1 and "no Ceph cluster in" in r.stderr  # refused before any ssh
    bucket = f"explain-{os.urandom(3).hex()}"
    admin = server.admin
    admin.ok("POST", "/buckets", 201, json={"name": bucket})
    try:
        admin.ok("PUT", f"/buckets/{bucket}/objects/dir/k.txt", 201, data=b"12345")
        r = server.cli("buckets", "explain", f"s3://{bucket}/dir/k.txt", check=False)
        assert r.returncode == 0, r.stderr
        # the stand-in's file for key dir/k.txt: folders split at '/', the file's name marked '~'
        assert f"{bucket}/dir/~k.txt (exists)" in r.stdout and "one plain file" in r.stdout
        # A key may start with '/' (S3 allows it): it names a file inside the bucket's folder,
        # never /etc/passwd. Dot segments are refused keys.
        status, body = admin("GET", f"/buckets/{bucket}/internals", params={"key": "/etc/passwd"})
        assert status == 200 and not body["object"]["exists"], body
        folder = body["bytes_on_host"]["path"]
        assert body["object"]["host_path"].startswith(folder + "/") and "passwd" in body["object"]["host_path"]
        status, body = admin("GET", f"/buckets/{bucket}/internals", params={"key": "a/../../x"})
        assert status == 400 and body["error"]["code"] == "InvalidArgument", body
    finally:
        admin.ok("DELETE", f"/buckets/{bucket}", 204, params={"force": "true"})
