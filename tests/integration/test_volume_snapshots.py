"""Snapshots on real engines through boto3: taken while a container writes to the volume
(filesystem frozen on the host), kept after the volume is deleted, restored into a larger
volume that holds the data of that point in time; copied, filtered, deleted; bad input."""
from __future__ import annotations

import pytest

from .cloud import vm_area
from .test_ec2 import ec2_for
from .test_ec2_vpc import code_of
from .test_volume_vms import sh, wait_volume

pytestmark = pytest.mark.integration


def test_a_snapshot_of_a_volume_in_use_restores_that_point_in_time(server, user):
    ec2 = ec2_for(server, user)
    a = user.ok("POST", "/instances", 201, json={"kind": "container", "image": "tiny"})
    made: list[str] = []
    snaps: list[str] = []
    try:
        vid = ec2.create_volume(AvailabilityZone="us-east-1a", Size=1)["VolumeId"]
        made.append(vid)
        ec2.attach_volume(VolumeId=vid, InstanceId=a["id"], Device="/dev/sdf")
        sh(user, a["id"], "echo v1 > /volumes/sdf/state")
        s1 = ec2.create_snapshot(VolumeId=vid, Description="at v1", TagSpecifications=[
            {"ResourceType": "snapshot", "Tags": [{"Key": "when", "Value": "v1"}]}])
        snaps.append(s1["SnapshotId"])
        assert (s1["State"], s1["VolumeId"], s1["VolumeSize"], s1["Description"]) == ("completed", vid, 1, "at v1")
        sh(user, a["id"], "echo v2 > /volumes/sdf/state")
        ec2.detach_volume(VolumeId=vid)
        wait_volume(ec2, vid, "available")
        ec2.delete_volume(VolumeId=vid)
        made.remove(vid)

        [d] = ec2.describe_snapshots(OwnerIds=["self"], Filters=[{"Name": "tag:when", "Values": ["v1"]}])["Snapshots"]
        assert d["SnapshotId"] == s1["SnapshotId"] and d["State"] == "completed"
        assert ec2.describe_snapshots(OwnerIds=["amazon"])["Snapshots"] == []
        assert code_of(lambda: ec2.create_volume(AvailabilityZone="us-east-1a", Size=0,
                                                 SnapshotId=s1["SnapshotId"])) == "InvalidParameterValue"
        r = ec2.create_volume(AvailabilityZone="us-east-1a", Size=2, SnapshotId=s1["SnapshotId"])
        made.append(r["VolumeId"])
        assert (r["Size"], r["SnapshotId"], r["State"]) == (2, s1["SnapshotId"], "available")
        ec2.attach_volume(VolumeId=r["VolumeId"], InstanceId=a["id"], Device="/dev/sdg")
        assert sh(user, a["id"], "cat /volumes/sdg/state").strip() == "v1"
        ec2.detach_volume(VolumeId=r["VolumeId"])
        wait_volume(ec2, r["VolumeId"], "available")

        s2 = ec2.create_snapshot(VolumeId=r["VolumeId"])  # a detached volume: its file is copied
        snaps.append(s2["SnapshotId"])
        assert s2["VolumeSize"] == 2
        copy = ec2.copy_snapshot(SourceSnapshotId=s1["SnapshotId"], SourceRegion="us-east-1")["SnapshotId"]
        snaps.append(copy)
        assert code_of(lambda: ec2.copy_snapshot(SourceSnapshotId=copy, SourceRegion="eu-west-1")) \
            == "InvalidParameterValue"
        mine = {s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]}
        assert mine == set(snaps)

        other = ec2_for(server, server.new_user(f"snapother{a['id'][-6:]}"))
        assert code_of(lambda: other.describe_snapshots(SnapshotIds=[copy])) == "InvalidSnapshot.NotFound"
        assert code_of(lambda: other.delete_snapshot(SnapshotId=copy)) == "InvalidSnapshot.NotFound"
        assert code_of(lambda: other.create_volume(AvailabilityZone="us-east-1a", SnapshotId=copy)) \
            == "InvalidSnapshot.NotFound"
        assert code_of(lambda: ec2.delete_snapshot(SnapshotId="snap-nope")) == "InvalidSnapshotID.Malformed"
    finally:
        user("DELETE", f"/instances/{a['id']}")
        for vid in made:
            ec2.delete_volume(VolumeId=vid)
        for sid in snaps:
            ec2.delete_snapshot(SnapshotId=sid)
    assert not list((vm_area(server.home) / "snapshots").glob("*"))
