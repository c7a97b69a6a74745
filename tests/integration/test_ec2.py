"""The EC2 API through boto3 and the aws CLI, unmodified, over HTTP to the running server."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest
import requests
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError

pytestmark = pytest.mark.integration

AWS = str(Path(sys.executable).with_name("aws"))


def ec2_for(server, api):
    return boto3.client("ec2", endpoint_url=server.url, region_name="us-east-1",
                        aws_access_key_id=api.key_id, aws_secret_access_key=api.secret,
                        config=BotoConfig(retries={"max_attempts": 1}))


def error_code(excinfo) -> str:
    return excinfo.value.response["Error"]["Code"]


@pytest.fixture
def ec2(server, user):
    client = ec2_for(server, user)
    yield client
    ids = [i["InstanceId"] for r in client.describe_instances()["Reservations"] for i in r["Instances"]
           if i["State"]["Name"] != "terminated"]
    if ids:
        client.terminate_instances(InstanceIds=ids)


def tiny_ami(ec2, kind: str = "container") -> str:
    images = ec2.describe_images(Filters=[{"Name": "name", "Values": [f"tiny-{kind}"]}])["Images"]
    assert len(images) == 1, images
    return images[0]["ImageId"]


def test_boto3_container_lifecycle_with_waiters(ec2, user):
    ami = tiny_ami(ec2)
    image = ec2.describe_images(ImageIds=[ami])["Images"][0]
    assert "container" in image["Description"]
    assert {"Key": "pocketcloud:kind", "Value": "container"} in image["Tags"]

    res = ec2.run_instances(ImageId=ami, InstanceType="t2.nano", MinCount=1, MaxCount=1,
                            UserData="#!/bin/sh\necho user-data-ran > /tmp/marker\n",
                            TagSpecifications=[{"ResourceType": "instance",
                                                "Tags": [{"Key": "Name", "Value": "boto"}, {"Key": "team", "Value": "a"}]}])
    inst = res["Instances"][0]
    iid = inst["InstanceId"]
    assert inst["ImageId"] == ami and inst["InstanceType"] == "t2.nano"
    assert inst["Placement"]["AvailabilityZone"] == "us-east-1a"
    ec2.get_waiter("instance_running").wait(InstanceIds=[iid], WaiterConfig={"Delay": 1})
    desc = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    assert desc["State"] == {"Code": 16, "Name": "running"}
    assert desc["PrivateIpAddress"] and desc["LaunchTime"]
    # running is the engine's state; the init inside writes its console lines just after (on
    # EC2 too the console output lags the state): read it until init says ready
    deadline = time.monotonic() + 60
    while True:
        console = ec2.get_console_output(InstanceId=iid)["Output"]  # botocore decodes the base64
        if console.rstrip().endswith("pocketcloud-init: ready") or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert f"pocketcloud-init: instance-id {iid}, hostname " in console
    assert "running user-data" in console and "user-data finished with exit code 0" in console
    assert console.rstrip().endswith("pocketcloud-init: ready"), console
    marker = user.ok("POST", f"/instances/{iid}/exec", json={"command": "cat /tmp/marker"})
    assert marker["stdout"] == "user-data-ran\n", "the UserData script really ran in the instance"

    stop = ec2.stop_instances(InstanceIds=[iid])["StoppingInstances"][0]
    assert stop["PreviousState"]["Name"] == "running"
    ec2.get_waiter("instance_stopped").wait(InstanceIds=[iid], WaiterConfig={"Delay": 1})
    start = ec2.start_instances(InstanceIds=[iid])["StartingInstances"][0]
    assert start["PreviousState"] == {"Code": 80, "Name": "stopped"}
    ec2.get_waiter("instance_running").wait(InstanceIds=[iid], WaiterConfig={"Delay": 1})
    ec2.reboot_instances(InstanceIds=[iid])
    term = ec2.terminate_instances(InstanceIds=[iid])["TerminatingInstances"][0]
    assert term["PreviousState"]["Name"] == "running" and term["CurrentState"] == {"Code": 48, "Name": "terminated"}
    ec2.get_waiter("instance_terminated").wait(InstanceIds=[iid], WaiterConfig={"Delay": 1})


def test_boto3_resource_api(server, user, ec2):
    res = boto3.resource("ec2", endpoint_url=server.url, region_name="us-east-1",
                         aws_access_key_id=user.key_id, aws_secret_access_key=user.secret)
    [inst] = res.create_instances(ImageId=tiny_ami(ec2), MinCount=1, MaxCount=1, InstanceType="t2.nano")
    inst.wait_until_running()
    inst.reload()
    assert inst.state["Name"] == "running"
    inst.create_tags(Tags=[{"Key": "env", "Value": "lab"}])
    assert {"Key": "env", "Value": "lab"} in res.Instance(inst.id).tags
    inst.terminate()
    inst.wait_until_terminated()


def test_security_group_rule_becomes_a_forward(server, ec2):
    sg = ec2.create_security_group(GroupName="web", Description="http in")["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    user_data = ("#!/bin/sh\nmkdir -p /www; echo through-the-group > /www/index.html\n"
                 "printf '#!/bin/sh\\nhttpd -p 80 -h /www\\nhttpd -p 81 -h /www\\n' > /etc/rc.local; chmod +x /etc/rc.local\n")
    inst = ec2.run_instances(ImageId=tiny_ami(ec2), MinCount=1, MaxCount=1, SecurityGroupIds=[sg],
                             UserData=user_data)["Instances"][0]
    tags = {t["Key"]: t["Value"] for t in inst["Tags"]}
    host, port = tags["aws:pocketcloud:forward:80"].split(":")
    assert host == "127.0.0.1" and inst["PublicIpAddress"] == "127.0.0.1"
    assert "aws:pocketcloud:forward:81" not in tags  # no rule, no way in
    deadline = time.monotonic() + 20
    while True:
        try:
            assert requests.get(f"http://127.0.0.1:{port}/", timeout=2).text.strip() == "through-the-group"
            break
        except requests.RequestException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)
    # The group's forward lives in the server process: a restart must open it again, on the same port.
    server.restart()
    assert requests.get(f"http://127.0.0.1:{port}/", timeout=10).text.strip() == "through-the-group"
    groups = ec2.describe_security_groups(GroupIds=[sg])["SecurityGroups"]
    assert groups[0]["IpPermissions"][0]["FromPort"] == 80
    with pytest.raises(ClientError) as e:
        ec2.delete_security_group(GroupId=sg)
    assert error_code(e) == "DependencyViolation"
    ec2.terminate_instances(InstanceIds=[inst["InstanceId"]])
    ec2.delete_security_group(GroupId=sg)


def test_client_token_launches_once(ec2):
    ami = tiny_ami(ec2)
    first = ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, ClientToken="lab-1-token")
    again = ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, ClientToken="lab-1-token")
    assert first["ReservationId"] == again["ReservationId"]
    assert [i["InstanceId"] for i in first["Instances"]] == [i["InstanceId"] for i in again["Instances"]]
    running = [i for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]]
    assert len(running) == 1
    # the same token with other parameters is another request, refused and launching nothing
    with pytest.raises(ClientError) as e:
        ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, ClientToken="lab-1-token", InstanceType="t2.small")
    assert error_code(e) == "IdempotentParameterMismatch"
    assert len([i for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]]) == 1


def test_key_pairs(ec2):
    created = ec2.create_key_pair(KeyName="lab")
    assert created["KeyMaterial"].startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    with pytest.raises(ClientError) as e:
        ec2.create_key_pair(KeyName="lab")
    assert error_code(e) == "InvalidKeyPair.Duplicate"
    pub = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl student@laptop"
    imported = ec2.import_key_pair(KeyName="laptop", PublicKeyMaterial=pub.encode())
    assert imported["KeyFingerprint"].startswith("SHA256:")
    with pytest.raises(ClientError) as e:
        ec2.import_key_pair(KeyName="broken", PublicKeyMaterial=b"ssh-rsa not-base64!")
    assert error_code(e) == "InvalidKey.Format"
    names = sorted(k["KeyName"] for k in ec2.describe_key_pairs()["KeyPairs"])
    assert names == ["lab", "laptop"]
    with pytest.raises(ClientError) as e:
        ec2.run_instances(ImageId=tiny_ami(ec2), MinCount=1, MaxCount=1, KeyName="nope")
    assert error_code(e) == "InvalidKeyPair.NotFound"
    ec2.delete_key_pair(KeyName="lab")
    ec2.delete_key_pair(KeyName="laptop")
    assert ec2.describe_key_pairs()["KeyPairs"] == []


def test_filters_and_pagination(ec2):
    ami = tiny_ami(ec2)
    ids = [i["InstanceId"] for i in ec2.run_instances(
        ImageId=ami, MinCount=3, MaxCount=3, InstanceType="t2.nano",
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "batch", "Value": "b1"}]}])["Instances"]]
    ec2.stop_instances(InstanceIds=ids[:1])

    def found(**kw):
        return sorted(i["InstanceId"] for r in ec2.describe_instances(**kw)["Reservations"] for i in r["Instances"])

    assert found(Filters=[{"Name": "instance-state-name", "Values": ["stopped"]}]) == ids[:1]
    assert found(Filters=[{"Name": "tag:batch", "Values": ["b1"]}]) == sorted(ids)
    assert found(Filters=[{"Name": "tag-key", "Values": ["batch"]}]) == sorted(ids)
    assert found(Filters=[{"Name": "image-id", "Values": [ami]}, {"Name": "instance-type", "Values": ["t2.nano"]}]) == sorted(ids)
    assert found(Filters=[{"Name": "instance-type", "Values": ["m5.large"]}]) == []
    pages = list(ec2.get_paginator("describe_instances").paginate(PaginationConfig={"PageSize": 5}))
    assert sorted(i["InstanceId"] for p in pages for r in p["Reservations"] for i in r["Instances"]) == sorted(ids)
    status = ec2.describe_instance_status(InstanceIds=ids)["InstanceStatuses"]
    assert sorted(s["InstanceId"] for s in status) == sorted(ids[1:])  # running only, as AWS
    tags = ec2.describe_tags(Filters=[{"Name": "key", "Values": ["batch"]}])["Tags"]
    assert len(tags) == 3
    ec2.delete_tags(Resources=ids, Tags=[{"Key": "batch"}])
    assert ec2.describe_tags(Filters=[{"Name": "key", "Values": ["batch"]}])["Tags"] == []


def test_accounts_are_isolated(server):
    a, b = server.new_user(f"ec2a-{server.port}"), server.new_user(f"ec2b-{server.port}")
    ea, eb = ec2_for(server, a), ec2_for(server, b)
    iid = ea.run_instances(ImageId=tiny_ami(ea), MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    try:
        assert eb.describe_instances()["Reservations"] == []
        for call in (lambda: eb.terminate_instances(InstanceIds=[iid]),
                     lambda: eb.stop_instances(InstanceIds=[iid]),
                     lambda: eb.describe_instances(InstanceIds=[iid])):
            with pytest.raises(ClientError) as e:
                call()
            assert error_code(e) == "InvalidInstanceID.NotFound"
        state = ea.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["State"]["Name"]
        assert state == "running"
    finally:
        ea.terminate_instances(InstanceIds=[iid])


def test_errors_are_ec2_shaped_and_change_nothing(server, user, ec2):
    ami = tiny_ami(ec2)
    cases = [
        (lambda: ec2.run_instances(ImageId="ami-00000000000000000", MinCount=1, MaxCount=1), "InvalidAMIID.NotFound"),
        (lambda: ec2.run_instances(ImageId="not-an-ami", MinCount=1, MaxCount=1), "InvalidAMIID.Malformed"),
        (lambda: ec2.run_instances(ImageId=ami, InstanceType="x9.huge", MinCount=1, MaxCount=1), "InvalidInstanceType"),
        (lambda: ec2.run_instances(ImageId=ami, MinCount=3, MaxCount=2), "InvalidParameterValue"),
        (lambda: ec2.describe_instances(InstanceIds=["i-123"]), "InvalidInstanceID.Malformed"),
        (lambda: ec2.start_instances(InstanceIds=["i-0123456789abcdef0"]), "InvalidInstanceID.NotFound"),
        (lambda: ec2.describe_spot_price_history(), "InvalidAction"),
        (lambda: ec2.describe_instances(Filters=[{"Name": "bogus", "Values": ["x"]}]), "InvalidParameterValue"),
        (lambda: ec2.authorize_security_group_ingress(GroupId="sg-00000000000000000", IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 1, "ToPort": 1}]), "InvalidGroup.NotFound"),
    ]
    for call, code in cases:
        with pytest.raises(ClientError) as e:
            call()
        assert error_code(e) == code, (code, e.value.response)
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] < 500
    assert ec2.describe_instances()["Reservations"] == []

    iid = ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    ec2.terminate_instances(InstanceIds=[iid])
    with pytest.raises(ClientError) as e:
        ec2.start_instances(InstanceIds=[iid])
    assert error_code(e) == "IncorrectInstanceState"

    bad = boto3.client("ec2", endpoint_url=server.url, region_name="us-east-1",
                       aws_access_key_id=user.key_id, aws_secret_access_key="wrong" * 8)
    with pytest.raises(ClientError) as e:
        bad.describe_instances()
    assert error_code(e) == "SignatureDoesNotMatch"
    unknown = boto3.client("ec2", endpoint_url=server.url, region_name="us-east-1",
                           aws_access_key_id="AKIA0000000000000000", aws_secret_access_key="x" * 40)
    with pytest.raises(ClientError) as e:
        unknown.describe_instances()
    assert error_code(e) == "AuthFailure"
    r = requests.post(server.url + "/", data={"Action": "DescribeInstances", "Version": "2016-11-15"})
    assert r.status_code == 401 and "<Code>AuthFailure</Code>" in r.text


def aws(server, api, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "AWS_ACCESS_KEY_ID": api.key_id, "AWS_SECRET_ACCESS_KEY": api.secret,
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": server.url, "AWS_CONFIG_FILE": "/dev/null",
           "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}
    return subprocess.run([AWS, *args], env=env, capture_output=True, text=True, timeout=120)


def test_aws_cli(server, user, ec2):
    ami = tiny_ami(ec2)
    out = aws(server, user, "ec2", "create-key-pair", "--key-name", "cli", "--query", "KeyMaterial", "--output", "text")
    assert out.returncode == 0 and "OPENSSH PRIVATE KEY" in out.stdout, out.stderr
    out = aws(server, user, "ec2", "run-instances", "--image-id", ami, "--instance-type", "t2.nano",
              "--key-name", "cli", "--tag-specifications", "ResourceType=instance,Tags=[{Key=via,Value=cli}]")
    assert out.returncode == 0, out.stderr
    iid = json.loads(out.stdout)["Instances"][0]["InstanceId"]
    out = aws(server, user, "ec2", "describe-instances", "--filters", "Name=tag:via,Values=cli",
              "--query", "Reservations[].Instances[].[InstanceId,State.Name]", "--output", "text")
    assert out.returncode == 0 and out.stdout.split() == [iid, "running"], out.stderr
    out = aws(server, user, "ec2", "describe-instances", "--output", "table")
    assert out.returncode == 0 and iid in out.stdout and "DescribeInstances" in out.stdout
    out = aws(server, user, "ec2", "terminate-instances", "--instance-ids", iid)
    assert out.returncode == 0 and json.loads(out.stdout)["TerminatingInstances"][0]["CurrentState"]["Name"] == "terminated"
    out = aws(server, user, "ec2", "describe-instances", "--instance-ids", "i-0123456789abcdef0")
    assert out.returncode != 0 and "InvalidInstanceID.NotFound" in out.stderr
    aws(server, user, "ec2", "delete-key-pair", "--key-name", "cli")


def others_get_not_found_and_change_nothing(server, ec2, iid: str, key_name: str, sg: str) -> None:
    """Another account aims at this account's VM, key pair and security group: every call
    answers as for a missing resource, and nothing changes on the engine or in the records."""
    b = ec2_for(server, server.new_user(f"ec2-other-{iid[2:12]}"))
    domid = subprocess.run(["virsh", "-c", "qemu:///system", "domid", f"pc-{iid}"], capture_output=True,
                           text=True, check=True).stdout.strip()
    before_group = ec2.describe_security_groups(GroupIds=[sg])["SecurityGroups"]
    rule = [{"IpProtocol": "tcp", "FromPort": 23, "ToPort": 23, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
    for call, code in [
        (lambda: b.stop_instances(InstanceIds=[iid]), "InvalidInstanceID.NotFound"),
        (lambda: b.start_instances(InstanceIds=[iid]), "InvalidInstanceID.NotFound"),
        (lambda: b.reboot_instances(InstanceIds=[iid]), "InvalidInstanceID.NotFound"),
        (lambda: b.get_console_output(InstanceId=iid), "InvalidInstanceID.NotFound"),
        (lambda: b.terminate_instances(InstanceIds=[iid]), "InvalidInstanceID.NotFound"),
        (lambda: b.describe_instances(InstanceIds=[iid]), "InvalidInstanceID.NotFound"),
        (lambda: b.describe_key_pairs(KeyNames=[key_name]), "InvalidKeyPair.NotFound"),
        (lambda: b.run_instances(ImageId=tiny_ami(b, "vm"), MinCount=1, MaxCount=1, KeyName=key_name),
         "InvalidKeyPair.NotFound"),
        (lambda: b.describe_security_groups(GroupIds=[sg]), "InvalidGroup.NotFound"),
        (lambda: b.authorize_security_group_ingress(GroupId=sg, IpPermissions=rule), "InvalidGroup.NotFound"),
        (lambda: b.revoke_security_group_ingress(GroupId=sg, IpPermissions=before_group[0]["IpPermissions"]),
         "InvalidGroup.NotFound"),
        (lambda: b.delete_security_group(GroupId=sg), "InvalidGroup.NotFound"),
        (lambda: b.run_instances(ImageId=tiny_ami(b, "vm"), MinCount=1, MaxCount=1, SecurityGroupIds=[sg]),
         "InvalidGroup.NotFound"),
    ]:
        with pytest.raises(ClientError) as e:
            call()
        assert error_code(e) == code, e.value.response
    b.delete_key_pair(KeyName=key_name)  # as on AWS, deleting a key pair one does not have succeeds ...
    assert [k["KeyName"] for k in ec2.describe_key_pairs(KeyNames=[key_name])["KeyPairs"]] == [key_name]  # ... and deletes nothing
    assert b.describe_instances()["Reservations"] == []
    assert ec2.describe_security_groups(GroupIds=[sg])["SecurityGroups"] == before_group
    state = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["State"]["Name"]
    after = subprocess.run(["virsh", "-c", "qemu:///system", "domid", f"pc-{iid}"], capture_output=True, text=True,
                           check=True).stdout.strip()
    assert (state, after) == ("running", domid), "the same boot of the same domain"


def test_boto3_vm_ssh_through_a_security_group_rule(server, ec2):
    """A VM through EC2: a key pair, a security group that opens SSH only once a rule is
    added, UserData that really runs in the guest, another account refused on all three,
    the console output, and a revoked rule that closes the way in."""
    import io

    import paramiko

    key = ec2.create_key_pair(KeyName="vm-lab")
    sg = ec2.create_security_group(GroupName="ssh", Description="ssh in")["GroupId"]
    ami = tiny_ami(ec2, "vm")
    assert "virtual machine" in ec2.describe_images(ImageIds=[ami])["Images"][0]["Description"]
    token = os.urandom(6).hex()
    user_data = f"#!/bin/sh\necho ec2-user-data-{token} > /root/ec2-marker\necho said-{token}\n"
    closed = ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, KeyName="vm-lab", SecurityGroupIds=[sg],
                               InstanceType="t2.nano", UserData=user_data)["Instances"][0]
    tags = {t["Key"]: t["Value"] for t in closed["Tags"]}
    assert not any(k.startswith("aws:pocketcloud:forward:") for k in tags), "no rule, no forward"
    ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    iid = closed["InstanceId"]
    ec2.get_waiter("instance_running").wait(InstanceIds=[iid], WaiterConfig={"Delay": 2})
    inst = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    tags = {t["Key"]: t["Value"] for t in inst["Tags"]}
    host, port = tags["aws:pocketcloud:forward:22"].split(":")
    assert inst["PublicIpAddress"] == "127.0.0.1" and inst["Hypervisor"] in ("kvm", "qemu")
    pkey = paramiko.Ed25519Key.from_private_key(io.StringIO(key["KeyMaterial"]))
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    deadline = time.monotonic() + 60
    while True:
        try:
            client.connect(host, port=int(port), username="root", pkey=pkey, timeout=10, look_for_keys=False,
                           allow_agent=False)
            break
        except (paramiko.SSHException, OSError):
            if time.monotonic() > deadline:
                raise
            time.sleep(1)
    _, out, _ = client.exec_command("uname -r; cat /root/ec2-marker")
    guest_kernel, marker = out.read().decode().split()
    client.close()
    assert guest_kernel != os.uname().release
    assert marker == f"ec2-user-data-{token}", "EC2 UserData reached the VM and ran there"
    console = ec2.get_console_output(InstanceId=iid)["Output"]
    assert f"pocketcloud-init: booting pocketcloud tiny (vm), kernel {guest_kernel}" in console
    assert f"said-{token}" in console and console.rstrip().endswith("pocketcloud-init: ready"), console

    others_get_not_found_and_change_nothing(server, ec2, iid, "vm-lab", sg)

    ec2.revoke_security_group_ingress(GroupId=sg, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    import socket

    with socket.socket() as s:
        assert s.connect_ex((host, int(port))) != 0, "a revoked rule closes the way in"
    ec2.stop_instances(InstanceIds=[iid])
    ec2.get_waiter("instance_stopped").wait(InstanceIds=[iid], WaiterConfig={"Delay": 2})
    ec2.start_instances(InstanceIds=[iid])
    ec2.get_waiter("instance_running").wait(InstanceIds=[iid], WaiterConfig={"Delay": 2})
    ec2.terminate_instances(InstanceIds=[iid])
    ec2.get_waiter("instance_terminated").wait(InstanceIds=[iid], WaiterConfig={"Delay": 2})
    ec2.delete_security_group(GroupId=sg)
    ec2.delete_key_pair(KeyName="vm-lab")


def test_rule_added_to_a_running_containers_group_opens_a_forward(ec2):
    sg = ec2.create_security_group(GroupName="late", Description="opened later")["GroupId"]
    user_data = ("#!/bin/sh\nmkdir -p /www; echo late-rule > /www/index.html\n"
                 "printf '#!/bin/sh\\nhttpd -p 8080 -h /www\\n' > /etc/rc.local; chmod +x /etc/rc.local\n")
    iid = ec2.run_instances(ImageId=tiny_ami(ec2), MinCount=1, MaxCount=1, SecurityGroupIds=[sg],
                            UserData=user_data)["Instances"][0]["InstanceId"]
    rule = [{"IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
    ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=rule)
    inst = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    port = {t["Key"]: t["Value"] for t in inst["Tags"]}["aws:pocketcloud:forward:8080"].split(":")[1]
    deadline = time.monotonic() + 20
    while True:
        try:
            assert requests.get(f"http://127.0.0.1:{port}/", timeout=2).text.strip() == "late-rule"
            break
        except requests.RequestException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)
    ec2.revoke_security_group_ingress(GroupId=sg, IpPermissions=rule)
    with pytest.raises(requests.RequestException):
        requests.get(f"http://127.0.0.1:{port}/", timeout=2)
    inst = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    assert "aws:pocketcloud:forward:8080" not in {t["Key"] for t in inst["Tags"]}
    ec2.terminate_instances(InstanceIds=[iid])
    ec2.delete_security_group(GroupId=sg)
