"""Volumes (issue 15) against a real server and a real libvirt storage pool: unmodified boto3,
the REST API and the CLI create, describe, grow and delete gp3 volumes that are qcow2 files
libvirt knows; bad input and another account's ids answer the AWS codes and change nothing."""
from __future__ import annotations

import shutil
import subprocess
import time

import pytest

from emulator.config import Config
from emulator.volumes import qcow2_virtual_size

from .cloud import Cli, vm_area
from .test_ec2 import ec2_for
from .test_ec2_vpc import code_of

pytestmark = pytest.mark.integration
GIB = 1024 ** 3


@pytest.fixture
def pair(server):
    n = time.monotonic_ns() % 10 ** 9
    a, b = server.new_user(f"vola{n}"), server.new_user(f"volb{n}")
    return (a, ec2_for(server, a)), (b, ec2_for(server, b))


def pool_file(server, volume_id: str):
    return vm_area(server.home) / "volumes" / f"{volume_id}.qcow2"


def virsh_volumes(server) -> list[str]:
    pool = f"pocketcloud-{Config(home=server.home).instance_label}-volumes"
    out = subprocess.run(["virsh", "-c", "qemu:///system", "vol-list", pool], capture_output=True, text=True,
                         check=True).stdout
    return [line.split()[0] for line in out.splitlines()[2:] if line.strip()]


def test_boto3_creates_grows_and_deletes_a_volume_that_is_a_qcow2_file_in_a_libvirt_pool(server, pair):
    (_, ea), (_, eb) = pair
    v = ea.create_volume(AvailabilityZone="us-east-1b", Size=2, VolumeType="gp3", TagSpecifications=[
        {"ResourceType": "volume", "Tags": [{"Key": "Name", "Value": "data"}]}])
    vid = v["VolumeId"]
    assert (v["State"], v["Size"], v["Iops"], v["Throughput"], v["Encrypted"]) == ("available", 2, 3000, 125, False)
    assert v["Tags"] == [{"Key": "Name", "Value": "data"}] and v["Attachments"] == []
    assert qcow2_virtual_size(pool_file(server, vid)) == 2 * GIB
    assert f"{vid}.qcow2" in virsh_volumes(server)
    ea.get_waiter("volume_available").wait(VolumeIds=[vid])
    [d] = ea.describe_volumes(Filters=[{"Name": "status", "Values": ["available"]},
                                       {"Name": "tag:Name", "Values": ["data"]}])["Volumes"]
    assert d["VolumeId"] == vid and d["AvailabilityZone"] == "us-east-1b"

    m = ea.modify_volume(VolumeId=vid, Size=3, Iops=4000)["VolumeModification"]
    assert (m["ModificationState"], m["OriginalSize"], m["TargetSize"], m["TargetIops"]) == ("completed", 2, 3, 4000)
    assert qcow2_virtual_size(pool_file(server, vid)) == 3 * GIB
    [mods] = ea.describe_volumes_modifications(VolumeIds=[vid])["VolumesModifications"]
    assert mods["TargetSize"] == 3
    assert code_of(lambda: ea.modify_volume(VolumeId=vid, Size=1)) == "InvalidParameterValue"

    # another account: its ids answer like missing ones, and nothing changes
    assert code_of(lambda: eb.describe_volumes(VolumeIds=[vid])) == "InvalidVolume.NotFound"
    assert code_of(lambda: eb.delete_volume(VolumeId=vid)) == "InvalidVolume.NotFound"
    assert code_of(lambda: eb.modify_volume(VolumeId=vid, Size=9)) == "InvalidVolume.NotFound"
    assert code_of(lambda: ea.delete_volume(VolumeId=vid, DryRun=True)) == "DryRunOperation"
    assert pool_file(server, vid).exists()

    ea.delete_volume(VolumeId=vid)
    assert not pool_file(server, vid).exists() and f"{vid}.qcow2" not in virsh_volumes(server)
    assert code_of(lambda: ea.describe_volumes(VolumeIds=[vid])) == "InvalidVolume.NotFound"


@pytest.mark.parametrize("kwargs, code", [
    ({"AvailabilityZone": "us-east-1z", "Size": 1}, "InvalidParameterValue"),
    ({"AvailabilityZone": "us-east-1a", "Size": 0}, "InvalidParameterValue"),
    ({"AvailabilityZone": "us-east-1a", "Size": 16385}, "InvalidParameterValue"),
    ({"AvailabilityZone": "us-east-1a", "Size": 1, "VolumeType": "io2", "Iops": 3000}, "InvalidParameterValue"),
    ({"AvailabilityZone": "us-east-1a", "Size": 1, "Encrypted": True}, "UnsupportedOperation"),
    ({"AvailabilityZone": "us-east-1a", "Size": 1, "SnapshotId": "snap-nope"}, "InvalidSnapshotID.Malformed"),
    ({"AvailabilityZone": "us-east-1a", "Size": 16384}, "VolumeLimitExceeded"),
    ({"AvailabilityZone": "us-east-1a", "Size": "FREE+1"}, "InsufficientVolumeCapacity"),
    ({"AvailabilityZone": "us-east-1a", "Size": 1, "DryRun": True}, "DryRunOperation"),
])
def test_bad_create_requests_answer_the_aws_code_and_leave_nothing(server, pair, kwargs, code):
    (_, ea), _ = pair
    if kwargs.get("Size") == "FREE+1":  # more than the host has free, within the account's quota
        kwargs = {**kwargs, "Size": shutil.disk_usage(server.home).free // GIB + 1}
        assert kwargs["Size"] <= Config().max_volume_gib, "this host has too much free space for this test"
    before = sorted(p.name for p in (vm_area(server.home) / "volumes").glob("*")) if (vm_area(server.home) / "volumes").exists() else []
    assert code_of(lambda: ea.create_volume(**kwargs)) == code
    assert [v for v in ea.describe_volumes()["Volumes"]] == []
    after = sorted(p.name for p in (vm_area(server.home) / "volumes").glob("*")) if (vm_area(server.home) / "volumes").exists() else []
    assert after == before


def test_rest_and_cli_share_the_volumes_boto3_sees(server, pair, tmp_path):
    (a, ea), (b, _) = pair
    v = a.ok("POST", "/volumes", 201, json={"size": 1, "tags": {"via": "rest"}})
    assert (v["state"], v["zone"], v["tags"], v["root"]) == ("available", "us-east-1a", {"via": "rest"}, False)
    assert ea.describe_volumes(VolumeIds=[v["id"]])["Volumes"][0]["Tags"] == [{"Key": "via", "Value": "rest"}]
    assert b("GET", f"/volumes/{v['id']}")[0] == 404
    assert a("POST", "/volumes", json={"size": 1, "type": "io1"})[0] == 400
    assert a("POST", "/volumes", json={"size": 1, "colour": "red"})[0] == 400
    status, body = a("PATCH", f"/volumes/{v['id']}", json={"size": 0})
    assert status == 400 and body["error"]["code"] == "InvalidParameterValue"

    cli = Cli(server, a, tmp_path)
    made = cli.json("volumes", "create", "--size", "1", "--zone", "us-east-1c", "--tag", "via=cli")
    assert made["zone"] == "us-east-1c" and made["tags"] == {"via": "cli"}
    grown = cli.json("volumes", "grow", made["id"], "--size", "2")
    assert grown["size_gib"] == 2 and grown["modification"]["state"] == "completed"
    assert {x["id"] for x in cli.json("volumes", "ls")["volumes"]} == {v["id"], made["id"]}
    assert "InvalidVolume.NotFound" in cli("volumes", "rm", "vol-0123456789abcdef0", rc=1).stderr
    snap = cli.json("volumes", "snapshot", made["id"], "--description", "via cli")
    assert (snap["state"], snap["volume_id"], snap["volume_size_gib"]) == ("completed", made["id"], 2)
    copy = cli.json("volumes", "create", "--snapshot", snap["id"])
    assert (copy["size_gib"], copy["snapshot_id"]) == (2, snap["id"])
    assert [s["id"] for s in cli.json("volumes", "snapshots")["snapshots"]] == [snap["id"]]
    cli("volumes", "rm-snapshot", snap["id"])
    cli("volumes", "rm", copy["id"])
    cli("volumes", "rm", made["id"])
    a.ok("DELETE", f"/volumes/{v['id']}", 204)
    assert cli.json("volumes", "ls")["volumes"] == []
