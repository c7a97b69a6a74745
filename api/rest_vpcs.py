"""JSON REST for VPCs and subnets under /api/v1 (the CLI and curl); the same services as EC2's
CreateVpc/CreateSubnet/DeleteVpc/DeleteSubnet (emulator/vpc_ops.py), the same errors.

    GET    /api/v1/vpcs                                   the caller's VPCs
    POST   /api/v1/vpcs     {"cidr"}                      a VPC of that block (InvalidVpc.Range if taken)
    DELETE /api/v1/vpcs/ID                                (DependencyViolation while it has subnets)
    GET    /api/v1/subnets[?vpc=ID]                       the caller's subnets
    POST   /api/v1/subnets  {"vpc", "cidr", "zone"?}      a subnet inside the VPC (zone: a letter or a name)
    DELETE /api/v1/subnets/ID                             (DependencyViolation while instances are in it)
"""
from __future__ import annotations

from flask import Blueprint, g, jsonify, request

from emulator.errors import InvalidParameter
from emulator.networks.model import bridge_name
from emulator.vpcs import Subnet, Vpc

from .rest import authenticated, body, cloud

bp = Blueprint("rest_vpcs", __name__, url_prefix="/api/v1")


def vpc_dict(v: Vpc) -> dict:
    return {"id": v.id, "cidr": v.cidr, "default": v.is_default}


def subnet_dict(s: Subnet) -> dict:
    net = cloud().network
    return {"id": s.id, "vpc": s.vpc_id, "cidr": s.cidr, "zone": s.zone, "default": s.is_default,
            "available_ips": s.available_ips, "bridge": bridge_name(s.id) if net.enabled else None}


def _field(data: dict, name: str, required: bool = True):
    value = data.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise InvalidParameter(f"'{name}' is required: a string", code="MissingParameter")
    return value


@bp.get("/vpcs")
@authenticated
def list_vpcs():
    return jsonify({"vpcs": [vpc_dict(v) for v in cloud().vpcs.list(g.account.id)]})


@bp.post("/vpcs")
@authenticated
def create_vpc():
    return jsonify(vpc_dict(cloud().create_vpc(g.account, _field(body(), "cidr")))), 201


@bp.delete("/vpcs/<vpc_id>")
@authenticated
def delete_vpc(vpc_id: str):
    cloud().delete_vpc(g.account, vpc_id)
    return "", 204


@bp.get("/subnets")
@authenticated
def list_subnets():
    c = cloud()
    subnets = c.vpcs.subnets(g.account.id, c.config.region)
    vpc = request.args.get("vpc")
    if vpc:
        c.vpcs.get(g.account.id, vpc)
        subnets = [s for s in subnets if s.vpc_id == vpc]
    return jsonify({"subnets": [subnet_dict(s) for s in subnets]})


@bp.post("/subnets")
@authenticated
def create_subnet():
    c, data = cloud(), body()
    zone = _field(data, "zone", required=False)
    if zone is not None and len(zone) == 1:
        zone = c.config.region + zone  # a zone letter, as the CLI's --zones takes them
    subnet = c.create_subnet(g.account, _field(data, "vpc"), _field(data, "cidr"), zone)
    return jsonify(subnet_dict(subnet)), 201


@bp.delete("/subnets/<subnet_id>")
@authenticated
def delete_subnet(subnet_id: str):
    cloud().delete_subnet(g.account, subnet_id)
    return "", 204
