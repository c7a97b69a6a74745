"""Instance actions of the EC2 API, named after the wire actions."""
from __future__ import annotations

import base64
import time

from emulator.errors import InvalidParameter, NotFound
from emulator.placement import placements
from emulator.services import Instance
from emulator.validation import NAME

from . import filtering
from .amis import resolve_ami
from .catalog import ami_id
from .instance_view import STATE_CODES, instance_xml, state
from .launch_options import check_launch_options
from .params import base64_text, dry_run, integer, mutating, required, tag_specifications, values
from .wire import iso, private_dns
from .launch_templates import with_launch_template


def reservations_xml(cloud, caller, by_reservation: dict[str, list[Instance]]) -> list[dict]:
    """One reservation element each; the caller's groups, placements and subnets are read once
    for all of them (per reservation, 200 one-instance reservations cost 200 times as much)."""
    names = cloud.security_groups.names(caller.id)
    where = placements(cloud, caller.id, [i for insts in by_reservation.values() for i in insts])
    zones = {s.id: s.zone for s in cloud.vpcs.subnets(caller.id, cloud.config.region)}
    return [{"reservationId": rid, "ownerId": caller.id, "groupSet": [],
             "instancesSet": [instance_xml(cloud, caller.id, i, names, where.get(i.id), zones) for i in insts]}
            for rid, insts in by_reservation.items()]


@mutating
def run_instances(cloud, caller, p) -> dict:
    p = with_launch_template(cloud, caller, p)  # LaunchTemplate=...: the template's values fill the gaps
    ami = resolve_ami(cloud, caller, required(p, "ImageId"))
    min_count = integer(p, "MinCount", 1, 1, 20)
    max_count = integer(p, "MaxCount", 1, 1, 20)
    if min_count > max_count:
        raise InvalidParameter("MinCount must not exceed MaxCount", code="InvalidParameterValue")
    user_data = base64_text(p["UserData"], "UserData", "InvalidUserData.Malformed") if p.get("UserData") else None
    launch = check_launch_options(cloud, p, ami)
    tag_sets = tag_specifications(p, ("instance", "volume", "network-interface"))
    instance_tags = tag_sets.get("instance", {})
    groups = launch.groups or values(p, "SecurityGroupId") + values(p, "SecurityGroup")
    if launch.subnet_id is not None:
        cloud.vpcs.subnet_for(caller.id, cloud.config.region, launch.subnet_id, launch.zone)
    for g in groups:
        cloud.security_groups.get(caller.id, g)
    if p.get("KeyName"):
        cloud.keypairs.get(caller.id, p["KeyName"])
    dry_run(p)
    reservation, insts = cloud.run_instances_in_subnet(
        caller, subnet_id=launch.subnet_id, zone=launch.zone, count=max_count,
        client_token=p.get("ClientToken") or None, image=ami["own"].id if ami.get("own") else ami["name"],
        kind=ami["kind"],
        type=p.get("InstanceType") or "t2.micro", user_data=user_data, tags=instance_tags or None,
        key_name=p.get("KeyName") or None, security_groups=groups or ["default"], block_devices=launch.block_devices,
        name=instance_tags.get("Name") if _valid_name(instance_tags) else None)
    where = placements(cloud, caller.id, insts)
    for kind, ids in (("volume", [v.id for w in where.values() for v in w.volumes]),
                      ("network-interface", [w.interface.id for w in where.values()])):
        if tag_sets.get(kind) and ids:
            cloud.resource_tags.set(caller.id, ids, tag_sets[kind])
    return reservations_xml(cloud, caller, {reservation: insts})[0]


def _valid_name(t: dict) -> bool:
    return bool(t.get("Name")) and bool(NAME.fullmatch(t["Name"]))


def _filters(cloud, caller, insts: list[Instance]) -> dict:
    where = placements(cloud, caller.id, insts)
    names = cloud.security_groups.names(caller.id)

    def at(attr):
        return lambda i: getattr(where[i.id].interface, attr) if i.id in where else None

    return {
        "instance-state-name": lambda i: i.state,
        "instance-state-code": lambda i: STATE_CODES[i.state],
        "instance-type": lambda i: i.type,
        "image-id": lambda i: ami_id(i.image, i.kind),
        "instance-id": lambda i: i.id,
        "key-name": lambda i: i.key_name,
        "availability-zone": lambda i: where[i.id].interface.zone if i.id in where else None,
        "subnet-id": at("subnet_id"),
        "vpc-id": at("vpc_id"),
        "network-interface.network-interface-id": at("id"),
        "private-ip-address": lambda i: i.private_ip,
        "private-dns-name": lambda i: private_dns(i.private_ip),
        "reservation-id": lambda i: i.details.get("reservation_id"),
        "client-token": lambda i: i.details.get("client_token"),
        "instance.group-id": lambda i: i.details.get("security_groups", []),
        "instance.group-name": lambda i: [names.get(g, "") for g in i.details.get("security_groups", [])],
        "group-id": lambda i: i.details.get("security_groups", []),
        "group-name": lambda i: [names.get(g, "") for g in i.details.get("security_groups", [])],
        "root-device-type": lambda i: "ebs",
        "architecture": lambda i: "x86_64",
        "hypervisor": lambda i: (i.details.get("hypervisor") or "kvm") if i.kind == "vm" else None,
        "launch-index": lambda i: i.details.get("launch_index", 0),
        "block-device-mapping.volume-id": lambda i: [v.id for v in where[i.id].volumes] if i.id in where else [],
    }


def _select(cloud, caller, p, ids_key: str = "InstanceId") -> list[Instance]:
    ids = values(p, ids_key)
    insts = cloud.describe_instances(caller, ids=ids or None)
    if ids:
        found = {i.id for i in insts}
        missing = [i for i in ids if i not in found]
        if missing:
            raise NotFound(f"The instance ID '{missing[0]}' does not exist", code="InvalidInstanceID.NotFound")
    if any(k.startswith("Filter.") for k in p):
        insts = filtering.apply(p, insts, _filters(cloud, caller, insts), tags=lambda i: i.tags)
    return insts


def describe_instances(cloud, caller, p) -> dict:
    insts, token = filtering.page(p, _select(cloud, caller, p), ids_param="InstanceId")
    by_res: dict[str, list[Instance]] = {}
    for inst in insts:
        by_res.setdefault(inst.details.get("reservation_id") or "r-" + inst.id[2:], []).append(inst)
    return {"reservationSet": reservations_xml(cloud, caller, by_res), "nextToken": token}


def describe_instance_status(cloud, caller, p) -> dict:
    insts = _select(cloud, caller, p)
    if p.get("IncludeAllInstances", "false").lower() != "true":
        insts = [i for i in insts if i.state == "running"]
    insts, token = filtering.page(p, insts, ids_param="InstanceId")
    where = placements(cloud, caller.id, insts)

    def status(i):
        return "ok" if i.state == "running" else "not-applicable"

    def checks(i):
        return [{"name": "reachability", "status": "passed"}] if i.state == "running" else []

    return {"instanceStatusSet": [{
        "instanceId": i.id,
        "availabilityZone": where[i.id].interface.zone if i.id in where else f"{cloud.config.region}a",
        "instanceState": state(i.state),
        "systemStatus": {"status": status(i), "details": checks(i)},
        "instanceStatus": {"status": status(i), "details": checks(i)},
        "attachedEbsStatus": {"status": status(i), "details": checks(i)},
        "eventsSet": [],
    } for i in insts], "nextToken": token}


def _change(cloud, caller, p, action) -> dict:
    ids = values(p, "InstanceId")
    if not ids:
        raise InvalidParameter("the request must contain the parameter InstanceId", code="MissingParameter")
    for i in ids:  # all exist and are the caller's, or nothing is touched
        cloud.get_instance(caller, i)
    dry_run(p)
    out = []
    for i in ids:
        inst, prev = action(caller, i)
        out.append({"instanceId": i, "currentState": state(inst.state), "previousState": state(prev)})
    return {"instancesSet": out}


@mutating
def start_instances(cloud, caller, p) -> dict:
    return _change(cloud, caller, p, cloud.start_instance)


@mutating
def stop_instances(cloud, caller, p) -> dict:
    if p.get("Hibernate", "false").lower() == "true":
        raise InvalidParameter("pocketcloud instances cannot hibernate; stop them without Hibernate",
                               code="UnsupportedHibernationConfiguration")
    return _change(cloud, caller, p, cloud.stop_instance)


@mutating
def terminate_instances(cloud, caller, p) -> dict:
    return _change(cloud, caller, p, cloud.terminate_instance)


@mutating
def reboot_instances(cloud, caller, p) -> dict:
    _change(cloud, caller, p, cloud.reboot_instance)
    return {"return": True}


def get_console_output(cloud, caller, p) -> dict:
    iid = required(p, "InstanceId")
    text = cloud.console_output(caller, iid, tail=5000)
    return {"instanceId": iid, "timestamp": iso(time.time()), "output": base64.b64encode(text.encode()).decode()}
