"""Helpers for the launch-template and Auto Scaling tests: boto3 clients for an account, a
template from the tiny image, waiting for a group to settle. (The aws CLI helper is test_ec2's.)"""
from __future__ import annotations

import base64
import time

import boto3
from botocore.config import Config as BotoConfig

def client(server, api, service: str):
    return boto3.client(service, endpoint_url=server.url, region_name="us-east-1",
                        aws_access_key_id=api.key_id, aws_secret_access_key=api.secret,
                        config=BotoConfig(retries={"max_attempts": 1}))


def ami(ec2, kind: str = "container") -> str:
    return ec2.describe_images(Filters=[{"Name": "name", "Values": [f"tiny-{kind}"]}])["Images"][0]["ImageId"]


def template(ec2, name: str, kind: str = "container", user_data: str | None = None, **data) -> str:
    launch = {"ImageId": ami(ec2, kind), "InstanceType": "t2.nano", **data}
    if user_data:
        launch["UserData"] = base64.b64encode(user_data.encode()).decode()
    return ec2.create_launch_template(LaunchTemplateName=name, LaunchTemplateData=launch)["LaunchTemplate"][
        "LaunchTemplateId"]


def group(asg, name: str, template_id: str, desired: int = 2, zones=("a", "b", "c"), **extra) -> None:
    spec = {"AutoScalingGroupName": name, "LaunchTemplate": {"LaunchTemplateId": template_id, "Version": "$Latest"},
            "MinSize": 0, "MaxSize": 6, "DesiredCapacity": desired,
            "AvailabilityZones": [f"us-east-1{z}" for z in zones]}
    spec.update(extra)
    asg.create_auto_scaling_group(**spec)


def describe(asg, name: str) -> dict:
    groups = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"]
    assert len(groups) == 1, groups
    return groups[0]


def in_service(asg, name: str) -> list[dict]:
    return [i for i in describe(asg, name)["Instances"]
            if i["LifecycleState"] == "InService" and i["HealthStatus"] == "Healthy"]


def wait(what: str, check, timeout: float = 60, every: float = 0.25):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"{what}: not within {timeout}s (last: {last!r})")


def settled(asg, name: str, count: int, timeout: float = 60) -> list[str]:
    """Wait until exactly `count` members are in service and nothing else is in the group."""
    def check():
        members = describe(asg, name)["Instances"]
        ok = [i["InstanceId"] for i in members if i["LifecycleState"] == "InService" and i["HealthStatus"] == "Healthy"]
        return ok if len(ok) == count == len(members) else None

    return wait(f"{name} settled at {count}", check, timeout)


def containers_of(docker_client, instance_ids) -> list:
    out = []
    for iid in instance_ids:
        out += docker_client.containers.list(all=True, filters={"label": f"pocketcloud.instance={iid}"})
    return out


def activities(asg, name: str) -> list[dict]:
    return asg.describe_scaling_activities(AutoScalingGroupName=name)["Activities"]


def delete_group(asg, name: str, timeout: float = 120) -> None:
    """ForceDelete and wait until the group is gone (its instances terminated)."""
    asg.delete_auto_scaling_group(AutoScalingGroupName=name, ForceDelete=True)
    wait(f"{name} deleted", lambda: not asg.describe_auto_scaling_groups(
        AutoScalingGroupNames=[name])["AutoScalingGroups"], timeout)
