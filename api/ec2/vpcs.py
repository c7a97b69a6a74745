"""VPCs and subnets (create, delete, describe), DescribeNetworkInterfaces.

Each account has its default VPC with one default subnet per availability zone; instances get
a primary network interface and a root volume. CreateVpc/CreateSubnet record a block from
pocketcloud's IPAM (every VPC distinct on the host) and, with VPC networking on, make it a
real network before answering (emulator/vpc_ops.py).
"""
from __future__ import annotations

from emulator import validation
from emulator.errors import AlreadyExists, InvalidParameter, NotFound
from emulator.placement import placements
from emulator.validation import resource_id
from emulator.vpcs import ENI_ID

from . import filtering
from .catalog import zones
from .instance_view import interface_xml
from .params import boolean, dry_run, mutating, required, tag_specifications, values
from .wire import iso


def _tag_set(tags: dict[str, str]) -> list[dict]:
    return [{"key": k, "value": v} for k, v in tags.items()]


def _zone_ids(cloud) -> dict[str, str]:
    return {z["zoneName"]: z["zoneId"] for z in zones(cloud.config.region)}


# -- VPCs -----------------------------------------------------------------------------------
def _vpc_xml(cloud, caller, v, tags) -> dict:
    return {
        "vpcId": v.id, "ownerId": caller.id, "state": "available", "cidrBlock": v.cidr,
        "cidrBlockAssociationSet": [{"associationId": "vpc-cidr-assoc-" + v.id[4:], "cidrBlock": v.cidr,
                                     "cidrBlockState": {"state": "associated"}}],
        "ipv6CidrBlockAssociationSet": [], "dhcpOptionsId": "default", "instanceTenancy": "default",
        "isDefault": v.is_default, "tagSet": _tag_set(tags.get(v.id, {})),
    }


def describe_vpcs(cloud, caller, p) -> dict:
    vpcs = cloud.vpcs.list(caller.id, values(p, "VpcId") or None)
    tags = cloud.resource_tags.of(caller.id, [v.id for v in vpcs])
    table = {"vpc-id": lambda v: v.id, "cidr": lambda v: v.cidr, "cidr-block-association.cidr-block": lambda v: v.cidr,
             "cidr-block-association.state": lambda v: "associated", "dhcp-options-id": lambda v: "default",
             "is-default": lambda v: v.is_default, "isDefault": lambda v: v.is_default,
             "state": lambda v: "available", "owner-id": lambda v: caller.id, "instance-tenancy": lambda v: "default"}
    vpcs = filtering.apply(p, vpcs, table, tags=lambda v: tags.get(v.id, {}))
    vpcs, token = filtering.page(p, vpcs)
    return {"vpcSet": [_vpc_xml(cloud, caller, v, tags) for v in vpcs], "nextToken": token}


VPC_ATTRIBUTES = {"enableDnsSupport": True, "enableDnsHostnames": True, "enableNetworkAddressUsageMetrics": False}


def describe_vpc_attribute(cloud, caller, p) -> dict:
    attr = required(p, "Attribute")
    if attr not in VPC_ATTRIBUTES:
        raise InvalidParameter(f"Value ({attr[:40]}) for parameter attribute is invalid "
                               f"(valid: {', '.join(VPC_ATTRIBUTES)})", code="InvalidParameterValue")
    vpc = cloud.vpcs.get(caller.id, required(p, "VpcId"))
    return {"vpcId": vpc.id, attr: {"value": VPC_ATTRIBUTES[attr]}}


def _new_tags(cloud, caller, p, kind: str):
    """TagSpecification for a resource being created: checked before it is made, set after."""
    tags = validation.tags(tag_specifications(p, (kind,)).get(kind, {}))
    return lambda rid: cloud.resource_tags.set(caller.id, [rid], tags) if tags else None


@mutating
def create_vpc(cloud, caller, p) -> dict:
    cidr = required(p, "CidrBlock")
    if boolean(p, "AmazonProvidedIpv6CidrBlock") or p.get("Ipv4IpamPoolId") or p.get("Ipv6CidrBlock"):
        raise InvalidParameter("pocketcloud's VPCs are IPv4 blocks from its own IPAM: give CidrBlock only",
                               code="InvalidParameterCombination")
    if p.get("InstanceTenancy", "default") != "default":
        raise InvalidParameter("only the default instance tenancy exists on one host", code="InvalidParameterValue")
    tag = _new_tags(cloud, caller, p, "vpc")
    dry_run(p)
    vpc = cloud.create_vpc(caller, cidr)
    tag(vpc.id)
    return {"vpc": {**_vpc_xml(cloud, caller, vpc, cloud.resource_tags.of(caller.id, [vpc.id])), "state": "available"}}


@mutating
def delete_vpc(cloud, caller, p) -> dict:
    vpc_id = required(p, "VpcId")
    cloud.vpcs.get(caller.id, vpc_id)  # malformed, unknown, another account's: the AWS error first
    dry_run(p)
    cloud.delete_vpc(caller, vpc_id)
    return {"return": True}


@mutating
def create_subnet(cloud, caller, p) -> dict:
    vpc_id, cidr = required(p, "VpcId"), required(p, "CidrBlock")
    if p.get("Ipv6CidrBlock") or boolean(p, "Ipv6Native") or p.get("Ipv4IpamPoolId"):
        raise InvalidParameter("pocketcloud's subnets are IPv4 blocks inside their VPC: give CidrBlock only",
                               code="InvalidParameterCombination")
    zone = p.get("AvailabilityZone")
    if zone is None and p.get("AvailabilityZoneId"):
        by_id = {v: k for k, v in _zone_ids(cloud).items()}
        zone = by_id.get(p["AvailabilityZoneId"], p["AvailabilityZoneId"])
    tag = _new_tags(cloud, caller, p, "subnet")
    dry_run(p)
    subnet = cloud.create_subnet(caller, vpc_id, cidr, zone)
    tag(subnet.id)
    return {"subnet": _subnet_xml(cloud, caller, subnet, cloud.resource_tags.of(caller.id, [subnet.id]),
                                  _zone_ids(cloud))}


@mutating
def delete_subnet(cloud, caller, p) -> dict:
    subnet_id = required(p, "SubnetId")
    cloud.vpcs.subnets(caller.id, cloud.config.region, [subnet_id])
    dry_run(p)
    cloud.delete_subnet(caller, subnet_id)
    return {"return": True}


@mutating
def create_default_vpc(cloud, caller, p) -> dict:
    vpc = cloud.vpcs.default(caller.id)
    raise AlreadyExists(f"A Default VPC already exists for this account in this region ({vpc.id})",
                        code="DefaultVpcAlreadyExists")


# -- subnets --------------------------------------------------------------------------------
def _subnet_xml(cloud, caller, s, tags, zone_ids) -> dict:
    return {
        "subnetId": s.id, "subnetArn": f"arn:aws:ec2:{cloud.config.region}:{caller.id}:subnet/{s.id}",
        "state": "available", "vpcId": s.vpc_id, "ownerId": caller.id, "cidrBlock": s.cidr,
        "ipv6CidrBlockAssociationSet": [], "availableIpAddressCount": s.available_ips,
        "availabilityZone": s.zone, "availabilityZoneId": zone_ids.get(s.zone, ""),
        "defaultForAz": s.is_default, "mapPublicIpOnLaunch": s.is_default, "mapCustomerOwnedIpOnLaunch": False,
        "assignIpv6AddressOnCreation": False, "enableDns64": False, "ipv6Native": False,
        "privateDnsNameOptionsOnLaunch": {"hostnameType": "ip-name", "enableResourceNameDnsARecord": False,
                                          "enableResourceNameDnsAAAARecord": False},
        "tagSet": _tag_set(tags.get(s.id, {})),
    }


def describe_subnets(cloud, caller, p) -> dict:
    subnets = cloud.vpcs.subnets(caller.id, cloud.config.region, values(p, "SubnetId") or None)
    tags = cloud.resource_tags.of(caller.id, [s.id for s in subnets])
    zone_ids = _zone_ids(cloud)
    table = {"subnet-id": lambda s: s.id, "vpc-id": lambda s: s.vpc_id, "availability-zone": lambda s: s.zone,
             "availabilityZone": lambda s: s.zone, "availability-zone-id": lambda s: zone_ids.get(s.zone),
             "cidr-block": lambda s: s.cidr, "cidrBlock": lambda s: s.cidr, "cidr": lambda s: s.cidr,
             "default-for-az": lambda s: s.is_default, "defaultForAz": lambda s: s.is_default,
             "state": lambda s: "available", "owner-id": lambda s: caller.id,
             "map-public-ip-on-launch": lambda s: True,
             "available-ip-address-count": lambda s: s.available_ips,
             "subnet-arn": lambda s: f"arn:aws:ec2:{cloud.config.region}:{caller.id}:subnet/{s.id}"}
    subnets = filtering.apply(p, subnets, table, tags=lambda s: tags.get(s.id, {}))
    subnets, token = filtering.page(p, subnets)
    return {"subnetSet": [_subnet_xml(cloud, caller, s, tags, zone_ids) for s in subnets], "nextToken": token}


# -- network interfaces ------------------------------------------------------------------
def _live(cloud, caller):
    insts = [i for i in cloud.describe_instances(caller) if i.state != "terminated"]
    return {i.id: i for i in insts}, placements(cloud, caller.id, insts)


def describe_network_interfaces(cloud, caller, p) -> dict:
    insts, where = _live(cloud, caller)
    enis = [(insts[iid], w) for iid, w in where.items()]
    ids = values(p, "NetworkInterfaceId")
    if ids:
        for i in ids:
            resource_id(i, ENI_ID, "eni", "InvalidNetworkInterfaceID")
        missing = [i for i in ids if i not in {w.interface.id for _, w in enis}]
        if missing:  # another account's interface answers like a missing one
            raise NotFound(f"The networkInterface ID '{missing[0]}' does not exist",
                           code="InvalidNetworkInterfaceID.NotFound")
        enis = [(i, w) for i, w in enis if w.interface.id in ids]
    tags = cloud.resource_tags.of(caller.id, [w.interface.id for _, w in enis])
    names = cloud.security_groups.names(caller.id)
    zone_ids = _zone_ids(cloud)
    table = {"network-interface-id": lambda e: e[1].interface.id, "attachment.instance-id": lambda e: e[0].id,
             "attachment.attachment-id": lambda e: e[1].interface.attachment_id,
             "attachment.status": lambda e: "attached", "attachment.device-index": lambda e: 0,
             "attachment.delete-on-termination": lambda e: True, "vpc-id": lambda e: e[1].interface.vpc_id,
             "subnet-id": lambda e: e[1].interface.subnet_id, "availability-zone": lambda e: e[1].interface.zone,
             "availability-zone-id": lambda e: zone_ids.get(e[1].interface.zone), "status": lambda e: "in-use",
             "mac-address": lambda e: e[1].interface.mac, "private-ip-address": lambda e: e[0].private_ip,
             "addresses.private-ip-address": lambda e: e[0].private_ip,
             "group-id": lambda e: e[0].details.get("security_groups", []),
             "group-name": lambda e: [names.get(g, "") for g in e[0].details.get("security_groups", [])],
             "description": lambda e: "Primary network interface", "owner-id": lambda e: caller.id,
             "interface-type": lambda e: "interface", "source-dest-check": lambda e: True,
             "requester-managed": lambda e: False}
    enis = filtering.apply(p, enis, table, tags=lambda e: tags.get(e[1].interface.id, {}))
    enis, token = filtering.page(p, enis, ids_param="NetworkInterfaceId")
    out = []
    for inst, w in enis:
        x = interface_xml(caller.id, inst, w, names, True)
        x["tagSet"] = _tag_set(tags.get(w.interface.id, {}))
        x["availabilityZoneId"] = zone_ids.get(w.interface.zone)
        out.append(x)
    return {"networkInterfaceSet": out, "nextToken": token}
