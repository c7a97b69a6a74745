"""cloud-init's Ec2 datasource in a debian-12 VM on a VPC subnet (issue 14, item 4).

One real debian-12 boot (~2 min under TCG) on a server with VPC networking on: the domain's DMI
says EC2, so the guest's cloud-init takes instance-id, hostname, the key pair and user-data from
169.254.169.254 instead of the NoCloud seed. A run pays for one debian-12 boot: this one when
networking is on (the default), test_libvirt_driver's (off a subnet, NoCloud) when it is off.
"""
from __future__ import annotations

import io
import os
import time

import paramiko
import pytest

from emulator.config import Config

from .test_ec2 import ec2_for
from .test_vpc_network import sh

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(Config().vpc_networking != "on",
                       reason="VPC networking off: the run's debian-12 boot is test_libvirt_driver's"),
]


@pytest.fixture(scope="module")
def netcloud(tmp_path_factory, docker_client):
    from tests.conftest import start_server, stop_and_check_leaks

    srv = start_server(tmp_path_factory.mktemp("pcec2ds"), POCKETCLOUD_VPC_NETWORKING="on")
    srv.label = Config(home=srv.home).instance_label
    yield srv
    stop_and_check_leaks(srv, docker_client)


def ssh_until(host: str, port: int, user: str, pkey, deadline: float) -> paramiko.SSHClient:
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    while True:
        try:
            client.connect(host, port=port, username=user, pkey=pkey, timeout=10, look_for_keys=False,
                           allow_agent=False)
            return client
        except (paramiko.SSHException, OSError):
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def run(client: paramiko.SSHClient, command: str) -> str:
    _, out, _ = client.exec_command(command, timeout=60)
    return out.read().decode()


@pytest.mark.timeout(1500)
def test_debian12_on_a_subnet_reads_the_metadata_service(netcloud):
    build = netcloud.cli("images", "build", "debian-12", check=False)
    assert build.returncode == 0, build.stderr
    api = netcloud.new_user("ec2ds")
    ec2 = ec2_for(netcloud, api)
    ami = ec2.describe_images(Filters=[{"Name": "name", "Values": ["debian-12-vm"]}])["Images"][0]["ImageId"]
    key = ec2.create_key_pair(KeyName="deb")
    sg = ec2.create_security_group(GroupName="ssh", Description="ssh in")["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    subnet = ec2.describe_subnets(Filters=[{"Name": "availability-zone", "Values": ["us-east-1a"]}])["Subnets"][0]
    token = os.urandom(6).hex()
    user_data = f"#!/bin/sh\necho ec2ds-{token} > /root/marker\n"
    t0 = time.monotonic()
    iid = ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, InstanceType="t2.micro", KeyName="deb",
                            SubnetId=subnet["SubnetId"], SecurityGroupIds=[sg], UserData=user_data,
                            TagSpecifications=[{"ResourceType": "instance",
                                                "Tags": [{"Key": "Name", "Value": "deb-ec2"}]}],
                            )["Instances"][0]["InstanceId"]
    try:
        ec2.get_waiter("instance_running").wait(InstanceIds=[iid], WaiterConfig={"Delay": 2, "MaxAttempts": 250})
        running = time.monotonic() - t0
        inst = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
        tags = {t["Key"]: t["Value"] for t in inst["Tags"]}
        host, port = tags["aws:pocketcloud:forward:22"].split(":")
        pkey = paramiko.Ed25519Key.from_private_key(io.StringIO(key["KeyMaterial"]))
        # The default user gets the key pair only from cloud-init's datasource (root also from the seed).
        client = ssh_until(host, int(port), "debian", pkey, time.monotonic() + 120)
        to_ssh = time.monotonic() - t0
        with client:
            out = run(client, "cloud-id; cloud-init query v1.cloud_name; cloud-init query v1.platform;"
                              " cloud-init query v1.instance_id; hostname; sudo cat /root/marker;"
                              " sudo cat /sys/class/dmi/id/product_serial /sys/class/dmi/id/product_uuid")
            lines = out.split()
            ds_log = run(client, "cat /run/cloud-init/ds-identify.log")
            ds_found = run(client, "cat /run/cloud-init/cloud.cfg")
            status = run(client, "cloud-init status --long")
            blame = run(client, "sudo cloud-init analyze blame 2>/dev/null | head -n 4")
        console = ec2.get_console_output(InstanceId=iid)["Output"]
        ready = [ln for ln in console.splitlines() if "pocketcloud-init: ready" in ln]
        print(f"\ndebian-12 on a subnet (Ec2 datasource): RunInstances -> running {running:.1f} s,"
              f" -> SSH as debian {to_ssh:.1f} s; guest says: {ready[-1].strip() if ready else '?'}\n{blame}")
        assert lines[:3] == ["aws", "aws", "ec2"], (out, ds_log, status)
        assert lines[3] == iid, "instance-id from the metadata service"
        assert lines[4] == "ip-" + inst["PrivateIpAddress"].replace(".", "-"), "EC2's hostname, not the Name tag"
        assert lines[5] == f"ec2ds-{token}", "the instance's user-data ran"
        assert lines[6] == lines[7] and lines[6].startswith("ec2"), "the DMI that makes it EC2"
        assert "ec2 platform is 'AWS'" in ds_log, ds_log
        assert "datasource_list: [ Ec2, NoCloud, None ]" in ds_found, (ds_found, ds_log)
        assert "DataSourceEc2Local" in status, status
        # pocketcloud's exec (its management key comes in the seed, not the metadata) still works
        got = sh(api, iid, "cloud-id; journalctl -b -o cat -u pocketcloud-seed-keys")["stdout"]
        assert got.split()[0] == "aws" and "added for root" in got, got
        internals = api.ok("GET", f"/instances/{iid}/internals")
        assert internals["guest_identity"]["ec2"] is True, internals["guest_identity"]
        assert internals["guest_identity"]["smbios_serial"] == lines[6]
    finally:
        ec2.terminate_instances(InstanceIds=[iid])
        ec2.get_waiter("instance_terminated").wait(InstanceIds=[iid], WaiterConfig={"Delay": 1})
