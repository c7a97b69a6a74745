"""DescribeRouteTables, DescribeNetworkAcls and ModifyVpcAttribute for pocketcloud's VPCs, as
Terraform's aws_vpc and aws_subnet read them.

What they answer is what the host does. Each VPC has one main route table with its local
route (its subnets' bridges reach each other through the host; outbound traffic leaves by the
host's NAT, which is no route-table entry), associated with every subnet implicitly, and one
default network ACL that allows everything both ways: pocketcloud filters with security groups
only. Their ids follow from the VPC's and subnets' ids, so they are stable and need no records.
The DNS attributes are fixed (instances resolve through their engine's DNS): setting one to
the value it has succeeds, anything else is refused, saying why.
"""
from __future__ import annotations

from emulator.errors import InvalidParameter, NotFound

from . import filtering
from .params import dry_run, mutating, required, values
from .vpcs import VPC_ATTRIBUTES


def _suffix(resource_id: str) -> str:
    return resource_id.split("-", 1)[1]


def _named(items: list[dict], key: str, wanted: list[str], what: str, code: str) -> list[dict]:
    """The items whose `key` is among the ids asked for (all when none is); an id that is not the
    caller's answers as a missing one does."""
    have = {i[key] for i in items}
    for rid in wanted:
        if rid not in have:
            raise NotFound(f"The {what} ID '{str(rid)[:40]}' does not exist", code=code)
    return [i for i in items if not wanted or i[key] in wanted]


def _route_table(caller, vpc) -> dict:
    rtb = "rtb-" + _suffix(vpc.id)
    return {
        "routeTableId": rtb, "vpcId": vpc.id, "ownerId": caller.id,
        "routeSet": [{"destinationCidrBlock": vpc.cidr, "gatewayId": "local", "state": "active",
                      "origin": "CreateRouteTable"}],
        "associationSet": [{"routeTableAssociationId": "rtbassoc-" + _suffix(vpc.id), "routeTableId": rtb,
                            "main": True, "associationState": {"state": "associated"}}],
        "propagatingVgwSet": [], "tagSet": [],
    }


def describe_route_tables(cloud, caller, p) -> dict:
    tables = _named([_route_table(caller, v) for v in cloud.vpcs.list(caller.id)], "routeTableId",
                    values(p, "RouteTableId"), "routeTable", "InvalidRouteTableID.NotFound")
    table = {"vpc-id": lambda t: t["vpcId"], "route-table-id": lambda t: t["routeTableId"],
             "owner-id": lambda t: t["ownerId"], "association.main": lambda t: True,
             "association.route-table-association-id": lambda t: t["associationSet"][0]["routeTableAssociationId"],
             "association.route-table-id": lambda t: t["routeTableId"],
             "association.subnet-id": lambda t: [],  # subnets use the main table implicitly, as on AWS
             "route.destination-cidr-block": lambda t: [r["destinationCidrBlock"] for r in t["routeSet"]],
             "route.gateway-id": lambda t: "local", "route.state": lambda t: "active"}
    tables, token = filtering.page(p, filtering.apply(p, tables, table, tags=lambda t: {}), ids_param="RouteTableId")
    return {"routeTableSet": tables, "nextToken": token}


def _acl(caller, vpc, subnets) -> dict:
    acl = "acl-" + _suffix(vpc.id)
    entries = [{"ruleNumber": number, "protocol": "-1", "ruleAction": action, "egress": egress,
                "cidrBlock": "0.0.0.0/0"}
               for egress in (False, True) for number, action in ((100, "allow"), (32767, "deny"))]
    return {
        "networkAclId": acl, "vpcId": vpc.id, "ownerId": caller.id, "default": True, "entrySet": entries,
        "associationSet": [{"networkAclAssociationId": "aclassoc-" + _suffix(s.id), "networkAclId": acl,
                            "subnetId": s.id} for s in subnets if s.vpc_id == vpc.id],
        "tagSet": [],
    }


def describe_network_acls(cloud, caller, p) -> dict:
    subnets = cloud.vpcs.subnets(caller.id, cloud.config.region)
    acls = _named([_acl(caller, v, subnets) for v in cloud.vpcs.list(caller.id)], "networkAclId",
                  values(p, "NetworkAclId"), "networkAcl", "InvalidNetworkAclID.NotFound")
    table = {"vpc-id": lambda a: a["vpcId"], "network-acl-id": lambda a: a["networkAclId"],
             "owner-id": lambda a: a["ownerId"], "default": lambda a: True,
             "association.subnet-id": lambda a: [x["subnetId"] for x in a["associationSet"]],
             "association.network-acl-id": lambda a: a["networkAclId"],
             "association.association-id": lambda a: [x["networkAclAssociationId"] for x in a["associationSet"]],
             "entry.rule-number": lambda a: [e["ruleNumber"] for e in a["entrySet"]],
             "entry.rule-action": lambda a: [e["ruleAction"] for e in a["entrySet"]]}
    acls, token = filtering.page(p, filtering.apply(p, acls, table, tags=lambda a: {}), ids_param="NetworkAclId")
    return {"networkAclSet": acls, "nextToken": token}


@mutating
def modify_vpc_attribute(cloud, caller, p) -> dict:
    vpc = cloud.vpcs.get(caller.id, required(p, "VpcId"))  # another account's VPC: not found
    asked = {attr: p[f"{attr[0].upper()}{attr[1:]}.Value"] for attr in VPC_ATTRIBUTES
             if f"{attr[0].upper()}{attr[1:]}.Value" in p}
    if len(asked) != 1:
        raise InvalidParameter("give exactly one of EnableDnsSupport, EnableDnsHostnames, "
                               "EnableNetworkAddressUsageMetrics", code="InvalidParameterCombination")
    (attr, raw), = asked.items()
    if str(raw).lower() not in ("true", "false"):
        raise InvalidParameter(f"Value ({str(raw)[:20]}) for parameter {attr} is invalid: true or false",
                               code="InvalidParameterValue")
    value = str(raw).lower() == "true"
    if value != VPC_ATTRIBUTES[attr]:
        raise InvalidParameter(f"pocketcloud's VPCs always have {attr} {str(VPC_ATTRIBUTES[attr]).lower()}: "
                               f"{vpc.id} keeps it", code="UnsupportedOperation")
    dry_run(p)
    return {"return": True}
