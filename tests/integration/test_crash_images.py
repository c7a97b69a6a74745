"""Kill -9 in the middle of CreateImage (issue 15): a server started with POCKETCLOUD_FAULT
dies after recording the pending image, after `docker commit` made the snapshot image (its
record still pending), or after the snapshot completed (the image still pending). Started
again, it rolls the image back: no pending image forever, no snapshot, no Docker image or
image folder left; the instance runs on and can be imaged again. And in the middle of making
a container image's VM form (its disk written, not yet in place): started again, nothing
half-made is left, and the next launch as a VM makes it again."""
from __future__ import annotations

import boto3
import botocore.config
import docker
import pytest
import requests

from emulator.config import Config

from tests.conftest import start_server, stop_and_check_leaks

from .cloud import vm_area
from .test_amis import snapshot_images
from .test_crash_storage import die_during  # started again without the hook, reconciled before it answers

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def srv(tmp_path_factory, docker_client):
    srv = start_server(tmp_path_factory.mktemp("crash-images") / "home")
    yield srv
    srv.env.pop("POCKETCLOUD_FAULT", None)
    if srv.proc.poll() is not None:
        srv.start()
    stop_and_check_leaks(srv, docker_client)


def ec2_of(srv, api):
    return boto3.client("ec2", endpoint_url=srv.url, region_name="us-east-1", aws_access_key_id=api.key_id,
                        aws_secret_access_key=api.secret,
                        config=botocore.config.Config(retries={"max_attempts": 1}, read_timeout=120))


POINTS = ["image:after-record", "root-snapshot:after-engine", "image:after-snapshot"]


@pytest.mark.parametrize("point", POINTS)
def test_kill_9_during_create_image_leaves_nothing_pending(srv, point):
    user = srv.new_user(f"ci{POINTS.index(point)}-{srv.port}")
    inst = user.ok("POST", "/instances", 201, json={"kind": "container", "image": "tiny"})
    try:
        die_during(srv, point, lambda: ec2_of(srv, user).create_image(InstanceId=inst["id"], Name="half made",
                                                                      NoReboot=True))

        ec2 = ec2_of(srv, user)
        assert ec2.describe_images(Owners=["self"])["Images"] == []
        assert ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"] == []
        assert snapshot_images(srv) == []
        assert not list((vm_area(srv.home) / "amis").glob("ami-*"))
        assert user.ok("GET", f"/instances/{inst['id']}")["state"] == "running"
        again = ec2.create_image(InstanceId=inst["id"], Name="half made", NoReboot=True)["ImageId"]
        [img] = ec2.describe_images(ImageIds=[again])["Images"]
        assert img["State"] == "available"
        ec2.deregister_image(ImageId=again)
        ec2.delete_snapshot(SnapshotId=img["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"])
    finally:
        user("DELETE", f"/instances/{inst['id']}")


def test_kill_9_while_an_image_is_made_a_vm_leaves_nothing_half_made(srv):
    user = srv.new_user(f"cx-{srv.port}")
    inst = user.ok("POST", "/instances", 201, json={"kind": "container", "image": "tiny"})
    ec2 = ec2_of(srv, user)
    area = vm_area(srv.home) / "amis"

    def in_area() -> list[str]:
        return sorted(p.name for p in area.iterdir()) if area.is_dir() else []

    def exports() -> list:
        client = docker.from_env()
        try:
            return client.containers.list(all=True, filters={
                "label": f"pocketcloud.export={Config(home=srv.home).instance_label}"})
        finally:
            client.close()

    # A launch as a VM that is refused after the image was resolved (io1 is not offered) makes
    # the VM form and boots nothing: what this test needs of a launch.
    as_vm = {"kind": "vm", "type": "t2.nano", "block_devices": [{"device": "/dev/vda", "volume_type": "io1"}]}
    try:
        user.ok("POST", f"/instances/{inst['id']}/exec", json={"command": "echo kept > /root/marker"})
        aid = ec2.create_image(InstanceId=inst["id"], Name="to be a vm", NoReboot=True)["ImageId"]
        die_during(srv, "image:after-convert", lambda: user("POST", "/instances", json={**as_vm, "image": aid}),
                   errors=(requests.exceptions.ConnectionError,))
        assert in_area() == [] and exports() == [], "no scratch, no half-made VM form, no export container"
        status, body = user("POST", "/instances", json={**as_vm, "image": aid})
        assert status == 400 and "io1" in str(body), body
        assert in_area() == [aid], "the next launch made it again"
        assert '"disk": "disk.qcow2"' in (area / aid / "vm.json").read_text()
        other = srv.new_user(f"cy-{srv.port}")
        assert other("POST", "/instances", json={**as_vm, "image": aid})[0] == 404
        ec2.deregister_image(ImageId=aid)
        assert in_area() == [], "the VM form goes with its image"
        for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]:
            ec2.delete_snapshot(SnapshotId=s["SnapshotId"])
    finally:
        user("DELETE", f"/instances/{inst['id']}")
