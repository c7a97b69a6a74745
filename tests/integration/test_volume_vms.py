"""A volume on real VMs (libvirt + QEMU, the tiny image): hot-plugged into a running guest,
formatted and written from inside, snapshotted while attached, detached, attached to another
VM and read back; the snapshot restored holds its point in time; a second attach is refused
while the first holds it; DeleteOnTermination as each volume says. The second VM is launched
from an image of the first's root (CreateImage while it runs), with a volume of its own and a
larger root disk (block_devices), by way of a container: the first's image launched as a
container (its disk's files imported into dockerd), which writes a file of its own and is
imaged in turn, and that container image launched as a VM (an ext4 disk made from its files):
both directions of an image of one's own launched as the other kind, on this test's one boot."""
from __future__ import annotations

import time

import docker
import pytest

from emulator.config import Config

from .cloud import vm_area
from .test_ec2 import ec2_for
from .test_ec2_vpc import code_of

pytestmark = pytest.mark.integration

# The guest's name for the disk whose serial is $1 (waiting for the hot-plug to reach it).
FIND = ("i=0; while [ $i -lt 60 ]; do for d in /sys/block/vd*; do "
        "[ \"$(cat $d/serial 2>/dev/null)\" = \"{serial}\" ] && echo /dev/${{d##*/}} && exit 0; done; "
        "i=$((i+1)); sleep 0.5; done; exit 1")
GONE = ("i=0; while [ $i -lt 60 ]; do grep -l {serial} /sys/block/vd*/serial >/dev/null 2>&1 || exit 0; "
        "i=$((i+1)); sleep 0.5; done; exit 1")


def sh(user, iid: str, command: str) -> str:
    res = user.ok("POST", f"/instances/{iid}/exec", json={"command": command, "timeout": 120})
    assert res["exit_code"] == 0, (command, res)
    return res["stdout"]


def wait_volume(ec2, vid: str, state: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        [v] = ec2.describe_volumes(VolumeIds=[vid])["Volumes"]
        if v["State"] == state:
            return v
        assert time.monotonic() < deadline, v
        time.sleep(0.5)


def labelled_images(label: str) -> list[str]:
    """Every image with LABEL, untagged ones below others too."""
    client = docker.from_env()
    try:
        return [i.id for i in client.images.list(all=True, filters={"label": label})]
    finally:
        client.close()


def other_forms(server) -> tuple[list[str], list[str]]:
    """The AMIs of this cloud with a container form in dockerd, and the folders in its QEMU
    area's amis/ (VM forms, and any conversion's scratch)."""
    client = docker.from_env()
    try:
        label = Config(home=server.home).instance_label
        images = sorted(i.labels["pocketcloud.ami"] for i in client.images.list(
            filters={"label": [f"pocketcloud.cloud={label}", "pocketcloud.ami"]})
            if "pocketcloud.snapshot" not in i.labels)  # (a commit of its container inherits its labels)
    finally:
        client.close()
    area = vm_area(server.home) / "amis"
    return images, sorted(p.name for p in area.iterdir()) if area.is_dir() else []


def test_a_volume_moves_between_running_vms_with_its_data(server, user):
    ec2 = ec2_for(server, user)
    a = user.ok("POST", "/instances", 201, json={"kind": "vm", "image": "tiny", "type": "t2.nano"})
    b = c = None
    made: list[str] = []
    snap = ami = cami = None
    try:
        a = user.wait_state(a["id"])
        # b boots from an image of a's root taken while a runs (NoReboot: a push backup of the
        # overlay, flattened), so it has what a wrote: the VM half of issue 15's own AMIs, on the
        # boot this test needs anyway. On the way, that image runs as a container c (its disk's
        # files imported), whose own image (with a file c wrote) b boots from as a VM (a disk made
        # of c's files, with the kernel of a's image). b comes with a volume of its own and a root
        # disk larger than the image's (block_devices, RunInstances' BlockDeviceMappings):
        # hot-plugged once its guest is up, deleted with it.
        sh(user, a["id"], "echo written-in-a > /root/marker && sync")
        ami = ec2.create_image(InstanceId=a["id"], Name="a's root", NoReboot=True)["ImageId"]
        [img] = ec2.describe_images(ImageIds=[ami])["Images"]
        assert (img["State"], img["RootDeviceName"], img["Hypervisor"]) == ("available", "/dev/vda", "kvm")
        c = user.ok("POST", "/instances", 201, json={"kind": "container", "image": ami})
        c = user.wait_state(c["id"])
        assert other_forms(server)[0] == [ami]
        assert sh(user, c["id"], "cat /root/marker").strip() == "written-in-a"
        assert sh(user, c["id"], "stat -c '%a %u' /bin/busybox /root").split() == ["755", "0", "700", "0"]
        sh(user, c["id"], "echo written-in-c > /root/from-container")
        cami = ec2.create_image(InstanceId=c["id"], Name="c's root", NoReboot=True)["ImageId"]
        b = user.ok("POST", "/instances", 201, json={"kind": "vm", "image": cami, "type": "t2.nano", "block_devices": [
            {"device": "/dev/vda", "size_gib": 2}, {"device": "/dev/sdi", "size_gib": 1}]})
        assert cami in other_forms(server)[1], "the VM form is kept beside the image"
        b = user.wait_state(b["id"])
        assert sh(user, b["id"], "cat /root/marker /root/from-container").split() == ["written-in-a", "written-in-c"]
        assert ".dockerenv" not in sh(user, b["id"], "ls -a /").split(), "no container marker in a VM's root"
        # Deregistered, an image's container form goes (Docker keeps its layers for the image
        # of c layered on them, cami's snapshot, until that goes too: checked below).
        user.ok("DELETE", f"/instances/{c['id']}")
        user.wait_state(c["id"], "terminated")
        done, ami = ami, None
        ec2.deregister_image(ImageId=done)
        assert other_forms(server)[0] == []
        [res] = ec2.describe_instances(InstanceIds=[b["id"]])["Reservations"]
        bdm = {m["DeviceName"]: m["Ebs"] for m in res["Instances"][0]["BlockDeviceMappings"]}
        assert set(bdm) == {"/dev/vda", "/dev/sdi"} and bdm["/dev/sdi"]["DeleteOnTermination"] is True
        launched = bdm["/dev/sdi"]["VolumeId"]
        assert wait_volume(ec2, launched, "in-use")["Attachments"][0]["InstanceId"] == b["id"]
        assert ec2.describe_volumes(VolumeIds=[bdm["/dev/vda"]["VolumeId"]])["Volumes"][0]["Size"] == 2
        assert sh(user, b["id"], FIND.format(serial=launched.replace("-", ""))).strip().startswith("/dev/vd")
        # the disk grew; tiny's ext4 stays as built (512 MiB: busybox has no resize2fs)
        assert int(sh(user, b["id"], "cat /sys/block/vda/size")) * 512 == 2 * 1024 ** 3
        vid = ec2.create_volume(AvailabilityZone="us-east-1a", Size=1)["VolumeId"]
        made.append(vid)
        serial = vid.replace("-", "")

        att = ec2.attach_volume(VolumeId=vid, InstanceId=a["id"], Device="/dev/sdf")
        assert att["Device"] == "/dev/sdf" and att["InstanceId"] == a["id"]
        v = wait_volume(ec2, vid, "in-use")
        assert v["Attachments"][0]["State"] == "attached" and v["Attachments"][0]["DeleteOnTermination"] is False
        dev = sh(user, a["id"], FIND.format(serial=serial)).strip()
        assert dev.startswith("/dev/vd")
        # internals from both sides: the domain's disk (read from libvirt now) is the guest's device
        seen = user.ok("GET", f"/volumes/{vid}/internals")
        eng = seen["attachment"]["engine"]
        assert (eng["guest_device"], eng["serial"], eng["bus"], eng["host_file"]) == (dev, serial, "virtio", seen["file"])
        assert sh(user, a["id"], eng["find_it_inside"].split("  #")[0]).strip() == serial
        sh(user, a["id"], f"mke2fs {dev} >/dev/null && mkdir -p /mnt/v && mount {dev} /mnt/v && "
                          "echo written-in-a > /mnt/v/proof && sync && umount /mnt/v")
        # a snapshot while the guest runs with the disk (a libvirt push backup), then more writes
        snap = ec2.create_snapshot(VolumeId=vid)["SnapshotId"]
        sh(user, a["id"], f"mount {dev} /mnt/v && echo after-snapshot > /mnt/v/proof && sync && umount /mnt/v")
        assert code_of(lambda: ec2.attach_volume(VolumeId=vid, InstanceId=b["id"], Device="/dev/sdf")) == "VolumeInUse"
        assert code_of(lambda: ec2.delete_volume(VolumeId=vid)) == "VolumeInUse"

        ec2.detach_volume(VolumeId=vid)
        wait_volume(ec2, vid, "available")
        sh(user, a["id"], GONE.format(serial=serial))  # the guest no longer has the disk

        ec2.attach_volume(VolumeId=vid, InstanceId=b["id"], Device="/dev/xvdg")
        wait_volume(ec2, vid, "in-use")
        dev = sh(user, b["id"], FIND.format(serial=serial)).strip()
        out = sh(user, b["id"], f"mkdir -p /mnt/v && mount {dev} /mnt/v && cat /mnt/v/proof && umount /mnt/v")
        assert out.strip() == "after-snapshot"

        # the snapshot holds the point in time it was taken at
        restored = ec2.create_volume(AvailabilityZone="us-east-1a", SnapshotId=snap)["VolumeId"]
        made.append(restored)
        ec2.attach_volume(VolumeId=restored, InstanceId=b["id"], Device="/dev/sdh")
        dev = sh(user, b["id"], FIND.format(serial=restored.replace("-", ""))).strip()
        out = sh(user, b["id"], f"mkdir -p /mnt/r && mount {dev} /mnt/r && cat /mnt/r/proof && umount /mnt/r")
        assert out.strip() == "written-in-a"
        ec2.modify_instance_attribute(InstanceId=b["id"], BlockDeviceMappings=[
            {"DeviceName": "/dev/sdh", "Ebs": {"DeleteOnTermination": True}}])

        # terminating b keeps the volume (DeleteOnTermination false for an attached volume) and
        # deletes the restored one (set true above)
        user.ok("DELETE", f"/instances/{b['id']}")
        user.wait_state(b["id"], "terminated")
        done, cami = cami, None
        [cami_snap] = [s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]
                       if done in s.get("Description", "")]
        ec2.deregister_image(ImageId=done)
        assert done not in other_forms(server)[1], "its VM form went with it"
        ec2.delete_snapshot(SnapshotId=cami_snap)
        assert labelled_images(f"pocketcloud.ami={done}") == [], "its layers went with the last image on them"
        v = wait_volume(ec2, vid, "available")
        assert v["Attachments"] == []
        assert code_of(lambda: ec2.describe_volumes(VolumeIds=[restored])) == "InvalidVolume.NotFound"
        assert code_of(lambda: ec2.describe_volumes(VolumeIds=[launched])) == "InvalidVolume.NotFound"
        made.remove(restored)
    finally:
        for inst in (a, b, c):
            if inst:
                user("DELETE", f"/instances/{inst['id']}")
        for v in made:
            ec2.delete_volume(VolumeId=v)
        if snap:
            ec2.delete_snapshot(SnapshotId=snap)
        for image in (ami, cami):
            if image:
                ec2.deregister_image(ImageId=image)
        for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]:  # the image's
            ec2.delete_snapshot(SnapshotId=s["SnapshotId"])
