"""Images of an account's own on real engines through boto3 (issue 15): a container's root
snapshotted (a Docker image labelled with the cloud), imaged with CreateImage and registered
again from its snapshot, launched with the file written before; the AWS errors for a running
instance without NoReboot, malformed and duplicate names, another account's ids; nothing left
in dockerd afterwards."""
from __future__ import annotations

import docker
import pytest

from emulator.config import Config

from .test_ec2 import ec2_for
from .test_ec2_vpc import code_of
from .test_volume_vms import sh

pytestmark = pytest.mark.integration


def snapshot_images(server) -> list[str]:
    label = Config(home=server.home).instance_label
    client = docker.from_env()
    try:
        return sorted(i.labels["pocketcloud.snapshot"] for i in client.images.list(
            filters={"label": [f"pocketcloud.cloud={label}", "pocketcloud.snapshot"]}))
    finally:
        client.close()


def test_a_container_image_launches_with_the_files_of_its_instance(server, user):
    ec2 = ec2_for(server, user)
    tiny = ec2.describe_images(Filters=[{"Name": "name", "Values": ["tiny-container"]}])["Images"][0]["ImageId"]
    source = ec2.run_instances(ImageId=tiny, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    made: list[str] = [source]
    amis: list[str] = []
    snaps: list[str] = []  # the root's snapshot, then the image's
    try:
        sh(user, source, "echo written-before > /root/marker")
        [root] = ec2.describe_volumes(Filters=[{"Name": "attachment.instance-id", "Values": [source]}])["Volumes"]
        snap = ec2.create_snapshot(VolumeId=root["VolumeId"], Description="root")
        root_owner = snap["OwnerId"]
        snaps.append(snap["SnapshotId"])
        assert snap["State"] == "completed" and snap["VolumeId"] == root["VolumeId"]
        assert snapshot_images(server) == [snap["SnapshotId"]]

        assert code_of(lambda: ec2.create_image(InstanceId=source, Name="running")) == "IncorrectInstanceState"
        for bad in ("x" * 129, "semi;colon"):  # (boto3 itself refuses fewer than 3 characters)
            assert code_of(lambda: ec2.create_image(InstanceId=source, Name=bad, NoReboot=True)) \
                == "InvalidAMIName.Malformed"
        assert ec2.describe_images(Owners=["self"])["Images"] == []
        ami = ec2.create_image(InstanceId=source, Name="web (v1)", Description="with marker", NoReboot=True,
                               TagSpecifications=[{"ResourceType": "image", "Tags": [{"Key": "k", "Value": "v"}]}])
        amis.append(ami["ImageId"])
        ec2.get_waiter("image_available").wait(ImageIds=[ami["ImageId"]], WaiterConfig={"Delay": 1})
        [img] = ec2.describe_images(Owners=["self"])["Images"]
        assert (img["ImageId"], img["Name"], img["State"], img["Public"], img["OwnerId"]) == \
            (ami["ImageId"], "web (v1)", "available", False, root_owner)
        assert img["Tags"] == [{"Key": "k", "Value": "v"}]
        snaps.append(img["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"])
        assert code_of(lambda: ec2.create_image(InstanceId=source, Name="web (v1)", NoReboot=True)) \
            == "InvalidAMIName.Duplicate"
        assert {i["ImageId"] for i in ec2.describe_images()["Images"]} >= {tiny, ami["ImageId"]}
        ec2.create_tags(Resources=[ami["ImageId"]], Tags=[{"Key": "more", "Value": "x"}])
        assert [i["ImageId"] for i in ec2.describe_images(Filters=[{"Name": "tag:more", "Values": ["x"]}])["Images"]] \
            == [ami["ImageId"]]
        assert code_of(lambda: ec2.create_tags(Resources=[tiny], Tags=[{"Key": "k", "Value": "v"}])) \
            == "UnsupportedOperation"
        assert code_of(lambda: ec2.deregister_image(ImageId=tiny)) == "AuthFailure"
        assert code_of(lambda: ec2.describe_images(ImageIds=["ami-nope"])) == "InvalidAMIID.Malformed"

        other = ec2_for(server, server.new_user(f"amiother{source[-6:]}"))
        assert other.describe_images(Owners=["self"])["Images"] == []
        assert ami["ImageId"] not in {i["ImageId"] for i in other.describe_images()["Images"]}
        for call in (lambda: other.describe_images(ImageIds=[ami["ImageId"]]),
                     lambda: other.run_instances(ImageId=ami["ImageId"], MinCount=1, MaxCount=1),
                     lambda: other.deregister_image(ImageId=ami["ImageId"])):
            assert code_of(call) == "InvalidAMIID.NotFound"
        assert code_of(lambda: other.create_image(InstanceId=source, Name="theirs", NoReboot=True)) \
            == "InvalidInstanceID.NotFound"
        assert code_of(lambda: other.register_image(Name="theirs", RootDeviceName="/", BlockDeviceMappings=[
            {"DeviceName": "/", "Ebs": {"SnapshotId": snap["SnapshotId"]}}])) == "InvalidSnapshot.NotFound"
        assert code_of(lambda: ec2.delete_snapshot(SnapshotId=snaps[1])) == "InvalidSnapshot.InUse"

        # The snapshot taken before makes an image too.
        reg = ec2.register_image(Name="from the snapshot", RootDeviceName="/", BlockDeviceMappings=[
            {"DeviceName": "/", "Ebs": {"SnapshotId": snap["SnapshotId"]}}])["ImageId"]
        amis.append(reg)
        for image_id in (ami["ImageId"], reg):
            iid = ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
            made.append(iid)
            [inst] = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"]
            assert inst["ImageId"] == image_id
            assert sh(user, iid, "cat /root/marker").strip() == "written-before"
    finally:
        ec2.terminate_instances(InstanceIds=made)
        ec2.get_waiter("instance_terminated").wait(InstanceIds=made, WaiterConfig={"Delay": 1})
        for image_id in amis:
            ec2.deregister_image(ImageId=image_id)
        for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]:
            ec2.delete_snapshot(SnapshotId=s["SnapshotId"])
    assert ec2.describe_images(Owners=["self"])["Images"] == []
    assert snapshot_images(server) == []
