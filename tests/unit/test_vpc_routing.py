"""DescribeRouteTables, DescribeNetworkAcls and ModifyVpcAttribute answer what the host does for
each VPC of the caller (fake engines; Terraform reads them in tests/compat/test_terraform_vpc.py)."""
from __future__ import annotations

import pytest

from api.ec2 import vpc_routing
from emulator.config import Config
from emulator.errors import InvalidParameter, NotFound
from emulator.services import Cloud
from tests.fakes import FakeDriver


@pytest.fixture
def cloud(tmp_path):
    c = Cloud(Config(home=tmp_path / "home", recipes_dir=tmp_path / "none"), drivers={"container": FakeDriver()})
    c.vpcs.taken = lambda: set()
    return c


def test_each_vpc_has_a_main_route_table_and_an_allow_all_acl(cloud):
    alice, _ = cloud.accounts.create("alice")
    bob, _ = cloud.accounts.create("bob")
    vpc = cloud.create_vpc(alice, "10.77.0.0/16")
    sub = cloud.create_subnet(alice, vpc.id, "10.77.1.0/24", "us-east-1a")
    cloud.vpcs.default(bob.id)
    tables = vpc_routing.describe_route_tables(cloud, alice, {
        "Filter.1.Name": "vpc-id", "Filter.1.Value.1": vpc.id})["routeTableSet"]
    [t] = tables
    assert t["routeSet"] == [{"destinationCidrBlock": "10.77.0.0/16", "gatewayId": "local", "state": "active",
                              "origin": "CreateRouteTable"}]
    assert t["associationSet"][0]["main"] is True
    mine = vpc_routing.describe_route_tables(cloud, alice, {})["routeTableSet"]
    assert len(mine) == 2 and t["routeTableId"] in {x["routeTableId"] for x in mine}, "its default VPC's and this"
    with pytest.raises(NotFound) as e:  # another account's table is not found
        vpc_routing.describe_route_tables(cloud, bob, {"RouteTableId.1": t["routeTableId"]})
    assert e.value.code == "InvalidRouteTableID.NotFound"
    [acl] = vpc_routing.describe_network_acls(cloud, alice, {
        "Filter.1.Name": "association.subnet-id", "Filter.1.Value.1": sub.id})["networkAclSet"]
    assert acl["vpcId"] == vpc.id and acl["default"] is True
    assert {(e["egress"], e["ruleNumber"], e["ruleAction"]) for e in acl["entrySet"]} == {
        (False, 100, "allow"), (False, 32767, "deny"), (True, 100, "allow"), (True, 32767, "deny")}
    assert [a["subnetId"] for a in acl["associationSet"]] == [sub.id]


def test_modify_vpc_attribute_accepts_what_holds_and_refuses_the_rest(cloud):
    alice, _ = cloud.accounts.create("alice")
    bob, _ = cloud.accounts.create("bob")
    vpc = cloud.vpcs.default(alice.id)
    assert vpc_routing.modify_vpc_attribute(cloud, alice, {"VpcId": vpc.id, "EnableDnsHostnames.Value": "true"}) \
        == {"return": True}
    for p, code in [({"EnableDnsSupport.Value": "false"}, "UnsupportedOperation"),
                    ({"EnableDnsSupport.Value": "maybe"}, "InvalidParameterValue"),
                    ({}, "InvalidParameterCombination"),
                    ({"EnableDnsSupport.Value": "true", "EnableDnsHostnames.Value": "true"},
                     "InvalidParameterCombination")]:
        with pytest.raises(InvalidParameter) as e:
            vpc_routing.modify_vpc_attribute(cloud, alice, {"VpcId": vpc.id, **p})
        assert e.value.code == code
    with pytest.raises(NotFound):
        vpc_routing.modify_vpc_attribute(cloud, bob, {"VpcId": vpc.id, "EnableDnsHostnames.Value": "true"})
