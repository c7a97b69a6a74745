"""DescribeImages, DescribeInstanceTypes, DescribeRegions, DescribeAvailabilityZones.

Each (image name, kind) pair of the catalog is one AMI: its id is derived from both, so
`tiny` has one ami- for its VM and another for its container, and the kind shows in the
name, the description and a tag.
"""
from __future__ import annotations

import hashlib
import re

from emulator.compute.types import INSTANCE_TYPES
from emulator.errors import InvalidParameter, NotFound

from .params import filters, values

AMI = re.compile(r"ami-[0-9a-f]{17}")


def ami_id(name: str, kind: str) -> str:
    return "ami-" + hashlib.sha256(f"{name}:{kind}".encode()).hexdigest()[:17]


def all_amis(cloud) -> list[dict]:
    out = []
    for img in cloud.list_images():
        for kind, info in img["kinds"].items():
            out.append({"id": ami_id(img["name"], kind), "name": img["name"], "kind": kind, **info})
    return out


def resolve_ami(cloud, image_id: str) -> dict:
    if not isinstance(image_id, str) or not AMI.fullmatch(image_id):
        raise InvalidParameter(f"invalid id: {str(image_id)[:40]!r} (expecting 'ami-...')", code="InvalidAMIID.Malformed")
    for ami in all_amis(cloud):
        if ami["id"] == image_id:
            return ami
    raise NotFound(f"the image id '[{image_id}]' does not exist", code="InvalidAMIID.NotFound")


def _image_xml(ami: dict, region: str) -> dict:
    vm = ami["kind"] == "vm"
    return {
        "imageId": ami["id"],
        "imageLocation": f"pocketcloud/{ami['name']}/{ami['kind']}",
        "imageState": "available",
        "imageOwnerId": "000000000000",
        "creationDate": None,
        "isPublic": True,
        "architecture": "x86_64",
        "imageType": "machine",
        "name": f"{ami['name']}-{ami['kind']}",
        "description": (f"{ami['name']} as a virtual machine (own kernel, libvirt/QEMU)" if vm
                        else f"{ami['name']} as a container (host kernel, Docker)"),
        "rootDeviceType": "ebs",
        "rootDeviceName": "/dev/vda" if vm else "/",
        "virtualizationType": "hvm",
        "hypervisor": "kvm" if vm else None,  # a container has no hypervisor: the element is left out
        "platformDetails": "Linux/UNIX",
        "tagSet": [{"key": "pocketcloud:image", "value": ami["name"]}, {"key": "pocketcloud:kind", "value": ami["kind"]}],
    }


def describe_images(cloud, caller, p) -> dict:
    ids = values(p, "ImageId")
    amis = all_amis(cloud)
    if ids:
        for i in ids:
            resolve_ami(cloud, i)
        amis = [a for a in amis if a["id"] in ids]
    for name, vals in filters(p).items():
        key = {"name": lambda a: f"{a['name']}-{a['kind']}", "image-id": lambda a: a["id"],
               "tag:pocketcloud:kind": lambda a: a["kind"], "tag:pocketcloud:image": lambda a: a["name"]}.get(name)
        if key is None:
            continue
        pats = [re.compile("^" + re.escape(v).replace(r"\*", ".*").replace(r"\?", ".") + "$") for v in vals]
        amis = [a for a in amis if any(pt.match(key(a)) for pt in pats)]
    return {"imagesSet": [_image_xml(a, cloud.config.region) for a in amis]}


def describe_instance_types(cloud, caller, p) -> dict:
    names = values(p, "InstanceType")
    unknown = [n for n in names if n not in INSTANCE_TYPES]
    if unknown:
        raise InvalidParameter(f"the following supplied instance types do not exist: [{', '.join(unknown)}]",
                               code="InvalidInstanceType")
    types = [t for t in INSTANCE_TYPES.values() if not names or t.name in names]
    return {"instanceTypeSet": [{
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
    } for t in types]}


def describe_regions(cloud, caller, p) -> dict:
    region = cloud.config.region
    return {"regionInfo": [{"regionName": region, "regionEndpoint": cloud.config.endpoint_url,
                            "optInStatus": "opt-in-not-required"}]}


def describe_availability_zones(cloud, caller, p) -> dict:
    region = cloud.config.region
    return {"availabilityZoneInfo": [{"zoneName": f"{region}a", "zoneState": "available", "regionName": region,
                                      "zoneId": f"{region[:3]}{region[-1]}-az1", "zoneType": "availability-zone",
                                      "optInStatus": "opt-in-not-required", "messageSet": []}]}
