"""Beyond the main stack: the lookup data sources a Terraform config commonly reads, the
default VPC and security group adopted, the legacy `aws_security_group_rule`, `aws_ec2_tag`,
the S3 object data sources (tests/compat/terraform/more), each read back with boto3; then the
resources pocketcloud refuses (tests/compat/terraform/refused), each failing with an error
that names the action and the reason, creating nothing. In an account of its own, so that
adopting the default VPC and group touches no other test's. Times go to
artifacts/compat-terraform-more.json."""
from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import boto3
import pytest
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError

from emulator.config import Config

from .tf import Terraform, terraform_env

pytestmark = pytest.mark.integration

STACKS = Path(__file__).parent / "terraform"
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"

# address -> what its error must say (the code, then why)
REFUSED = {
    "aws_ebs_encryption_by_default.on": ["UnsupportedOperation", "EnableEbsEncryptionByDefault is not supported",
                                         "encryption of volumes"],
    "aws_eip.ip": ["UnsupportedOperation", "AllocateAddress is not available yet", "VPC networking"],
    "aws_iam_role.app": ["NotImplemented", "pocketcloud does not implement IAM (CreateRole)"],
    "aws_instance.ipv6": ["UnsupportedOperation", "Ipv6AddressCount", "IPv4 only"],
    "aws_s3_bucket_website_configuration.site": ["NotImplemented", "(PUT website)"],
    "aws_s3_bucket_logging.logs": ["NotImplemented", "(PUT logging)"],
    "aws_sns_topic.alerts": ["NotImplemented", "does not serve the AWS service sns"],
    "aws_cloudwatch_log_group.app": ["NotImplemented", "does not serve the AWS service logs (CreateLogGroup)"],
}


def errors_by_address(output: str) -> dict[str, str]:
    """terraform's diagnostics, one per resource: `Error: ...` up to its `with ADDRESS,`."""
    found = {}
    for block in output.split("Error: ")[1:]:
        m = re.search(r"^\s+with ([\w.\[\]\"-]+),$", block, re.M)
        if m:
            found[m.group(1)] = " ".join(block[:m.start()].split())
    return found


def test_terraform_data_sources_adoption_and_refusals(terraform_bin, provider_mirror, server, docker_client,
                                                      tmp_path):
    api = server.new_user(f"tfmore{time.monotonic_ns() % 10 ** 9}")
    kw = dict(endpoint_url=server.url, region_name="us-east-1", aws_access_key_id=api.key_id,
              aws_secret_access_key=api.secret, config=BotoConfig(retries={"max_attempts": 1}))
    ec2, s3 = boto3.client("ec2", **kw), boto3.client("s3", **kw)
    prefix = f"tfm{server.port}"
    work, refused = tmp_path / "more", tmp_path / "refused"
    shutil.copytree(STACKS / "more", work)
    shutil.copytree(STACKS / "refused", refused)
    (work / "terraform.tfvars.json").write_text(json.dumps({"prefix": prefix}))
    env = terraform_env(server.cli("env").stdout, work, provider_mirror)
    env.update(AWS_ACCESS_KEY_ID=api.key_id, AWS_SECRET_ACCESS_KEY=api.secret)
    tf = Terraform(terraform_bin, work, env)
    label = Config(home=server.home).instance_label
    [vpc] = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"]
    [default_sg] = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": ["default"]}])[
        "SecurityGroups"]
    try:
        tf.run("init", "-input=false", label="init")
        tf.run("apply", "-auto-approve", "-input=false", label="apply")
        out = tf.outputs()["all"]

        # what Terraform read and adopted is what the account has
        assert out["partition"] == "aws" and out["vpcs"] == [vpc["VpcId"]] == [out["default_vpc"]]
        assert out["default_sg"] == default_sg["GroupId"]
        [zone] = ec2.describe_availability_zones(ZoneNames=["us-east-1a"])["AvailabilityZones"]
        assert out["zone_id"] == zone["ZoneId"]
        [subnet] = ec2.describe_subnets(Filters=[{"Name": "availability-zone", "Values": ["us-east-1a"]}])["Subnets"]
        assert out["subnet"] == subnet["SubnetId"]
        assert {"Key": f"{prefix}-used-by", "Value": "compat"} in subnet["Tags"]  # aws_ec2_tag
        tiny = ec2.describe_images(Owners=["pocketcloud"], Filters=[{"Name": "name", "Values": ["tiny-*"]}])["Images"]
        assert sorted(out["amis"]) == sorted(i["ImageId"] for i in tiny) and len(tiny) == 2
        assert (out["nano_memory"], out["nano_vcpus"]) == (512, 1)
        t2 = ec2.describe_instance_types(Filters=[{"Name": "instance-type", "Values": ["t2.*"]}])["InstanceTypes"]
        assert sorted(out["t2_types"]) == sorted(t["InstanceType"] for t in t2)
        assert "t2.nano" in out["t2_types"] and all(n.startswith("t2.") for n in out["t2_types"])
        small = ec2.describe_instance_types(Filters=[{"Name": "memory-info.size-in-mib", "Values": ["512"]},
                                                     {"Name": "vcpu-info.default-vcpus", "Values": ["1"]}])
        assert "t2.nano" in [t["InstanceType"] for t in small["InstanceTypes"]]
        assert all(t["MemoryInfo"]["SizeInMiB"] == 512 for t in small["InstanceTypes"])
        assert out["key_read_id"] == out["key_id"]
        assert out["app_sg_read"] == f"{prefix}-app"
        assert sorted(out["vpc_sgs"]) == sorted([out["default_sg"], out["app_sg"]])
        rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [out["app_sg"]]}])[
            "SecurityGroupRules"]
        assert sorted(out["app_rules"]) == sorted(r["SecurityGroupRuleId"] for r in rules)
        assert sorted((r["IsEgress"], r["FromPort"], r["CidrIpv4"]) for r in rules) == [
            (False, 8080, "10.0.0.0/8"), (True, 443, "0.0.0.0/0")]  # the default egress rule was revoked
        assert out["tagged"] == [out["instance"]]
        assert out["root_volume"] == out["root_of"] and out["root_volume"].startswith("vol-")
        assert out["eni_ip"] == out["instance_ip"]
        container = docker_client.containers.get(f"pc-{out['instance']}")
        assert container.labels.get("pocketcloud.cloud") == label and container.status == "running"
        assert out["note_body"] == "read back by a data source" and out["note_keys"] == ["notes/first.txt"]

        tf.run("plan", "-detailed-exitcode", "-input=false", label="plan")  # exit 0: no drift

        # what pocketcloud refuses says so, and creates nothing
        ami = [i["ImageId"] for i in tiny if i["Name"] == "tiny-container"][0]
        (refused / "terraform.tfvars.json").write_text(json.dumps({"bucket": f"{prefix}-notes", "ami": ami}))
        tf_refused = Terraform(terraform_bin, refused, {**env, "TF_DATA_DIR": str(refused / ".terraform")})
        tf_refused.run("init", "-input=false")
        failed = tf_refused.run("apply", "-auto-approve", "-input=false", ok=(1,), label="apply_refused")
        found = errors_by_address(failed.stdout + failed.stderr)
        assert set(found) == set(REFUSED), found
        for address, words in REFUSED.items():
            assert all(w in found[address] for w in words), (address, found[address])
            assert "UnknownError" not in found[address]
        assert tf_refused.run("state", "list").stdout.strip() == ""
        instances = [i["InstanceId"] for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]]
        assert instances == [out["instance"]]
        assert [v["VolumeId"] for v in ec2.describe_volumes()["Volumes"]] == [out["root_volume"]]
    finally:
        destroyed = tf.run("destroy", "-auto-approve", "-input=false", label="destroy", ok=(0, 1))
        times = {"stack": "tests/compat/terraform/more", **tf.times}
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / "compat-terraform-more.json").write_text(json.dumps(times, indent=1))
        print("terraform more times (s):", json.dumps(times))

    assert destroyed.returncode == 0, destroyed.stdout[-4000:] + destroyed.stderr[-4000:]
    assert ec2.describe_instances(InstanceIds=[out["instance"]])["Reservations"][0]["Instances"][0]["State"][
        "Name"] == "terminated"
    assert not docker_client.containers.list(all=True, filters={"name": f"pc-{out['instance']}"})
    names = {g["GroupName"] for g in ec2.describe_security_groups()["SecurityGroups"]}
    assert names == {"default"}  # the adopted default group stays, as on AWS
    assert ec2.describe_vpcs()["Vpcs"][0]["VpcId"] == vpc["VpcId"]
    assert ec2.describe_key_pairs()["KeyPairs"] == []
    [subnet] = ec2.describe_subnets(SubnetIds=[out["subnet"]])["Subnets"]
    assert not any(t["Key"] == f"{prefix}-used-by" for t in subnet.get("Tags", []))
    with pytest.raises(ClientError):
        s3.head_bucket(Bucket=f"{prefix}-notes")
