"""Terraform's VPC resources against real networks (a server with VPC networking on): aws_vpc,
aws_subnet, security groups whose rules name other groups (inline `security_groups`,
aws_security_group_rule's `source_security_group_id`, aws_vpc_security_group_ingress_rule's
`referenced_security_group_id`), the VPC's default group (aws_vpc's default_security_group_id,
aws_default_security_group) and container instances with `subnet_id`. Apply, check the
bridge and what flows, re-plan without drift, destroy leaving no network. Times go to
artifacts/compat-terraform-vpc.json."""
from __future__ import annotations

import ipaddress
import json
import shutil
import time
from pathlib import Path

import boto3
import pytest
from botocore.config import Config as BotoConfig

from emulator.config import Config
from emulator.networks import bridges, ipam
from emulator.networks.model import bridge_name
from tests.integration.test_vpc_network import code_of, nft_table, reaches, sh

from .test_terraform import planned_changes
from .tf import Terraform, terraform_env

pytestmark = pytest.mark.integration

STACK = Path(__file__).parent / "terraform" / "vpc"
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"


@pytest.fixture(scope="module")
def netserver(tmp_path_factory, docker_client):
    from tests.conftest import start_server, stop_and_check_leaks

    srv = start_server(tmp_path_factory.mktemp("pctfvpc"), POCKETCLOUD_VPC_NETWORKING="on")
    srv.label = Config(home=srv.home).instance_label
    yield srv
    stop_and_check_leaks(srv, docker_client)  # bridges, Docker networks, nft tables, dnsmasq included


def test_terraform_vpc_subnet_groups_naming_groups_and_instances(terraform_bin, provider_mirror, netserver,
                                                                 docker_client, tmp_path):
    api = netserver.new_user(f"tfvpc{time.monotonic_ns() % 10 ** 9}")
    ec2 = boto3.client("ec2", endpoint_url=netserver.url, region_name="us-east-1", aws_access_key_id=api.key_id,
                       aws_secret_access_key=api.secret, config=BotoConfig(retries={"max_attempts": 1}))
    cidr = ipam.allocate_vpc_cidr(ipam.host_taken_cidrs(docker_client), pool="10.192.0.0/10")
    work = tmp_path / "vpc"
    shutil.copytree(STACK, work)
    (work / "terraform.tfvars.json").write_text(json.dumps({"prefix": f"tfn{netserver.port}", "cidr": cidr}))
    env = terraform_env(netserver.cli("env").stdout, work, provider_mirror)
    env.update(AWS_ACCESS_KEY_ID=api.key_id, AWS_SECRET_ACCESS_KEY=api.secret)
    tf = Terraform(terraform_bin, work, env)
    out = None
    try:
        tf.run("init", "-input=false", label="init")
        tf.run("apply", "-auto-approve", "-input=false", label="apply")
        out = tf.outputs()["all"]
        bridge = bridge_name(out["subnet"])
        [vpc] = ec2.describe_vpcs(VpcIds=[out["vpc"]])["Vpcs"]
        assert vpc["CidrBlock"] == cidr and not vpc["IsDefault"]
        assert out["main_rtb"] and out["nacl"], "the provider read the main route table and the default ACL"
        [own] = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [out["vpc"]]},
                                                      {"Name": "group-name", "Values": ["default"]}])["SecurityGroups"]
        assert out["vpc_sg"] == out["adopted"] == own["GroupId"], "aws_vpc and aws_default_security_group find it"
        assert [(p["IpProtocol"], [g["GroupId"] for g in p["UserIdGroupPairs"]]) for p in own["IpPermissions"]] == \
            [("-1", [own["GroupId"]])], "the adopted group holds the self rule Terraform wrote"
        [rtb] = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [out["vpc"]]},
                                                   {"Name": "association.main", "Values": ["true"]}])["RouteTables"]
        assert rtb["RouteTableId"] == out["main_rtb"] and rtb["Routes"][0]["DestinationCidrBlock"] == cidr
        [acl] = ec2.describe_network_acls(Filters=[{"Name": "vpc-id", "Values": [out["vpc"]]}])["NetworkAcls"]
        assert acl["IsDefault"] and [a["SubnetId"] for a in acl["Associations"]] == [out["subnet"]]
        assert code_of(lambda: ec2.modify_vpc_attribute(VpcId=out["vpc"], EnableDnsSupport={"Value": False})) \
            == "UnsupportedOperation", "a DNS setting pocketcloud cannot honour is refused, not faked"

        assert out["subnet"] in {b["subnet"] for b in bridges.list_bridges(netserver.label)}, "the subnet is a bridge"
        assert ipaddress.ip_address(out["server_ip"]) in ipaddress.ip_network(cidr)
        [web] = ec2.describe_security_groups(GroupIds=[out["web"]])["SecurityGroups"]
        named = {(p["IpProtocol"], pair["GroupId"]) for p in web["IpPermissions"] for pair in p["UserIdGroupPairs"]}
        assert named == {("tcp", out["client"])}
        [db] = ec2.describe_security_groups(GroupIds=[out["db"]])["SecurityGroups"]
        named = {(p["IpProtocol"], pair["GroupId"]) for p in db["IpPermissions"] for pair in p["UserIdGroupPairs"]}
        assert named == {("tcp", out["web"]), ("icmp", out["client"])}

        sh(api, out["server"], "busybox httpd -p 8080 -h /etc")
        assert reaches(api, out["clients"], out["server_ip"]), "the clients' group is admitted by reference"
        assert not reaches(api, out["outsider"], out["server_ip"]), "another group of the VPC is not"
        assert sh(api, out["clients"], f"ping -c 1 -W 2 {out['db_ip']}")["exit_code"] == 0, \
            "the aws_vpc_security_group_ingress_rule naming the clients' group"
        assert sh(api, out["server"], f"ping -c 1 -W 2 {out['db_ip']}")["exit_code"] != 0, "web may not ping the db"
        assert set(nft_table(netserver.label)["sets"][f"members-{out['client']}"]) == {
            i["PrivateIpAddress"] for r in ec2.describe_instances(InstanceIds=[out["clients"]])["Reservations"]
            for i in r["Instances"]}
        assert planned_changes(tf) == {}, "no drift after apply"
    finally:
        tf.run("destroy", "-auto-approve", "-input=false", label="destroy")
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / "compat-terraform-vpc.json").write_text(json.dumps(tf.times, indent=2))
    assert ec2.describe_vpcs(Filters=[{"Name": "vpc-id", "Values": [out["vpc"]]}])["Vpcs"] == []
    assert bridge not in {b["name"] for b in bridges.list_bridges(netserver.label)}, "destroy removed the bridge"
