"""boto3 and the aws CLI beyond the basics, unmodified, against a real server and real
containers: the resource API, a paginator on every Describe call pocketcloud serves,
`aws ec2 wait` for every state it can reach, and --dry-run."""
from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError

pytestmark = pytest.mark.integration

AWS = str(Path(sys.executable).with_name("aws"))


@pytest.fixture
def account(server):
    api = server.new_user(f"tools{time.monotonic_ns() % 10 ** 9}")
    kw = dict(endpoint_url=server.url, region_name="us-east-1", aws_access_key_id=api.key_id,
              aws_secret_access_key=api.secret)
    ec2 = boto3.client("ec2", config=BotoConfig(retries={"max_attempts": 1}), **kw)
    yield api, ec2, boto3.resource("ec2", **kw)
    ids = [i["InstanceId"] for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]
           if i["State"]["Name"] != "terminated"]
    if ids:
        ec2.terminate_instances(InstanceIds=ids)


def aws(server, api, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "AWS_ACCESS_KEY_ID": api.key_id, "AWS_SECRET_ACCESS_KEY": api.secret,
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": server.url, "AWS_CONFIG_FILE": "/dev/null",
           "AWS_SHARED_CREDENTIALS_FILE": "/dev/null", "AWS_PAGER": ""}
    return subprocess.run([AWS, *args], env=env, capture_output=True, text=True, timeout=300)


def ami(ec2, kind: str = "container") -> str:
    return ec2.describe_images(Owners=["pocketcloud"], Filters=[{"Name": "name", "Values": [f"tiny-{kind}"]}])[
        "Images"][0]["ImageId"]


def test_resource_api(account):
    _, ec2, res = account
    [inst] = res.create_instances(ImageId=ami(ec2), MinCount=1, MaxCount=1, InstanceType="t2.nano",
                                  TagSpecifications=[{"ResourceType": "instance",
                                                      "Tags": [{"Key": "Name", "Value": "resource-api"}]}])
    inst.wait_until_running()
    inst.reload()
    assert inst.state["Name"] == "running" and inst.vpc_id.startswith("vpc-") and inst.subnet.vpc_id == inst.vpc_id
    [vpc] = list(res.vpcs.filter(Filters=[{"Name": "isDefault", "Values": ["true"]}]))
    assert vpc.id == inst.vpc_id and len(list(vpc.subnets.all())) == 3
    assert [i.id for i in vpc.instances.all()] == [inst.id]
    [eni] = list(inst.network_interfaces)
    assert eni.id.startswith("eni-") and eni.status == "in-use"
    [vol] = list(inst.volumes.all())
    assert vol.id.startswith("vol-") and vol.attachments[0]["InstanceId"] == inst.id
    sg = res.create_security_group(GroupName="resource-api", Description="via boto3 resources", VpcId=vpc.id)
    sg.authorize_ingress(IpPermissions=[{"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80,
                                         "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    sg.revoke_egress(IpPermissions=[{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    sg.reload()
    assert sg.ip_permissions[0]["FromPort"] == 80 and sg.ip_permissions_egress == []
    vpc.create_tags(Tags=[{"Key": "course", "Value": "cloud"}])
    assert {"Key": "course", "Value": "cloud"} in res.Vpc(vpc.id).tags
    inst.stop()
    inst.wait_until_stopped()
    inst.modify_attribute(InstanceType={"Value": "t2.micro"})
    inst.start()
    inst.wait_until_running()
    assert res.Instance(inst.id).instance_type == "t2.micro"
    inst.terminate()
    inst.wait_until_terminated()
    sg.delete()


# Every Describe call with a paginator that pocketcloud serves, with its result key.
PAGINATED = {
    "describe_instances": "Reservations", "describe_instance_status": "InstanceStatuses", "describe_vpcs": "Vpcs",
    "describe_subnets": "Subnets", "describe_security_groups": "SecurityGroups",
    "describe_security_group_rules": "SecurityGroupRules", "describe_network_interfaces": "NetworkInterfaces",
    "describe_volumes": "Volumes", "describe_tags": "Tags", "describe_instance_types": "InstanceTypes",
    "describe_instance_credit_specifications": "InstanceCreditSpecifications", "describe_images": "Images",
    "describe_launch_templates": "LaunchTemplates",
}


def test_a_paginator_on_every_describe_call(account):
    _, ec2, _ = account
    ids = [i["InstanceId"] for i in ec2.run_instances(
        ImageId=ami(ec2), MinCount=6, MaxCount=6, InstanceType="t2.nano",
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "batch", "Value": "p"}]}])["Instances"]]
    for n in range(6):
        ec2.create_security_group(GroupName=f"page-{n}", Description="paging")
        ec2.create_launch_template(LaunchTemplateName=f"page-{n}", LaunchTemplateData={"InstanceType": "t2.nano"})
    for n in range(5):  # one template with six versions
        ec2.create_launch_template_version(LaunchTemplateName="page-0",
                                           LaunchTemplateData={"InstanceType": "t2.micro",
                                                               "UserData": base64.b64encode(b"%d" % n).decode()})
    def flat(op, items):  # a reservation split across pages is still the same instances
        return [i["InstanceId"] for r in items for i in r["Instances"]] if op == "describe_instances" else items

    for op, key in PAGINATED.items():
        whole = getattr(ec2, op)()[key]
        pages = list(ec2.get_paginator(op).paginate(PaginationConfig={"PageSize": 5}))
        paged = [item for page in pages for item in page[key]]
        assert flat(op, paged) == flat(op, whole), op
        if len(whole) > 5:
            assert len(pages) > 1 and all(len(p[key]) <= 5 for p in pages), op
    assert len([i for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]]) == 6
    pages = list(ec2.get_paginator("describe_launch_template_versions").paginate(
        LaunchTemplateName="page-0", PaginationConfig={"PageSize": 4}))
    assert [len(p["LaunchTemplateVersions"]) for p in pages] == [4, 2]
    assert sorted(v["VersionNumber"] for p in pages for v in p["LaunchTemplateVersions"]) == list(range(1, 7))
    # AWS's bounds and errors
    for call, code in [(lambda: ec2.describe_instances(MaxResults=4), "InvalidParameterValue"),
                       (lambda: ec2.describe_instances(MaxResults=5, InstanceIds=ids[:1]), "InvalidParameterCombination"),
                       (lambda: ec2.describe_volumes(MaxResults=501), "InvalidParameterValue"),
                       (lambda: ec2.describe_instance_types(MaxResults=101), "InvalidParameterValue"),
                       (lambda: ec2.describe_vpcs(NextToken="not-a-token"), "InvalidPaginationToken")]:
        with pytest.raises(ClientError) as e:
            call()
        assert e.value.response["Error"]["Code"] == code


def test_aws_cli_wait_pagination_and_dry_run(server, account):
    api, ec2, _ = account
    image = ami(ec2)
    for waiter in (["image-exists", "--image-ids", image], ["image-available", "--image-ids", image],
                   ["vpc-available"], ["vpc-exists"], ["subnet-available"]):
        out = aws(server, api, "ec2", "wait", *waiter)
        assert out.returncode == 0, (waiter, out.stderr)

    # --dry-run: a valid request says it would have succeeded and changes nothing
    out = aws(server, api, "ec2", "run-instances", "--image-id", image, "--instance-type", "t2.nano", "--dry-run")
    assert out.returncode != 0 and "DryRunOperation" in out.stderr, out.stderr
    assert ec2.describe_instances()["Reservations"] == []
    out = aws(server, api, "ec2", "run-instances", "--image-id", "ami-00000000000000000", "--dry-run")
    assert "InvalidAMIID.NotFound" in out.stderr  # an invalid one says why, as without --dry-run
    out = aws(server, api, "ec2", "describe-vpcs", "--dry-run")
    assert "DryRunOperation" in out.stderr

    out = aws(server, api, "ec2", "create-key-pair", "--key-name", "waits", "--query", "KeyPairId", "--output", "text")
    assert out.returncode == 0, out.stderr
    assert aws(server, api, "ec2", "wait", "key-pair-exists", "--key-names", "waits").returncode == 0
    out = aws(server, api, "ec2", "create-security-group", "--group-name", "waits", "--description", "w",
              "--query", "GroupId", "--output", "text")
    sg = out.stdout.strip()
    assert aws(server, api, "ec2", "wait", "security-group-exists", "--group-ids", sg).returncode == 0

    out = aws(server, api, "ec2", "run-instances", "--image-id", image, "--instance-type", "t2.nano",
              "--count", "2", "--query", "Instances[].InstanceId", "--output", "text")
    assert out.returncode == 0, out.stderr
    ids = out.stdout.split()
    for waiter in ("instance-exists", "instance-running", "instance-status-ok", "system-status-ok"):
        out = aws(server, api, "ec2", "wait", waiter, "--instance-ids", *ids)
        assert out.returncode == 0, (waiter, out.stderr)
    vols = [v["VolumeId"] for v in ec2.describe_volumes()["Volumes"]]
    assert len(vols) == 2 and aws(server, api, "ec2", "wait", "volume-in-use", "--volume-ids", *vols).returncode == 0

    out = aws(server, api, "ec2", "terminate-instances", "--instance-ids", ids[0], "--dry-run")
    assert "DryRunOperation" in out.stderr
    other = server.new_user(f"other{time.monotonic_ns() % 10 ** 9}")
    out = aws(server, other, "ec2", "terminate-instances", "--instance-ids", ids[0], "--dry-run")
    assert "InvalidInstanceID.NotFound" in out.stderr  # another account's instance: as without --dry-run
    assert {i["State"]["Name"] for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]} == {"running"}

    out = aws(server, api, "ec2", "describe-instances", "--page-size", "5", "--query",
              "Reservations[].Instances[].InstanceId")
    assert out.returncode == 0 and sorted(json.loads(out.stdout)) == sorted(ids)

    assert aws(server, api, "ec2", "stop-instances", "--instance-ids", *ids).returncode == 0
    out = aws(server, api, "ec2", "wait", "instance-stopped", "--instance-ids", *ids)
    assert out.returncode == 0, out.stderr
    assert aws(server, api, "ec2", "terminate-instances", "--instance-ids", *ids).returncode == 0
    for waiter, flag, targets in (("instance-terminated", "--instance-ids", ids), ("volume-deleted", "--volume-ids", vols)):
        out = aws(server, api, "ec2", "wait", waiter, flag, *targets)
        assert out.returncode == 0, (waiter, out.stderr)
    aws(server, api, "ec2", "delete-security-group", "--group-id", sg)
    aws(server, api, "ec2", "delete-key-pair", "--key-name", "waits")


def test_aws_cli_s3_waiters(server, account):
    """`aws s3api wait` for every state S3 has: bucket and object, there and gone."""
    api, _, _ = account
    bucket = f"waits-{time.monotonic_ns() % 10 ** 9}"
    assert aws(server, api, "s3api", "create-bucket", "--bucket", bucket).returncode == 0
    steps = [("wait", "bucket-exists", "--bucket", bucket),
             ("put-object", "--bucket", bucket, "--key", "k", "--body", __file__),
             ("wait", "object-exists", "--bucket", bucket, "--key", "k"),
             ("delete-object", "--bucket", bucket, "--key", "k"),
             ("wait", "object-not-exists", "--bucket", bucket, "--key", "k"),
             ("delete-bucket", "--bucket", bucket),
             ("wait", "bucket-not-exists", "--bucket", bucket)]
    for step in steps:
        out = aws(server, api, "s3api", *step)
        assert out.returncode == 0, (step, out.stderr)


def test_what_pocketcloud_does_not_serve_says_why(server, account):
    """EC2 actions pocketcloud does not serve yet, and IAM, answer an error naming the action
    and the reason, in the protocol the client parses (never UnknownError), even with DryRun."""
    api, ec2, _ = account
    kw = dict(endpoint_url=server.url, region_name="us-east-1", aws_access_key_id=api.key_id,
              aws_secret_access_key=api.secret, config=BotoConfig(retries={"max_attempts": 1}))
    iam = boto3.client("iam", **kw)
    for call, code, words in [
            (lambda: ec2.create_snapshots(InstanceSpecification={"InstanceId": "i-00000000000000000"}),
             "UnsupportedOperation", "multi-volume snapshots"),
            (lambda: ec2.create_snapshots(InstanceSpecification={"InstanceId": "i-00000000000000000"}, DryRun=True),
             "UnsupportedOperation", "multi-volume snapshots"),
            (lambda: ec2.allocate_address(Domain="vpc"), "UnsupportedOperation", "VPC networking"),
            (lambda: ec2.copy_image(Name="mine", SourceImageId="ami-00000000000000000", SourceRegion="us-east-1"),
             "UnsupportedOperation", "beyond CreateImage"),
            (lambda: ec2.request_spot_instances(), "UnsupportedOperation", "on demand"),
            (lambda: iam.create_role(RoleName="app", AssumeRolePolicyDocument="{}"), "NotImplemented",
             "no roles, policies or instance profiles"),
            (lambda: iam.list_roles(), "NotImplemented", "IAM (ListRoles)"),
            # services not served at all, each in its protocol: Query, JSON 1.1, JSON 1.0
            (lambda: boto3.client("sns", **kw).list_topics(), "NotImplemented", "the AWS service sns"),
            (lambda: boto3.client("logs", **kw).describe_log_groups(), "NotImplemented",
             "the AWS service logs (DescribeLogGroups)"),
            (lambda: boto3.client("dynamodb", **kw).list_tables(), "NotImplemented", "service dynamodb (ListTables)")]:
        with pytest.raises(ClientError) as e:
            call()
        err = e.value.response["Error"]
        assert err["Code"] == code and words in err["Message"], err
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    # an action EC2 does not have at all: InvalidAction, listing only what pocketcloud serves
    with pytest.raises(ClientError) as e:
        ec2.describe_spot_price_history()
    message = e.value.response["Error"]["Message"]
    assert e.value.response["Error"]["Code"] == "InvalidAction" and "RunInstances" in message
    assert "CreateSnapshots" not in message and "CreateNatGateway" not in message  # refused, not served
    assert "CreateVpc" in message  # served since VPC networking
    assert ec2.describe_volumes()["Volumes"] == [] and ec2.describe_images(Owners=["self"])["Images"] == []


def test_list_buckets_pages(server, account):
    """ListBuckets with MaxBuckets/ContinuationToken, through boto3's paginator: names in
    order, each once; a token that pocketcloud did not issue is refused."""
    api, _, _ = account
    s3 = boto3.client("s3", endpoint_url=server.url, region_name="us-east-1", aws_access_key_id=api.key_id,
                      aws_secret_access_key=api.secret, config=BotoConfig(retries={"max_attempts": 1}))
    names = [f"pages-{n}-{time.monotonic_ns() % 10 ** 9}" for n in range(5)]
    for name in reversed(names):
        s3.create_bucket(Bucket=name)
    try:
        pages = list(s3.get_paginator("list_buckets").paginate(PaginationConfig={"PageSize": 2}))
        assert [len(p["Buckets"]) for p in pages] == [2, 2, 1]
        assert [b["Name"] for p in pages for b in p["Buckets"]] == sorted(names)
        assert "ContinuationToken" not in pages[-1]
        first = s3.list_buckets(MaxBuckets=4, Prefix="pages-1")
        assert [b["Name"] for b in first["Buckets"]] == [names[1]] and first["Prefix"] == "pages-1"
        with pytest.raises(ClientError) as e:
            s3.list_buckets(MaxBuckets=2, ContinuationToken="not a token")
        assert e.value.response["Error"]["Code"] == "InvalidArgument"
    finally:
        for name in names:
            s3.delete_bucket(Bucket=name)
