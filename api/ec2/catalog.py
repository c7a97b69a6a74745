"""The catalog's images (described with an account's own in amis.py), DescribeInstanceTypes, DescribeRegions, DescribeAvailabilityZones,
DescribeAccountAttributes.

Each (image name, kind) pair of the catalog is one AMI: its id is derived from both, so
`tiny` has one ami- for its VM and another for its container, and the kind shows in the
name, the description and a tag. Catalog images belong to the cloud itself: owner id
000000000000, owner alias `pocketcloud` (so `owners = ["pocketcloud"]` finds them).
"""
from __future__ import annotations

import hashlib
import re

from emulator.compute.types import INSTANCE_TYPES
from emulator.errors import InvalidParameter
from emulator.validation import resource_id
from emulator.volumes import GP3, ROOT_DEVICE, root_size_gib

from . import filtering
from .params import boolean, values
from .wire import iso

AMI = re.compile(r"ami-[0-9a-f]{17}")
CATALOG_OWNER = "000000000000"
CATALOG_ALIAS = "pocketcloud"
ZONES = ("a", "b", "c")


def ami_id(name: str, kind: str) -> str:
    """A catalog image's id; an instance launched from an image of its owner's records its id."""
    if AMI.fullmatch(name):
        return name
    return "ami-" + hashlib.sha256(f"{name}:{kind}".encode()).hexdigest()[:17]


def all_amis(cloud) -> list[dict]:
    out = []
    for img in cloud.list_images():
        for kind, info in img["kinds"].items():
            out.append({**info, "id": ami_id(img["name"], kind), "name": img["name"], "kind": kind})
    return out


def catalog_ami(cloud, image_id: str) -> dict | None:
    resource_id(image_id, AMI, "ami", "InvalidAMIID")
    return next((ami for ami in all_amis(cloud) if ami["id"] == image_id), None)


def _image_xml(ami: dict) -> dict:
    vm = ami["kind"] == "vm"
    root = ROOT_DEVICE[ami["kind"]]
    return {
        "imageId": ami["id"],
        "imageLocation": f"pocketcloud/{ami['name']}/{ami['kind']}",
        "imageState": "available",
        "imageOwnerId": CATALOG_OWNER,
        "imageOwnerAlias": CATALOG_ALIAS,
        "creationDate": iso(ami.get("built_at")),
        "isPublic": True,
        "architecture": "x86_64",
        "imageType": "machine",
        "name": f"{ami['name']}-{ami['kind']}",
        "description": (f"{ami['name']} as a virtual machine (own kernel, libvirt/QEMU)" if vm
                        else f"{ami['name']} as a container (host kernel, Docker)"),
        "rootDeviceType": "ebs",
        "rootDeviceName": root,
        "blockDeviceMapping": [{"deviceName": root, "ebs": {
            "deleteOnTermination": True,
            "volumeSize": root_size_gib(ami["kind"], ami.get("ref", ""), ami, ami.get("size")),
            "volumeType": GP3["type"], "iops": GP3["iops"], "throughput": GP3["throughput"], "encrypted": False}}],
        "virtualizationType": "hvm",
        "hypervisor": "kvm" if vm else None,  # a container has no hypervisor: the element is left out
        "enaSupport": False,
        "platformDetails": "Linux/UNIX",
        "usageOperation": "RunInstances",
        "bootMode": "legacy-bios" if vm else None,
        "tagSet": [{"key": k, "value": v} for k, v in _image_tags(ami).items()],
    }


def _image_tags(a: dict) -> dict:
    return {"pocketcloud:image": a["name"], "pocketcloud:kind": a["kind"]}


IMAGE_FILTERS = {
    "name": lambda a: f"{a['name']}-{a['kind']}",
    "image-id": lambda a: a["id"],
    "owner-id": lambda a: CATALOG_OWNER,
    "owner-alias": lambda a: CATALOG_ALIAS,
    "state": lambda a: "available",
    "architecture": lambda a: "x86_64",
    "image-type": lambda a: "machine",
    "is-public": lambda a: True,
    "root-device-type": lambda a: "ebs",
    "root-device-name": lambda a: ROOT_DEVICE[a["kind"]],
    "virtualization-type": lambda a: "hvm",
    "hypervisor": lambda a: "kvm" if a["kind"] == "vm" else None,
    "platform-details": lambda a: "Linux/UNIX",
    "description": lambda a: _image_xml(a)["description"],
    "block-device-mapping.device-name": lambda a: ROOT_DEVICE[a["kind"]],
    "block-device-mapping.volume-type": lambda a: GP3["type"],
}


def _type_xml(t) -> dict:
    burstable = t.name.startswith("t")
    return {
        "instanceType": t.name,
        "currentGeneration": True,
        "freeTierEligible": t.name == "t2.micro",
        "supportedUsageClasses": ["on-demand"],
        "supportedRootDeviceTypes": ["ebs"],
        "supportedVirtualizationTypes": ["hvm"],
        "bareMetal": False,
        "hypervisor": "kvm",
        "processorInfo": {"supportedArchitectures": ["x86_64"]},
        "vCpuInfo": {"defaultVCpus": t.vcpus, "defaultCores": t.vcpus, "defaultThreadsPerCore": 1},
        "memoryInfo": {"sizeInMiB": t.memory_mib},
        "instanceStorageSupported": False,
        "ebsInfo": {"ebsOptimizedSupport": "unsupported", "encryptionSupport": "unsupported",
                    "nvmeSupport": "unsupported"},
        "networkInfo": {"networkPerformance": "Low to Moderate", "maximumNetworkInterfaces": 1,
                        "ipv4AddressesPerInterface": 1, "ipv6AddressesPerInterface": 0, "ipv6Supported": False,
                        "enaSupport": "unsupported", "efaSupported": False},
        "placementGroupInfo": {"supportedStrategies": []},
        "hibernationSupported": False,
        "burstablePerformanceSupported": burstable,
        "dedicatedHostsSupported": False,
        "autoRecoverySupported": False,
        "supportedBootModes": ["legacy-bios"],
    }


TYPE_FILTERS = {
    "instance-type": lambda t: t.name,
    "current-generation": lambda t: True,
    "free-tier-eligible": lambda t: t.name == "t2.micro",
    "burstable-performance-supported": lambda t: t.name.startswith("t"),
    "bare-metal": lambda t: False,
    "hypervisor": lambda t: "kvm",
    "vcpu-info.default-vcpus": lambda t: t.vcpus,
    "vcpu-info.default-cores": lambda t: t.vcpus,
    "vcpu-info.default-threads-per-core": lambda t: 1,
    "memory-info.size-in-mib": lambda t: t.memory_mib,
    "processor-info.supported-architecture": lambda t: "x86_64",
    "supported-usage-class": lambda t: "on-demand",
    "supported-root-device-type": lambda t: "ebs",
    "supported-virtualization-type": lambda t: "hvm",
    "instance-storage-supported": lambda t: False,
    "hibernation-supported": lambda t: False,
}


def describe_instance_types(cloud, caller, p) -> dict:
    names = values(p, "InstanceType")
    unknown = [n for n in names if n not in INSTANCE_TYPES]
    if unknown:
        raise InvalidParameter(f"The following supplied instance types do not exist: [{', '.join(unknown)}]",
                               code="InvalidInstanceType")
    types = [t for t in INSTANCE_TYPES.values() if not names or t.name in names]
    types = filtering.apply(p, types, TYPE_FILTERS)
    types, token = filtering.page(p, types, low=5, high=100)
    return {"instanceTypeSet": [_type_xml(t) for t in types], "nextToken": token}


def describe_regions(cloud, caller, p) -> dict:
    region = cloud.config.region
    regions = [{"regionName": region, "regionEndpoint": cloud.config.endpoint_url,
                "optInStatus": "opt-in-not-required"}]
    asked = values(p, "RegionName")
    if asked and any(r != region for r in asked):
        bad = next(r for r in asked if r != region)
        raise InvalidParameter(f"Invalid region: {bad[:40]} (this pocketcloud serves {region})",
                               code="InvalidParameterValue")
    regions = filtering.apply(p, regions, {"region-name": lambda r: r["regionName"],
                                           "endpoint": lambda r: r["regionEndpoint"],
                                           "opt-in-status": lambda r: r["optInStatus"]})
    return {"regionInfo": regions}


def zone_id(region: str, n: int) -> str:
    parts = region.split("-")
    short = parts[0] + "".join(x[0] for x in parts[1:-1]) + parts[-1] if len(parts) > 2 else region
    return f"{short}-az{n}"


def zones(region: str) -> list[dict]:
    return [{"zoneName": f"{region}{s}", "zoneState": "available", "regionName": region,
             "zoneId": zone_id(region, i + 1), "zoneType": "availability-zone", "groupName": region,
             "networkBorderGroup": region, "optInStatus": "opt-in-not-required", "messageSet": []}
            for i, s in enumerate(ZONES)]


ZONE_FILTERS = {"zone-name": lambda z: z["zoneName"], "zone-id": lambda z: z["zoneId"],
                "state": lambda z: z["zoneState"], "region-name": lambda z: z["regionName"],
                "zone-type": lambda z: z["zoneType"], "group-name": lambda z: z["groupName"],
                "opt-in-status": lambda z: z["optInStatus"], "network-border-group": lambda z: z["networkBorderGroup"],
                "message": lambda z: []}


def describe_availability_zones(cloud, caller, p) -> dict:
    found = zones(cloud.config.region)
    boolean(p, "AllAvailabilityZones")  # validated; every zone here is opted in anyway
    names, ids = values(p, "ZoneName"), values(p, "ZoneId")
    for asked, key in ((names, "zoneName"), (ids, "zoneId")):
        unknown = [z for z in asked if z not in {f[key] for f in found}]
        if unknown:
            raise InvalidParameter(f"The zone '{unknown[0][:40]}' does not exist in region {cloud.config.region}",
                                   code="InvalidParameterValue")
    if names or ids:
        found = [z for z in found if z["zoneName"] in names or z["zoneId"] in ids]
    return {"availabilityZoneInfo": filtering.apply(p, found, ZONE_FILTERS)}


def describe_account_attributes(cloud, caller, p) -> dict:
    attrs = {
        "supported-platforms": ["VPC"],
        "default-vpc": [cloud.vpcs.default(caller.id).id],
        "max-instances": [str(caller.max_instances)],
        "vpc-max-security-groups-per-interface": ["5"],
        "max-elastic-ips": ["0"],
        "vpc-max-elastic-ips": ["0"],
    }
    asked = values(p, "AttributeName")
    unknown = [a for a in asked if a not in attrs]
    if unknown:
        raise InvalidParameter(f"Invalid attribute name: {unknown[0][:40]} (valid: {', '.join(attrs)})",
                               code="InvalidParameterValue")
    return {"accountAttributeSet": [{"attributeName": k, "attributeValueSet": [{"attributeValue": v} for v in vs]}
                                    for k, vs in attrs.items() if not asked or k in asked]}
