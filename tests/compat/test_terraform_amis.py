"""Terraform's aws_ami_from_instance against a real server: an image of a running container
instance (snapshot_without_reboot), an instance launched from it; apply, a re-plan without
drift, destroy leaving no image, snapshot, snapshot image or container. Times go to
artifacts/compat-terraform-amis.json."""
from __future__ import annotations

import json
import time
from pathlib import Path

import boto3
import pytest
from botocore.config import Config as BotoConfig

from tests.integration.test_amis import snapshot_images

from .test_terraform import planned_changes
from .tf import stack_for

pytestmark = pytest.mark.integration

STACK = Path(__file__).parent / "terraform" / "amis"
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"


def test_terraform_ami_from_instance(terraform_bin, provider_mirror, server, tmp_path):
    api = server.new_user(f"tfami{time.monotonic_ns() % 10 ** 9}")
    ec2 = boto3.client("ec2", endpoint_url=server.url, region_name="us-east-1", aws_access_key_id=api.key_id,
                       aws_secret_access_key=api.secret, config=BotoConfig(retries={"max_attempts": 1}))
    tf = stack_for(server, api, terraform_bin, provider_mirror, STACK, tmp_path / "amis",
                   {"prefix": f"tfa{server.port}"})
    try:
        tf.run("init", "-input=false", label="init")
        tf.run("apply", "-auto-approve", "-input=false", label="apply")
        out = tf.outputs()["all"]
        [img] = ec2.describe_images(Owners=["self"])["Images"]
        assert (img["ImageId"], img["State"], img["Name"]) == (out["image"], "available", f"tfa{server.port} image (v1)")
        assert img["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"] == out["snapshot"]
        assert {t["Key"]: t["Value"] for t in img["Tags"]} == {"Name": f"tfa{server.port}-image"}
        [clone] = ec2.describe_instances(InstanceIds=[out["clone"]])["Reservations"][0]["Instances"]
        assert clone["ImageId"] == out["image"] and clone["State"]["Name"] == "running"
        assert planned_changes(tf) == {}, "no drift after apply"
    finally:
        tf.run("destroy", "-auto-approve", "-input=false", label="destroy")
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / "compat-terraform-amis.json").write_text(json.dumps(tf.times, indent=2))
    assert ec2.describe_images(Owners=["self"])["Images"] == []
    assert ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"] == []
    assert snapshot_images(server) == []
