"""Terraform's aws_launch_template + aws_autoscaling_group, with the official hashicorp/aws
provider unmodified, against a real `pocketcloud serve` over dockerd: apply, plan (no drift),
scale, a new template version rolled out by an instance refresh, destroy leaving nothing.
Times go to artifacts/compat-terraform-asg.json."""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import boto3
import pytest
from botocore.config import Config as BotoConfig

from emulator.accounts import read_credentials

from .tf import Terraform, terraform_env

pytestmark = pytest.mark.integration

STACK = Path(__file__).parent / "terraform" / "asg"
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"


def clients(server):
    creds = read_credentials(server.home / "credentials")
    kw = dict(endpoint_url=server.url, region_name="us-east-1", aws_access_key_id=creds.key_id,
              aws_secret_access_key=creds.secret, config=BotoConfig(retries={"max_attempts": 1}))
    return boto3.client("ec2", **kw), boto3.client("autoscaling", **kw)


def in_service(asg, name: str) -> list[dict]:
    g = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0]
    return [i for i in g["Instances"] if i["LifecycleState"] == "InService" and i["HealthStatus"] == "Healthy"]


def test_terraform_launch_template_and_autoscaling_group(terraform_bin, provider_mirror, server, docker_client,
                                                         tmp_path):
    ec2, asg = clients(server)
    work = tmp_path / "asg"
    shutil.copytree(STACK, work)
    prefix = f"asg{server.port}"
    ami = ec2.describe_images(Filters=[{"Name": "name", "Values": ["tiny-container"]}])["Images"][0]["ImageId"]
    (work / "terraform.tfvars.json").write_text(json.dumps({"prefix": prefix, "ami": ami}))
    tf = Terraform(terraform_bin, work, terraform_env(server.cli("env").stdout, work, provider_mirror))
    name = f"{prefix}-web"
    tf.run("init", "-input=false", label="init")
    try:
        tf.run("apply", "-auto-approve", "-input=false", label="apply")
        assert len(in_service(asg, name)) == 2  # apply waits for capacity, as on AWS
        out = tf.outputs()
        assert out["group"] == name and out["template_version"] == 1
        ids = [i["InstanceId"] for i in in_service(asg, name)]
        tags = {t["Key"]: t["Value"] for r in ec2.describe_instances(InstanceIds=ids)["Reservations"]
                for i in r["Instances"] for t in i.get("Tags", [])}
        assert tags.get("team") == prefix and tags.get("stack") == prefix
        tf.run("plan", "-detailed-exitcode", "-input=false", label="plan (no changes)")

        tf.run("apply", "-auto-approve", "-input=false", "-var", "desired=3", label="apply (scale to 3)")
        assert len(in_service(asg, name)) == 3
        tf.run("plan", "-detailed-exitcode", "-input=false", "-var", "desired=3")

        old = {i["InstanceId"] for i in in_service(asg, name)}
        tf.run("apply", "-auto-approve", "-input=false", "-var", "desired=3", "-var", "instance_type=t2.micro",
               label="apply (new template version, instance refresh)")
        refresh = asg.describe_instance_refreshes(AutoScalingGroupName=name)["InstanceRefreshes"][0]
        deadline = time.monotonic() + 180
        while refresh["Status"] in ("Pending", "InProgress") and time.monotonic() < deadline:
            time.sleep(1)
            refresh = asg.describe_instance_refreshes(AutoScalingGroupName=name)["InstanceRefreshes"][0]
        assert refresh["Status"] == "Successful", refresh
        now = in_service(asg, name)
        assert len(now) == 3 and not old & {i["InstanceId"] for i in now}
        assert {(i["InstanceType"], i["LaunchTemplate"]["Version"]) for i in now} == {("t2.micro", "2")}
        tf.run("plan", "-detailed-exitcode", "-input=false", "-var", "desired=3", "-var", "instance_type=t2.micro",
               label="plan after the refresh")
    finally:
        tf.run("destroy", "-auto-approve", "-input=false", "-var", "desired=3", "-var", "instance_type=t2.micro",
               label="destroy")
    assert asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"] == []
    assert ec2.describe_launch_templates(Filters=[{"Name": "launch-template-name", "Values": [name]}])[
        "LaunchTemplates"] == []
    made = [i["InstanceId"] for r in ec2.describe_instances(Filters=[{"Name": "tag:team", "Values": [prefix]}])[
        "Reservations"] for i in r["Instances"]]
    assert made and {i["State"]["Name"] for r in ec2.describe_instances(InstanceIds=made)["Reservations"]
                     for i in r["Instances"]} == {"terminated"}
    for iid in made:  # nothing left on dockerd
        assert docker_client.containers.list(all=True, filters={"label": f"pocketcloud.instance={iid}"}) == []
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "compat-terraform-asg.json").write_text(json.dumps(tf.times, indent=2))
