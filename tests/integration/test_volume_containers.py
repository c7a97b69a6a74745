"""A volume on real containers: the host mounts its filesystem and the running container sees
it at /volumes/<device> (mount propagation), written in one container, detached, read back in
another; a detach while a process inside still uses the volume is refused and changes nothing."""
from __future__ import annotations

import pytest

from .test_ec2 import ec2_for
from .test_ec2_vpc import code_of
from .test_volume_vms import sh, wait_volume

pytestmark = pytest.mark.integration


def test_a_volume_moves_between_running_containers_with_its_data(server, user):
    ec2 = ec2_for(server, user)
    a = user.ok("POST", "/instances", 201, json={"kind": "container", "image": "tiny"})
    b = user.ok("POST", "/instances", 201, json={"kind": "container", "image": "tiny"})
    vid = None
    try:
        vid = ec2.create_volume(AvailabilityZone="us-east-1a", Size=1)["VolumeId"]
        ec2.attach_volume(VolumeId=vid, InstanceId=a["id"], Device="/dev/sdf")
        vol = user.ok("GET", f"/volumes/{vid}")
        assert (vol["state"], vol["device"], vol["instance_id"]) == ("in-use", "/dev/sdf", a["id"])
        assert vol["guest_device"] == "/volumes/sdf"
        out = sh(user, a["id"], "echo written-in-a > /volumes/sdf/proof && grep ' /volumes/sdf ' /proc/mounts")
        assert "ext4" in out

        # a process inside holds the mount: the detach is refused, the volume stays usable
        sh(user, a["id"], "cd /volumes/sdf && (sleep 120 </dev/null >/dev/null 2>&1 &)")
        assert code_of(lambda: ec2.detach_volume(VolumeId=vid)) == "VolumeInUse"
        assert user.ok("GET", f"/volumes/{vid}")["state"] == "in-use"
        assert sh(user, a["id"], "cat /volumes/sdf/proof").strip() == "written-in-a"
        sh(user, a["id"], "killall sleep; sleep 0.5")

        ec2.detach_volume(VolumeId=vid)
        wait_volume(ec2, vid, "available")
        assert "no-volume" in sh(user, a["id"], "ls /volumes/sdf 2>/dev/null || echo no-volume")

        got = user.ok("POST", f"/volumes/{vid}/attach", json={"instance_id": b["id"], "device": "/dev/xvdg"})
        assert (got["state"], got["guest_device"]) == ("in-use", "/volumes/xvdg")
        assert sh(user, b["id"], "cat /volumes/xvdg/proof").strip() == "written-in-a"
        user.ok("DELETE", f"/instances/{b['id']}")  # DeleteOnTermination false: the volume stays
        assert wait_volume(ec2, vid, "available")["Attachments"] == []
    finally:
        for inst in (a, b):
            user("DELETE", f"/instances/{inst['id']}")
        if vid:
            ec2.delete_volume(VolumeId=vid)
