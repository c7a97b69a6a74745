"""An instance as EC2 describes it: state, placement (subnet, VPC, zone), its primary network
interface, its root volume, and the AWS defaults for every setting pocketcloud does not vary
(tools such as Terraform read them back and compare)."""
from __future__ import annotations

from emulator.compute.types import INSTANCE_TYPES
from emulator.placement import Placement
from emulator.services import Instance
from emulator.volumes import ROOT_DEVICE

from .catalog import ami_id
from .wire import iso, private_dns

STATE_CODES = {"pending": 0, "running": 16, "shutting-down": 32, "terminated": 48, "stopping": 64, "stopped": 80}


def state(name: str) -> dict:
    return {"code": STATE_CODES[name], "name": name}


def _groups(inst: Instance, group_names: dict[str, str]) -> list[dict]:
    """A deleted group shows its id only."""
    return [{"groupId": gid, "groupName": group_names.get(gid, "")} for gid in inst.details.get("security_groups", [])]


def interface_xml(owner: str, inst: Instance, where: Placement, group_names: dict[str, str],
                  with_instance: bool) -> dict:
    eni = where.interface
    ip = inst.private_ip
    out = {
        "networkInterfaceId": eni.id, "subnetId": eni.subnet_id, "vpcId": eni.vpc_id,
        "description": "Primary network interface", "ownerId": owner,
        "status": "in-use", "macAddress": eni.mac, "privateIpAddress": ip, "privateDnsName": private_dns(ip),
        "sourceDestCheck": True, "groupSet": _groups(inst, group_names),
        "attachment": {"attachmentId": eni.attachment_id, "deviceIndex": 0, "networkCardIndex": 0,
                       "status": "attached", "attachTime": iso(eni.created_at), "deleteOnTermination": True,
                       **({"instanceId": inst.id, "instanceOwnerId": owner} if with_instance else {})},
        "privateIpAddressesSet": [{"privateIpAddress": ip, "privateDnsName": private_dns(ip), "primary": True}]
        if ip else [],
        "ipv6AddressesSet": [], "interfaceType": "interface",
    }
    if with_instance:
        out.update(availabilityZone=eni.zone, requesterManaged=False, tagSet=[])
    return out


def instance_xml(cloud, owner: str, inst: Instance, group_names: dict[str, str],
                 where: Placement | None, zones: dict[str, str] | None = None) -> dict:
    """`where` is None once the instance is terminated (its interface and root volume went
    with it); `zones` (subnet id -> zone) still places it where it ran."""
    forwards = [p for p in inst.ports if p.get("host")]
    tags = [{"key": k, "value": v} for k, v in inst.tags.items()]
    tags += [{"key": f"aws:pocketcloud:forward:{p['guest']}", "value": f"127.0.0.1:{p['host']}"} for p in forwards]
    vm = inst.kind == "vm"
    reason = inst.state_reason
    zone = where.interface.zone if where else (zones or {}).get(inst.details.get("subnet_id"),
                                                                  f"{cloud.config.region}a")
    vcpus = INSTANCE_TYPES[inst.type].vcpus if inst.type in INSTANCE_TYPES else 1
    return {
        "instanceId": inst.id,
        "imageId": ami_id(inst.image, inst.kind),
        "instanceState": state(inst.state),
        "privateDnsName": private_dns(inst.private_ip),
        "dnsName": "localhost" if forwards else "",
        "reason": reason,
        "keyName": inst.key_name,
        "amiLaunchIndex": inst.details.get("launch_index", 0),
        "productCodes": [],
        "instanceType": inst.type,
        "launchTime": iso(inst.details.get("launched_at") or inst.created_at),
        "placement": {"availabilityZone": zone, "groupName": "", "tenancy": "default"},
        "monitoring": {"state": "disabled"},
        "subnetId": where.interface.subnet_id if where else None,
        "vpcId": where.interface.vpc_id if where else None,
        "privateIpAddress": inst.private_ip,
        "ipAddress": "127.0.0.1" if forwards and inst.state == "running" else None,
        "sourceDestCheck": True if where else None,
        "groupSet": _groups(inst, group_names),
        "stateReason": {"code": reason.split(":")[0], "message": reason} if reason else None,
        "architecture": "x86_64",
        "rootDeviceType": "ebs",
        "rootDeviceName": ROOT_DEVICE[inst.kind],
        "blockDeviceMapping": [{"deviceName": v.device, "ebs": {
            "volumeId": v.id, "status": "attaching" if v.state in ("creating", "attaching") else "attached",
            "attachTime": iso(v.created_at),
            "deleteOnTermination": v.delete_on_termination}} for v in where.volumes] if where else [],
        "virtualizationType": "hvm",
        "clientToken": inst.details.get("client_token", ""),
        "tagSet": tags,
        "hypervisor": (inst.details.get("hypervisor") or "kvm") if vm else None,  # a container has none
        "networkInterfaceSet": [interface_xml(owner, inst, where, group_names, False)] if where else [],
        "ebsOptimized": False,
        "enaSupport": False,
        "cpuOptions": {"coreCount": vcpus, "threadsPerCore": 1},
        "capacityReservationSpecification": {"capacityReservationPreference": "open"},
        "hibernationOptions": {"configured": False},
        "metadataOptions": {"state": "applied", "httpTokens": "optional", "httpPutResponseHopLimit": 1,
                            "httpEndpoint": "enabled", "httpProtocolIpv6": "disabled",
                            "instanceMetadataTags": "disabled"},
        "enclaveOptions": {"enabled": False},
        "maintenanceOptions": {"autoRecovery": "default"},
        "privateDnsNameOptions": {"hostnameType": "ip-name", "enableResourceNameDnsARecord": False,
                                  "enableResourceNameDnsAAAARecord": False},
        "platformDetails": "Linux/UNIX",
        "usageOperation": "RunInstances",
        "bootMode": "legacy-bios" if vm else None,
        "currentInstanceBootMode": "legacy-bios" if vm else None,
    }
