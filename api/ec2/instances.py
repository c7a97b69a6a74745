"""Instance actions of the EC2 API, named after the wire actions."""
from __future__ import annotations

import base64
import binascii
import time

from emulator.errors import InvalidParameter, NotFound
from emulator.services import Instance
from emulator.validation import NAME

from .catalog import ami_id, resolve_ami
from .params import filters, integer, members, required, tags, values

STATE_CODES = {"pending": 0, "running": 16, "shutting-down": 32, "terminated": 48, "stopping": 64, "stopped": 80}


def _state(name: str) -> dict:
    return {"code": STATE_CODES[name], "name": name}


def _iso(ts: float | None) -> str | None:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(ts)) if ts else None


def instance_xml(cloud, inst: Instance, group_names: dict[str, str]) -> dict:
    """`group_names`: the owner's security group id -> name (a deleted group shows its id only)."""
    region = cloud.config.region
    forwards = [p for p in inst.ports if p.get("host")]
    tags = [{"key": k, "value": v} for k, v in inst.tags.items()]
    tags += [{"key": f"pocketcloud:forward:{p['guest']}", "value": f"127.0.0.1:{p['host']}"} for p in forwards]
    groups = [{"groupId": gid, "groupName": group_names.get(gid, "")}
              for gid in inst.details.get("security_groups", [])]
    vm = inst.kind == "vm"
    reason = inst.state_reason
    return {
        "instanceId": inst.id,
        "imageId": ami_id(inst.image, inst.kind),
        "instanceState": _state(inst.state),
        "privateDnsName": f"ip-{inst.private_ip.replace('.', '-')}.ec2.internal" if inst.private_ip else "",
        "dnsName": "localhost" if forwards else "",
        "reason": reason,
        "keyName": inst.key_name,
        "amiLaunchIndex": inst.details.get("launch_index", 0),
        "productCodes": [],
        "instanceType": inst.type,
        "launchTime": _iso(inst.details.get("launched_at") or inst.created_at),
        "placement": {"availabilityZone": f"{region}a", "groupName": "", "tenancy": "default"},
        "monitoring": {"state": "disabled"},
        "privateIpAddress": inst.private_ip,
        "ipAddress": "127.0.0.1" if forwards and inst.state == "running" else None,
        "groupSet": groups,
        "stateReason": {"code": reason.split(":")[0], "message": reason} if reason else None,
        "architecture": "x86_64",
        "rootDeviceType": "ebs",
        "rootDeviceName": "/dev/vda" if vm else "/",
        "virtualizationType": "hvm",
        "clientToken": inst.details.get("client_token", ""),
        "tagSet": tags,
        "hypervisor": (inst.details.get("hypervisor") or "kvm") if vm else None,  # a container has none
        "platformDetails": "Linux/UNIX",
        "bootMode": "legacy-bios" if vm else None,
        "currentInstanceBootMode": "legacy-bios" if vm else None,
    }


def _reservation(cloud, caller, reservation_id: str, insts: list[Instance],
                 group_names: dict[str, str] | None = None) -> dict:
    if group_names is None:
        group_names = cloud.security_groups.names(caller.id)
    return {"reservationId": reservation_id, "ownerId": caller.id, "groupSet": [],
            "instancesSet": [instance_xml(cloud, i, group_names) for i in insts]}


def run_instances(cloud, caller, p) -> dict:
    ami = resolve_ami(cloud, required(p, "ImageId"))
    min_count = integer(p, "MinCount", 1, 1, 20)
    max_count = integer(p, "MaxCount", 1, 1, 20)
    if min_count > max_count:
        raise InvalidParameter("MinCount must not exceed MaxCount", code="InvalidParameterValue")
    user_data = p.get("UserData")
    if user_data:
        try:
            user_data = base64.b64decode(user_data, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise InvalidParameter("UserData must be base64-encoded UTF-8 text", code="InvalidUserData.Malformed") from None
    instance_tags = {}
    for spec in members(p, "TagSpecification"):
        if spec.get("ResourceType", "instance") == "instance":
            instance_tags.update(tags(spec, "Tag"))
    groups = values(p, "SecurityGroupId") + values(p, "SecurityGroup")
    reservation, insts = cloud.run_instances(
        caller, count=max_count, client_token=p.get("ClientToken") or None,
        image=ami["name"], kind=ami["kind"], type=p.get("InstanceType") or "t2.micro", user_data=user_data,
        tags=instance_tags or None, key_name=p.get("KeyName") or None,
        security_groups=groups or ["default"], name=instance_tags.get("Name") if _valid_name(instance_tags) else None)
    return _reservation(cloud, caller, reservation, insts)


def _valid_name(t: dict) -> bool:
    return bool(t.get("Name")) and bool(NAME.fullmatch(t["Name"]))


FILTERS = {"instance-state-name", "instance-state-code", "instance-type", "image-id", "instance-id", "key-name",
           "tag-key", "availability-zone"}


def _matches(cloud, inst: Instance, name: str, vals: list[str]) -> bool:
    if name == "instance-state-name":
        return inst.state in vals
    if name == "instance-state-code":
        return str(STATE_CODES[inst.state]) in vals
    if name == "instance-type":
        return inst.type in vals
    if name == "image-id":
        return ami_id(inst.image, inst.kind) in vals
    if name == "instance-id":
        return inst.id in vals
    if name == "key-name":
        return inst.key_name in vals
    if name == "tag-key":
        return any(k in inst.tags for k in vals)
    if name.startswith("tag:"):
        key = name[4:]
        return key in inst.tags and inst.tags[key] in vals
    if name == "availability-zone":
        return f"{cloud.config.region}a" in vals
    raise InvalidParameter(f"the filter '{name}' is invalid", code="InvalidParameterValue")


def _select(cloud, caller, p, ids_key: str = "InstanceId") -> list[Instance]:
    ids = values(p, ids_key)
    insts = cloud.describe_instances(caller, ids=ids or None)
    if ids:
        found = {i.id for i in insts}
        missing = [i for i in ids if i not in found]
        if missing:
            raise NotFound(f"the instance ID '{missing[0]}' does not exist", code="InvalidInstanceID.NotFound")
    for name, vals in filters(p).items():
        if name not in FILTERS and not name.startswith("tag:"):
            raise InvalidParameter(f"the filter '{name[:64]}' is invalid (supported: {', '.join(sorted(FILTERS))}, "
                                   "tag:KEY)", code="InvalidParameterValue")
        insts = [i for i in insts if _matches(cloud, i, name, vals)]
    return insts


def _page(p, items: list) -> tuple[list, str | None]:
    max_results = integer(p, "MaxResults", None, 5, 1000)
    token = p.get("NextToken")
    start = 0
    if token:
        try:
            start = int(base64.b64decode(token).decode())
        except (ValueError, binascii.Error):
            raise InvalidParameter("invalid NextToken", code="InvalidParameterValue") from None
    if max_results is None:
        return items[start:], None
    end = start + max_results
    return items[start:end], (base64.b64encode(str(end).encode()).decode() if end < len(items) else None)


def describe_instances(cloud, caller, p) -> dict:
    insts, token = _page(p, _select(cloud, caller, p))
    by_res: dict[str, list[Instance]] = {}
    for inst in insts:
        by_res.setdefault(inst.details.get("reservation_id") or "r-" + inst.id[2:], []).append(inst)
    names = cloud.security_groups.names(caller.id)
    return {"reservationSet": [_reservation(cloud, caller, r, i, names) for r, i in by_res.items()],
            "nextToken": token}


def describe_instance_status(cloud, caller, p) -> dict:
    insts = _select(cloud, caller, p)
    if p.get("IncludeAllInstances", "false").lower() != "true":
        insts = [i for i in insts if i.state == "running"]
    insts, token = _page(p, insts)
    status = lambda i: "ok" if i.state == "running" else "not-applicable"  # noqa: E731
    return {"instanceStatusSet": [{
        "instanceId": i.id,
        "availabilityZone": f"{cloud.config.region}a",
        "instanceState": _state(i.state),
        "systemStatus": {"status": status(i), "details": [{"name": "reachability", "status": "passed"}]
                         if i.state == "running" else []},
        "instanceStatus": {"status": status(i), "details": [{"name": "reachability", "status": "passed"}]
                           if i.state == "running" else []},
        "eventsSet": [],
    } for i in insts], "nextToken": token}


def _change(cloud, caller, p, action) -> dict:
    ids = values(p, "InstanceId")
    if not ids:
        raise InvalidParameter("the request must contain the parameter InstanceId", code="MissingParameter")
    for i in ids:  # all exist and are the caller's, or nothing is touched
        cloud.get_instance(caller, i)
    out = []
    for i in ids:
        inst, prev = action(caller, i)
        out.append({"instanceId": i, "currentState": _state(inst.state), "previousState": _state(prev)})
    return {"instancesSet": out}


def start_instances(cloud, caller, p) -> dict:
    return _change(cloud, caller, p, cloud.start_instance)


def stop_instances(cloud, caller, p) -> dict:
    return _change(cloud, caller, p, cloud.stop_instance)


def terminate_instances(cloud, caller, p) -> dict:
    return _change(cloud, caller, p, cloud.terminate_instance)


def reboot_instances(cloud, caller, p) -> dict:
    _change(cloud, caller, p, cloud.reboot_instance)
    return {"return": True}


def get_console_output(cloud, caller, p) -> dict:
    iid = required(p, "InstanceId")
    text = cloud.console_output(caller, iid, tail=5000)
    return {"instanceId": iid, "timestamp": _iso(time.time()),
            "output": base64.b64encode(text.encode()).decode()}
