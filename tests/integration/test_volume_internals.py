"""`volumes internals` on a real container: block storage from both sides. The host's qcow2
file, its chain and allocation; the export, loop device and mount the host made; the path the
container sees. A byte written inside is read on the host through the mount the internals
name, and the file's allocation grows. Another account's id is a 404."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from .test_cli import Cli
from .test_volume_vms import sh

pytestmark = pytest.mark.integration


def host_mounts() -> dict[str, tuple[str, str]]:
    out = {}
    for line in Path("/proc/self/mounts").read_text().splitlines():
        source, point, fstype = line.split(" ")[:3]
        out[point] = (source, fstype)
    return out


def test_internals_show_a_container_volume_from_the_host_and_from_inside(server, user, tmp_path):
    inst = user.ok("POST", "/instances", 201, json={"kind": "container", "image": "tiny"})
    vid = user.ok("POST", "/volumes", 201, json={"size": 1})["id"]
    try:
        before = user.ok("GET", f"/volumes/{vid}/internals")
        assert before["attachment"] is None and before["format"] == "qcow2"
        assert Path(before["file"]).is_file() and before["file"].endswith(f"/{vid}.qcow2")
        assert [link["format"] for link in before["chain"]] == ["qcow2"]
        assert before["chain"][0]["virtual_size"] == 1 << 30 == before["size_bytes"]

        user.ok("POST", f"/volumes/{vid}/attach", json={"instance_id": inst["id"], "device": "/dev/sdf"})
        data = user.ok("GET", f"/volumes/{vid}/internals")
        att, eng = data["attachment"], data["attachment"]["engine"]
        assert (att["instance_id"], att["kind"], att["device"], att["guest_device"]) == \
            (inst["id"], "container", "/dev/sdf", "/volumes/sdf")
        assert eng["engine"] == "docker" and eng["attached"] is True and eng["guest_path"] == "/volumes/sdf"
        # the host's side, checked against the kernel: a loop device over the export, mounted ext4
        os.kill(eng["export_daemon_pid"], 0)
        assert host_mounts()[eng["host_mount"]] == (eng["loop_device"], "ext4") == (eng["loop_device"], eng["filesystem"])
        backing = Path(f"/sys/block/{eng['loop_device'][5:]}/loop/backing_file").read_text().strip()
        assert backing.endswith(".raw") and backing in eng["export"]
        # the instance's side: the same filesystem, a byte written inside is on the host's mount
        assert " ext4 " in sh(user, inst["id"], eng["find_it_inside"].split("  #")[0])
        sh(user, inst["id"], "dd if=/dev/urandom of=/volumes/sdf/blob bs=1M count=8 2>/dev/null; "
                             "echo from-inside > /volumes/sdf/proof; sync")
        assert (Path(eng["host_mount"]) / "proof").read_text() == "from-inside\n"
        after = user.ok("GET", f"/volumes/{vid}/internals")
        assert after["allocated_bytes"] >= before["allocated_bytes"] + (8 << 20)

        other = server.new_user(f"intruder-{server.port}-{vid[-6:]}")
        status, body = other("GET", f"/volumes/{vid}/internals")
        assert status == 404 and body["error"]["code"] == "InvalidVolume.NotFound"

        cli = Cli(server, user, tmp_path / "cli-home")
        text = cli("volumes", "internals", vid).stdout
        assert f"file        {data['file']}" in text and eng["loop_device"] in text
        assert "it sees     /volumes/sdf" in text and eng["host_mount"] in text

        user.ok("POST", f"/volumes/{vid}/detach")
        gone = user.ok("GET", f"/volumes/{vid}/internals")
        assert gone["attachment"] is None and eng["host_mount"] not in host_mounts()
    finally:
        user("DELETE", f"/instances/{inst['id']}")
        user("DELETE", f"/volumes/{vid}")
