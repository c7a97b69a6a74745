"""DescribeInstanceAttribute, ModifyInstanceAttribute, DescribeInstanceCreditSpecifications.

The instance type and user data change as on AWS: only on a stopped instance (tools stop,
modify, start). Attributes pocketcloud does not vary read as AWS's defaults, and a request
to set one of them to anything else is refused with the reason (a write that would not
happen is an error, never a silent no-op).
"""
from __future__ import annotations

import base64

from emulator.errors import InvalidParameter, NotFound
from emulator.placement import placements

from . import filtering
from .instance_view import instance_xml
from .params import attribute_value, base64_text, boolean, dry_run, members, mutating, required, values

# wire attribute name -> the value pocketcloud always has (for the boolean/text ones)
FIXED = {
    "disableApiTermination": ("DisableApiTermination", "false"),
    "disableApiStop": ("DisableApiStop", "false"),
    "instanceInitiatedShutdownBehavior": ("InstanceInitiatedShutdownBehavior", "stop"),
    "sourceDestCheck": ("SourceDestCheck", "true"),
    "ebsOptimized": ("EbsOptimized", "false"),
    "enaSupport": ("EnaSupport", "false"),
}
ATTRIBUTES = ("instanceType", "kernel", "ramdisk", "userData", "rootDeviceName", "blockDeviceMapping",
              "productCodes", "groupSet", "sriovNetSupport", "enclaveOptions", *FIXED)


def _bool(v: str) -> bool:
    return v == "true"


def describe_instance_attribute(cloud, caller, p) -> dict:
    attr = required(p, "Attribute")
    if attr not in ATTRIBUTES:
        raise InvalidParameter(f"Value ({attr[:40]}) for parameter attribute is invalid. Valid attributes: "
                               f"{', '.join(ATTRIBUTES)}", code="InvalidParameterValue")
    inst = cloud.get_instance(caller, required(p, "InstanceId"))
    out: dict = {"instanceId": inst.id}
    if attr in FIXED:
        value = FIXED[attr][1]
        out[attr] = {"value": _bool(value) if value in ("true", "false") else value}
    elif attr == "instanceType":
        out[attr] = {"value": inst.type}
    elif attr == "userData":
        out[attr] = {"value": base64.b64encode(inst.user_data.encode()).decode()} if inst.user_data else {}
    elif attr in ("kernel", "ramdisk", "sriovNetSupport"):
        out[attr] = {}
    elif attr == "productCodes":
        out[attr] = []
    elif attr == "enclaveOptions":
        out[attr] = {"enabled": False}
    else:
        full = instance_xml(cloud, caller.id, inst, cloud.security_groups.names(caller.id),
                            placements(cloud, caller.id, [inst]).get(inst.id))
        out[attr] = {"value": full[attr]} if attr == "rootDeviceName" else full[attr]
    return out


@mutating
def modify_instance_attribute(cloud, caller, p) -> dict:
    iid = required(p, "InstanceId")
    asked = {name: v for name in ("InstanceType", "UserData", "Kernel", "Ramdisk", "SriovNetSupport",
                                  *(w for w, _ in FIXED.values()))
             if (v := attribute_value(p, name)) is not None}
    if values(p, "GroupId"):
        asked["GroupId"] = ",".join(values(p, "GroupId"))
    if any(k.startswith("BlockDeviceMapping.") for k in p):
        asked["BlockDeviceMapping"] = "…"
    if len(asked) != 1:
        raise InvalidParameter("Fields for multiple attribute types specified" if asked else
                               "the request must name one attribute to modify", code="InvalidParameterCombination")
    (name, value), = asked.items()
    cloud.get_instance(caller, iid)  # another account's instance answers NotFound before anything else
    fixed = {wire: default for wire, default in FIXED.values()}
    if name in fixed:
        if value.lower() != fixed[name]:
            raise InvalidParameter(f"pocketcloud cannot set {name} to {value[:20]}: it is always {fixed[name]} here",
                                   code="UnsupportedOperation")
        dry_run(p)
        return {"return": True}
    if name in ("InstanceType", "UserData"):
        kwargs = {"type": value} if name == "InstanceType" else {"user_data": base64_text(value, "UserData.Value", "InvalidParameterValue")}
        dry_run(p)
        cloud.modify_instance(caller, iid, **kwargs)
        return {"return": True}
    if name == "BlockDeviceMapping":
        return _modify_block_devices(cloud, caller, iid, p)
    if name == "GroupId":
        groups = values(p, "GroupId")
        for g in groups:  # a malformed or unknown group (another account's too) before the dry run
            cloud.security_groups.get(caller.id, g)
        dry_run(p)
        cloud.modify_instance_groups(caller, iid, groups)
        return {"return": True}
    why = {"Kernel": "the kernel comes with the image", "Ramdisk": "the initrd comes with the image",
           "SriovNetSupport": "there is no SR-IOV here"}[name]
    raise InvalidParameter(f"pocketcloud cannot modify {name}: {why}", code="UnsupportedOperation")


def _modify_block_devices(cloud, caller, iid: str, p) -> dict:
    """DeleteOnTermination of attached volumes; the root volume's is always true here."""
    changes = []
    for m in members(p, "BlockDeviceMapping"):
        device, flag = m.get("DeviceName"), m.get("Ebs.DeleteOnTermination")
        if not device or flag is None:
            raise InvalidParameter("each BlockDeviceMapping needs a DeviceName and Ebs.DeleteOnTermination",
                                   code="InvalidParameterCombination")
        changes.append((device, boolean({"v": flag}, "v")))
    mine = [v for v in cloud.describe_volumes(caller) if v.instance_id == iid]
    roots = {v.device for v in mine if v.root}
    for device, flag in changes:
        if device not in {v.device for v in mine}:
            raise InvalidParameter(f"The device '{str(device)[:40]}' is not attached to {iid}",
                                   code="InvalidInstanceAttributeValue")
        if device in roots and not flag:
            raise InvalidParameter("pocketcloud cannot keep a root volume: it is always deleted with its instance",
                                   code="UnsupportedOperation")
    dry_run(p)
    for device, flag in changes:
        if device not in roots:
            cloud.set_delete_on_termination(caller, iid, device, flag)
    return {"return": True}


def describe_instance_credit_specifications(cloud, caller, p) -> dict:
    ids = values(p, "InstanceId")
    insts = cloud.describe_instances(caller, ids=ids or None)
    if ids:
        missing = [i for i in ids if i not in {x.id for x in insts}]
        if missing:
            raise NotFound(f"The instance ID '{missing[0]}' does not exist", code="InvalidInstanceID.NotFound")
        fixed = [i for i in insts if not i.type.startswith("t")]
        if fixed:
            raise InvalidParameter(f"The instance {fixed[0].id} ({fixed[0].type}) does not use CPU credits",
                                   code="InstanceCreditSpecification.NotSupported")
    insts = [i for i in insts if i.type.startswith("t") and i.state != "terminated"]
    insts = filtering.apply(p, insts, {"instance-id": lambda i: i.id})
    insts, token = filtering.page(p, insts, ids_param="InstanceId")
    return {"instanceCreditSpecificationSet": [
        {"instanceId": i.id, "cpuCredits": "unlimited" if i.type.startswith("t3") else "standard"} for i in insts],
        "nextToken": token}
