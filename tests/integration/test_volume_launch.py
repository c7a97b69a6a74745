"""Volumes at launch on real containers (RunInstances BlockDeviceMappings over boto3, REST
block_devices): a container sees its launch volume from its first process, a volume made from
a snapshot holds the snapshot's data, DescribeInstances lists the mappings, terminate honours
DeleteOnTermination; bad mappings, another account's snapshot and the quota are refused with
nothing made; kill -9 between making the volumes and attaching them, or between attaching
and recording it, leaves every volume attached or removed after a restart, never orphaned."""
from __future__ import annotations

import time

import pytest

from tests.conftest import start_server, stop_and_check_leaks
from tests.integration.cloud import vm_area

from .test_ec2 import ec2_for, tiny_ami
from .test_ec2_vpc import code_of
from .test_volume_restart import crash_and_restart
from .test_volume_vms import sh, wait_volume
from .test_volumes import pair  # noqa: F401 - the fixture

pytestmark = pytest.mark.integration


def pool_files(server) -> list[str]:
    d = vm_area(server.home) / "volumes"
    return sorted(p.name for p in d.glob("*")) if d.exists() else []


def run(ec2, ami: str, mappings: list[dict], **kw) -> dict:
    return ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, BlockDeviceMappings=mappings, **kw)["Instances"][0]


def data_volumes(ec2) -> list[dict]:
    """The account's volumes but its instances' root volumes."""
    return [v for v in ec2.describe_volumes()["Volumes"] if not any(a["Device"] == "/" for a in v["Attachments"])]


def mappings_of(ec2, iid: str) -> dict[str, dict]:
    [r] = ec2.describe_instances(InstanceIds=[iid])["Reservations"]
    return {m["DeviceName"]: m["Ebs"] for m in r["Instances"][0]["BlockDeviceMappings"]}


def test_launch_volumes_of_containers_from_empty_and_from_a_snapshot(server, pair):  # noqa: F811
    (a, ea), (b, eb) = pair
    ami = tiny_ami(ea)
    made, snap = [], None
    try:
        # the container sees its volume from its first process: user data writes to it at boot
        first = run(ea, ami, [{"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 1}}],
                    UserData="#!/bin/sh\necho written-at-boot > /volumes/sdf/proof\n")
        made.append(first["InstanceId"])
        assert first["State"]["Name"] == "running"
        bdm = mappings_of(ea, first["InstanceId"])
        assert set(bdm) == {"/", "/dev/sdf"} and bdm["/dev/sdf"]["DeleteOnTermination"] is True
        vid = bdm["/dev/sdf"]["VolumeId"]
        v = wait_volume(ea, vid, "in-use", timeout=10)
        assert (v["Size"], v["VolumeType"], v["Attachments"][0]["InstanceId"]) == (1, "gp3", first["InstanceId"])
        got = sh(a, first["InstanceId"], "for i in $(seq 50); do [ -f /volumes/sdf/proof ] && break; sleep 0.2; done; "
                                         "cat /volumes/sdf/proof; grep ' /volumes/sdf ' /proc/mounts")
        assert got.startswith("written-at-boot") and "ext4" in got
        snap = ea.create_snapshot(VolumeId=vid)["SnapshotId"]

        # another account cannot use the snapshot; a bad second mapping makes nothing
        assert code_of(lambda: run(eb, ami, [{"DeviceName": "/dev/sdf", "Ebs": {"SnapshotId": snap}}])) == \
            "InvalidSnapshot.NotFound"
        before = pool_files(server)
        for second, code in [({"DeviceName": "/dev/sdg", "Ebs": {"SnapshotId": "snap-0123456789abcdef0"}},
                              "InvalidSnapshot.NotFound"),
                             ({"DeviceName": "/dev/sdg", "Ebs": {"SnapshotId": snap, "VolumeSize": 0}},
                              "InvalidParameterValue"),
                             ({"DeviceName": "/dev/sda1", "Ebs": {"VolumeSize": 1}}, "InvalidParameterValue"),
                             ({"DeviceName": "/dev/xvdf", "Ebs": {"VolumeSize": 1}}, "InvalidParameterValue"),
                             ({"DeviceName": "/dev/sdg", "Ebs": {"VolumeSize": 1, "VolumeType": "io2"}},
                              "InvalidParameterValue"),
                             ({"DeviceName": "/dev/sdg", "VirtualName": "ephemeral0"}, "UnsupportedOperation"),
                             ({"DeviceName": "/", "Ebs": {"VolumeSize": 40}}, "UnsupportedOperation")]:
            assert code_of(lambda: run(ea, ami, [{"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 1}}, second])) \
                == code, second
        many = [{"DeviceName": f"/dev/xvd{c}", "Ebs": {"VolumeSize": 1}} for c in "bcdefghijklmnopqrstu"]
        assert code_of(lambda: ea.run_instances(ImageId=ami, MinCount=3, MaxCount=3,
                                                BlockDeviceMappings=many)) == "VolumeLimitExceeded"
        assert pool_files(server) == before
        assert {v["VolumeId"] for v in data_volumes(ea)} == {vid}
        assert len([i for r in ea.describe_instances()["Reservations"] for i in r["Instances"]]) == 1

        # from the snapshot, kept at termination (DeleteOnTermination false), over REST
        second = a.ok("POST", "/instances", 201, json={"kind": "container", "image": "tiny", "block_devices": [
            {"device": "/dev/xvdg", "snapshot_id": snap, "size_gib": 2, "delete_on_termination": False}]})
        made.append(second["id"])
        assert sh(a, second["id"], "cat /volumes/xvdg/proof").strip() == "written-at-boot"
        kept = mappings_of(ea, second["id"])["/dev/xvdg"]
        assert kept["DeleteOnTermination"] is False
        [kv] = ea.describe_volumes(VolumeIds=[kept["VolumeId"]])["Volumes"]
        assert (kv["Size"], kv["SnapshotId"], kv["State"]) == (2, snap, "in-use")
        status, body = a("POST", "/instances", json={"kind": "container", "image": "tiny",
                                                     "block_devices": [{"device": "/dev/sdf", "size": 1}]})
        assert status == 400 and body["error"]["code"] == "InvalidParameterValue"

        ea.terminate_instances(InstanceIds=made)
        assert code_of(lambda: ea.describe_volumes(VolumeIds=[vid])) == "InvalidVolume.NotFound"
        assert wait_volume(ea, kept["VolumeId"], "available", timeout=10)["Attachments"] == []
        ea.delete_volume(VolumeId=kept["VolumeId"])
    finally:
        if made:
            ea.terminate_instances(InstanceIds=made)
        for v in data_volumes(ea):
            if not v["Attachments"]:
                ea.delete_volume(VolumeId=v["VolumeId"])
        if snap:
            ea.delete_snapshot(SnapshotId=snap)


@pytest.mark.parametrize("fault", ["launch:after-volumes", "volume:after-launch-attach"])
def test_a_server_killed_mid_launch_leaves_no_orphan_volume(tmp_path, docker_client, fault):
    srv = start_server(tmp_path / "home", POCKETCLOUD_FAULT=fault)
    try:
        user = srv.new_user(f"crashbdm{srv.port}")
        ec2 = ec2_for(srv, user)
        ami = tiny_ami(ec2)
        crash_and_restart(srv, lambda: run(ec2, ami, [{"DeviceName": "/dev/sdf",
                                            "Ebs": {"VolumeSize": 1, "DeleteOnTermination": False}}]))
        own = data_volumes(ec2)
        [inst] = [i for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]]
        if fault == "launch:after-volumes":  # nothing ran yet: the launch and its volume are rolled back
            assert inst["State"]["Name"] == "terminated"
            deadline = time.monotonic() + 60  # at the first pass, or a later one if libvirtd was busy
            while data_volumes(ec2) or pool_files(srv):
                assert time.monotonic() < deadline, (data_volumes(ec2), pool_files(srv))
                time.sleep(1)
        else:  # the container ran with its volume mounted: adopted, the volume settled in-use
            assert inst["State"]["Name"] == "running"
            [v] = own
            assert (v["State"], v["Attachments"][0]["InstanceId"]) == ("in-use", inst["InstanceId"])
            sh(user, inst["InstanceId"], "echo after-restart > /volumes/sdf/f && cat /volumes/sdf/f")
            ec2.terminate_instances(InstanceIds=[inst["InstanceId"]])
            wait_volume(ec2, v["VolumeId"], "available", timeout=30)
            ec2.delete_volume(VolumeId=v["VolumeId"])
    finally:
        srv.env.pop("POCKETCLOUD_FAULT", None)
        if srv.proc.poll() is not None:
            srv.start()
        stop_and_check_leaks(srv, docker_client)
