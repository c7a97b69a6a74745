"""Terraform with the official hashicorp/aws provider, unmodified and without skip flags,
against a real `pocketcloud serve` over real engines: init, apply, plan (no drift), an
in-place change of instance type, user data and tags (stop, modify, start), import, and
destroy leaving nothing on dockerd, libvirt or the S3 engine. Times go to
artifacts/compat-terraform.json."""
from __future__ import annotations

import base64
import json
import shutil
import time
from pathlib import Path

import boto3
import libvirt
import pytest
import requests
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError

from emulator.accounts import read_credentials
from emulator.compute.sshkeys import generate_keypair
from emulator.config import Config

from .tf import Terraform, terraform_env

pytestmark = pytest.mark.integration

STACK = Path(__file__).parent / "terraform" / "ec2_s3"
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"


def clients(server):
    creds = read_credentials(server.home / "credentials")
    kw = dict(endpoint_url=server.url, region_name="us-east-1", aws_access_key_id=creds.key_id,
              aws_secret_access_key=creds.secret, config=BotoConfig(retries={"max_attempts": 1}))
    return boto3.client("ec2", **kw), boto3.client("s3", **kw), boto3.client("sts", **kw)


def planned_changes(tf: Terraform, *vars_: str) -> dict[str, list[str]]:
    """address -> actions for every resource the plan would touch."""
    tf.run("plan", "-input=false", "-out=check.plan", *vars_, ok=(0, 2))
    shown = json.loads(tf.run("show", "-json", "check.plan").stdout)
    return {c["address"]: c["change"]["actions"] for c in shown.get("resource_changes", [])
            if c["change"]["actions"] != ["no-op"] and c["mode"] == "managed"}


def web_page(ec2, instance_id: str, timeout: float = 30) -> str:
    inst = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
    port = {t["Key"]: t["Value"] for t in inst["Tags"]}["aws:pocketcloud:forward:80"].split(":")[1]
    deadline = time.monotonic() + timeout
    while True:
        try:
            return requests.get(f"http://127.0.0.1:{port}/", timeout=3).text.strip()
        except requests.RequestException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def rules(ec2, group_id: str) -> dict:
    g = ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]

    def flat(perms):
        return sorted((p["IpProtocol"], p.get("FromPort"), p.get("ToPort"), r["CidrIp"])
                      for p in perms for r in p["IpRanges"])

    return {"in": flat(g["IpPermissions"]), "out": flat(g["IpPermissionsEgress"])}


def test_terraform_stack_lifecycle(terraform_bin, provider_mirror, server, docker_client, tmp_path):
    work = tmp_path / "stack"
    shutil.copytree(STACK, work)
    prefix = f"tf{server.port}"
    _, public_key = generate_keypair(comment="compat")
    tfvars = {"prefix": prefix, "public_key": public_key}
    (work / "terraform.tfvars.json").write_text(json.dumps(tfvars))
    env = server.cli("env").stdout
    assert "AWS_ENDPOINT_URL=" in env and "AWS_DEFAULT_REGION=" in env
    tf = Terraform(terraform_bin, work, terraform_env(env, work, provider_mirror))
    ec2, s3, sts = clients(server)
    label = Config(home=server.home).instance_label
    virt = libvirt.open("qemu:///system")
    try:
        tf.run("init", "-input=false", label="init")
        tf.run("apply", "-auto-approve", "-input=false", label="apply")
        out = tf.outputs()

        # data sources: who, where, which image
        me = sts.get_caller_identity()
        assert out["account_id"] == me["Account"] and out["caller_arn"] == me["Arn"]
        assert out["caller_arn"].endswith(":user/admin")
        assert out["region"] == "us-east-1" and out["zones"] == ["us-east-1a", "us-east-1b", "us-east-1c"]
        assert out["vpc_cidr"].startswith("10.") and out["vpc_cidr"].endswith("/16")
        assert len(out["subnet_ids"]) == 3 and out["web_subnet"] == out["subnet_ids"][0]
        assert out["bucket_region"] == "us-east-1"
        assert out["web_state"] == "running"  # the aws_instance data source

        # the instances are real, placed where the config said, with their root volumes read back
        web, vm = out["web_id"], out["vm_id"]
        container = docker_client.containers.get(f"pc-{web}")
        assert container.labels.get("pocketcloud.cloud") == label and container.status == "running"
        assert container.attrs["HostConfig"]["Memory"] == 512 * 1024 ** 2  # t2.nano, enforced
        dom = virt.lookupByName(f"pc-{vm}")
        assert dom.isActive() and dom.info()[3] == 1
        assert out["vm_zone"] == "us-east-1b"
        [root] = out["web_root"]
        assert root["device_name"] == "/" and root["volume_id"].startswith("vol-") and root["delete_on_termination"]
        assert out["vm_root"][0]["device_name"] == "/dev/vda" and out["vm_root"][0]["volume_type"] == "gp3"
        vol = ec2.describe_volumes(VolumeIds=[root["volume_id"]])["Volumes"][0]
        assert vol["Attachments"][0]["InstanceId"] == web and vol["State"] == "in-use"

        # security groups: inline rules, and the separate rule resources on a group whose
        # default egress rule the provider revoked
        assert rules(ec2, out["web_sg"]) == {"in": [("tcp", 80, 80, "0.0.0.0/0")], "out": [("-1", None, None, "0.0.0.0/0")]}
        assert rules(ec2, out["ssh_sg"]) == {"in": [("tcp", 22, 22, "10.0.0.0/8")], "out": [("tcp", 443, 443, "0.0.0.0/0")]}
        [sgr] = ec2.describe_security_group_rules(SecurityGroupRuleIds=[out["ssh_rule_id"]])["SecurityGroupRules"]
        assert sgr["Tags"] == [{"Key": "Name", "Value": "ssh-in"}] and not sgr["IsEgress"]
        assert web_page(ec2, web) == "v1"  # user data ran, and the group's port 80 rule is the way in

        # objects, from content and from a file
        assert s3.get_object(Bucket=f"{prefix}-data", Key="hello.txt")["Body"].read() == b"hello from terraform"
        assert s3.get_object(Bucket=f"{prefix}-data", Key="files/main.tf")["Body"].read() == \
            (STACK / "main.tf").read_bytes()

        tf.run("plan", "-detailed-exitcode", "-input=false", label="plan")  # exit 0: no drift

        # in place: type and user data (stop, modify, start), tags (no restart)
        tfvars.update(instance_type="t2.micro", vm_instance_type="t3.micro", page="v2", env="two")
        (work / "terraform.tfvars.json").write_text(json.dumps(tfvars))
        assert planned_changes(tf) == {"aws_instance.web": ["update"], "aws_instance.vm": ["update"]}
        tf.run("apply", "-auto-approve", "-input=false", label="apply_change")
        out = tf.outputs()
        assert (out["web_id"], out["vm_id"]) == (web, vm), "changed in place, not replaced"
        container.reload()
        assert container.attrs["HostConfig"]["Memory"] == 1024 ** 3 and container.status == "running"
        assert dom.isActive() and dom.info()[3] == 2 and dom.maxMemory() == 1024 * 1024  # t3.micro
        inst = ec2.describe_instances(InstanceIds=[web])["Reservations"][0]["Instances"][0]
        assert inst["InstanceType"] == "t2.micro" and {"Key": "env", "Value": "two"} in inst["Tags"]
        ud = ec2.describe_instance_attribute(InstanceId=web, Attribute="userData")["UserData"]["Value"]
        assert "echo v2 >" in base64.b64decode(ud).decode()
        assert web_page(ec2, web) == "v1"  # user data runs once per instance, as on AWS
        tf.run("plan", "-detailed-exitcode", "-input=false", label="plan_after_change")

        # import: instance, key pair, security group, bucket
        imported = {"aws_instance.web": web, "aws_key_pair.lab": f"{prefix}-key",
                    "aws_security_group.web": out["web_sg"], "aws_s3_bucket.data": f"{prefix}-data"}
        for address, rid in imported.items():
            tf.run("state", "rm", address)
            tf.run("import", "-input=false", address, rid, label=f"import {address}")
        # What AWS cannot give back either: a key pair's public key (so the provider replaces
        # it) and force_destroy (a Terraform-only setting). Nothing else differs.
        assert planned_changes(tf) == {"aws_key_pair.lab": ["delete", "create"], "aws_s3_bucket.data": ["update"]}
        tf.run("apply", "-auto-approve", "-input=false")
        tf.run("plan", "-detailed-exitcode", "-input=false")
    finally:
        destroyed = tf.run("destroy", "-auto-approve", "-input=false", label="destroy", ok=(0, 1))
        times = {"stack": "tests/compat/terraform/ec2_s3", **tf.times}
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / "compat-terraform.json").write_text(json.dumps(times, indent=1))
        print("terraform times (s):", json.dumps(times))

    # nothing of the stack remains on the engines or in the cloud
    assert destroyed.returncode == 0, destroyed.stdout[-4000:] + destroyed.stderr[-4000:]
    assert not docker_client.containers.list(all=True, filters={"label": f"pocketcloud.cloud={label}",
                                                                   "name": f"pc-{web}"})
    with pytest.raises(libvirt.libvirtError):
        virt.lookupByName(f"pc-{vm}")
    with pytest.raises(ClientError) as e:
        s3.head_bucket(Bucket=f"{prefix}-data")
    assert e.value.response["Error"]["Code"] in ("404", "NoSuchBucket")
    assert not (server.home / "storage" / "data" / f"{prefix}-data").exists()
    names = {g["GroupName"] for g in ec2.describe_security_groups()["SecurityGroups"]}
    assert not {f"{prefix}-web", f"{prefix}-ssh"} & names
    assert f"{prefix}-key" not in {k["KeyName"] for k in ec2.describe_key_pairs()["KeyPairs"]}
    states = {i["InstanceId"]: i["State"]["Name"] for r in ec2.describe_instances(InstanceIds=[web, vm])["Reservations"]
              for i in r["Instances"]}
    assert states == {web: "terminated", vm: "terminated"}
    virt.close()
