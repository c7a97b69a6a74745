"""Terraform's block storage resources against a real server: aws_ebs_volume (with and
without a snapshot), aws_ebs_snapshot and aws_volume_attachment on a container instance,
aws_instance with ebs_block_device and root_block_device;
apply, a re-plan without drift, a volume grown in place, destroy leaving no volume, snapshot,
mount or container. Times go to artifacts/compat-terraform-volumes.json."""
from __future__ import annotations

import json
import time
from pathlib import Path

import boto3
import pytest
from botocore.config import Config as BotoConfig

from .test_terraform import planned_changes
from .tf import stack_for

pytestmark = pytest.mark.integration

STACK = Path(__file__).parent / "terraform" / "volumes"
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"


def test_terraform_volumes_snapshots_and_attachments(terraform_bin, provider_mirror, server, tmp_path):
    api = server.new_user(f"tfvol{time.monotonic_ns() % 10 ** 9}")
    ec2 = boto3.client("ec2", endpoint_url=server.url, region_name="us-east-1", aws_access_key_id=api.key_id,
                       aws_secret_access_key=api.secret, config=BotoConfig(retries={"max_attempts": 1}))
    tf = stack_for(server, api, terraform_bin, provider_mirror, STACK, tmp_path / "volumes",
                   {"prefix": f"tfv{server.port}"})
    try:
        tf.run("init", "-input=false", label="init")
        tf.run("apply", "-auto-approve", "-input=false", label="apply")
        out = tf.outputs()["all"]
        vols = {v["VolumeId"]: v for v in ec2.describe_volumes(VolumeIds=[out["data"], out["restored"]])["Volumes"]}
        assert {v["State"] for v in vols.values()} == {"in-use"}
        assert {v["Attachments"][0]["Device"] for v in vols.values()} == {"/dev/sdf", "/dev/sdg"}
        assert vols[out["restored"]]["SnapshotId"] == out["snapshot"] and out["size"] == 1
        [snap] = ec2.describe_snapshots(SnapshotIds=[out["snapshot"]])["Snapshots"]
        assert snap["State"] == "completed" and snap["VolumeId"] == out["data"]
        at_launch = {v["Attachments"][0]["Device"]: v for v in ec2.describe_volumes(
            VolumeIds=list(out["at_launch"].values()))["Volumes"]}
        assert {d: (v["Size"], v["Throughput"], v["State"], v["Attachments"][0]["InstanceId"],
                    v["Attachments"][0]["DeleteOnTermination"]) for d, v in at_launch.items()} == {
            "/dev/sdh": (2, 125, "in-use", out["disks"], True), "/dev/xvdi": (1, 200, "in-use", out["disks"], True)}
        assert {"Key": "Name", "Value": f"tfv{server.port}-at-launch"} in at_launch["/dev/xvdi"].get("Tags", [])
        assert planned_changes(tf) == {}, "no drift after apply"

        # growing is an in-place update (ModifyVolume); applying it to a volume attached to a
        # container is refused by pocketcloud (a VM's grows live): the plan is what is checked
        changes = planned_changes(tf, "-var", "data_size=2")
        assert changes == {"aws_ebs_volume.data": ["update"]}, changes
    finally:
        tf.run("destroy", "-auto-approve", "-input=false", label="destroy")
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / "compat-terraform-volumes.json").write_text(json.dumps(tf.times, indent=2))
    assert ec2.describe_volumes(Filters=[{"Name": "tag-key", "Values": ["Name"]}])["Volumes"] == []
    assert [v for v in ec2.describe_volumes()["Volumes"] if v["Attachments"] == []] == []
    assert ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"] == []
