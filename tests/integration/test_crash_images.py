"""Kill -9 in the middle of CreateImage (issue 15): a server started with POCKETCLOUD_FAULT
dies after recording the pending image, after `docker commit` made the snapshot image (its
record still pending), or after the snapshot completed (the image still pending). Started
again, it rolls the image back: no pending image forever, no snapshot, no Docker image or
image folder left; the instance runs on and can be imaged again."""
from __future__ import annotations

import boto3
import botocore.config
import pytest

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
