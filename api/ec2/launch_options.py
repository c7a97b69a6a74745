"""RunInstances' many options: the ones pocketcloud honours, the ones that ask for what AWS does
by default (accepted: that is what happens), and the ones asking for something pocketcloud
cannot do yet (a clear error naming the parameter, never a silently ignored setting).

Tools send defaults explicitly (Terraform sends `CapacityReservationSpecification` with
`open`, `DisableApiTermination=false`, `Monitoring.Enabled=false`, ...), so refusing whole
parameters would refuse ordinary requests; refusing non-default values refuses only what
would not happen.
"""
from __future__ import annotations

from dataclasses import dataclass

from emulator.errors import InvalidParameter
from emulator.volumes import ROOT_DEVICE, root_size_gib

from .params import members, values

# Parameters handled elsewhere in RunInstances (or by the Query front).
HANDLED = {"Action", "Version", "ImageId", "MinCount", "MaxCount", "InstanceType", "KeyName", "UserData",
           "SecurityGroupId", "SecurityGroup", "SubnetId", "Placement", "TagSpecification", "ClientToken",
           "DryRun", "NetworkInterface", "BlockDeviceMapping"}
UNSUPPORTED_HINTS = {
    "IamInstanceProfile": "pocketcloud has no IAM roles",
    "PrivateIpAddress": "addresses come from the engines' networks until VPC networking assigns them",
    "Ipv6AddressCount": "pocketcloud's networks are IPv4 only",
    "Ipv6Address": "pocketcloud's networks are IPv4 only",
    "InstanceMarketOptions": "there are no spot instances on one machine",
    "ElasticGpuSpecification": "there are no GPUs here",
    "ElasticInferenceAccelerator": "there are no accelerators here",
    "KernelId": "the kernel comes with the image",
    "RamdiskId": "the initrd comes with the image",
    "LicenseSpecification": "pocketcloud has no license manager",
}
# name -> the values that mean "what AWS does by default" (lower-case)
DEFAULTS = {
    "Monitoring.Enabled": {"false"},
    "DisableApiTermination": {"false"},
    "DisableApiStop": {"false"},
    "InstanceInitiatedShutdownBehavior": {"stop"},
    "EbsOptimized": {"false"},
    "HibernationOptions.Configured": {"false"},
    "EnclaveOptions.Enabled": {"false"},
    "MaintenanceOptions.AutoRecovery": {"default"},
    "CapacityReservationSpecification.CapacityReservationPreference": {"open"},
    "MetadataOptions.HttpEndpoint": {"enabled"},
    "MetadataOptions.HttpTokens": {"optional"},
    "MetadataOptions.HttpPutResponseHopLimit": {"1"},
    "MetadataOptions.HttpProtocolIpv6": {"disabled"},
    "MetadataOptions.InstanceMetadataTags": {"disabled"},
    "PrivateDnsNameOptions.HostnameType": {"ip-name"},
    "PrivateDnsNameOptions.EnableResourceNameDnsARecord": {"false"},
    "PrivateDnsNameOptions.EnableResourceNameDnsAAAARecord": {"false"},
    "Placement.Tenancy": {"default"},
    "Placement.GroupName": {""},
    "Placement.AvailabilityZone": None,  # honoured
    "CreditSpecification.CpuCredits": None,  # checked against the type below
    "CpuOptions.ThreadsPerCore": {"1"},
    "CpuOptions.CoreCount": None,  # checked against the type below
    "AdditionalInfo": None,
}


@dataclass(frozen=True)
class LaunchOptions:
    subnet_id: str | None
    zone: str | None
    groups: list[str]


def _unsupported(name: str, why: str) -> InvalidParameter:
    return InvalidParameter(f"pocketcloud cannot honour {name}: {why}", code="UnsupportedOperation")


def _network_interfaces(p) -> tuple[str | None, list[str]]:
    nics = members(p, "NetworkInterface")
    if not nics:
        return None, []
    if len(nics) > 1:
        raise _unsupported("NetworkInterface.2", "an instance has one network interface here")
    nic = nics[0]
    if p.get("SubnetId") or values(p, "SecurityGroupId") or values(p, "SecurityGroup"):
        raise InvalidParameter("Network interfaces and an instance-level subnet ID or security groups may not be "
                               "specified on the same request", code="InvalidParameterCombination")
    for key, val in nic.items():
        if key in ("DeviceIndex",) and val != "0":
            raise _unsupported("NetworkInterface.1.DeviceIndex", "the one interface has device index 0")
        if key in ("DeleteOnTermination",) and val.lower() != "true":
            raise _unsupported("NetworkInterface.1.DeleteOnTermination", "the interface goes with its instance")
        if key in ("AssociatePublicIpAddress",):
            continue  # an instance is reached through 127.0.0.1 forwards either way
        if key.split(".")[0] not in ("DeviceIndex", "DeleteOnTermination", "SubnetId", "SecurityGroupId",
                                     "Description", "AssociatePublicIpAddress"):
            raise _unsupported(f"NetworkInterface.1.{key}", "set the subnet and security groups only")
    return nic.get("SubnetId"), values(nic, "SecurityGroupId")


def _block_devices(p, ami: dict) -> None:
    """Only the root device can be described, as it is: its size comes from the image."""
    size = root_size_gib(ami["kind"], ami.get("ref", ""), ami, ami.get("size"))
    for bdm in members(p, "BlockDeviceMapping"):
        device = bdm.get("DeviceName")
        if device != ROOT_DEVICE[ami["kind"]]:
            raise _unsupported(f"BlockDeviceMapping {str(device)[:40]}", "extra volumes at launch are not served "
                               "yet: CreateVolume, then AttachVolume once the instance runs; only the root device "
                               f"{ROOT_DEVICE[ami['kind']]} can be described")
        for key, val in bdm.items():
            low = val.lower()
            if key == "DeviceName":
                continue
            if key == "Ebs.VolumeSize" and val != str(size):
                raise _unsupported(f"BlockDeviceMapping.Ebs.VolumeSize={val[:10]}",
                                   f"the root volume is as large as the image ({size} GiB): a larger root is "
                                   "not served yet")
            if key == "Ebs.VolumeSize":
                continue
            ok = {"Ebs.DeleteOnTermination": low == "true", "Ebs.Encrypted": low == "false",
                  "Ebs.VolumeType": low in ("gp3", "gp2"), "Ebs.Iops": low in ("0", "3000"),
                  "Ebs.Throughput": low in ("0", "125")}.get(key)
            if not ok:
                raise _unsupported(f"BlockDeviceMapping.{key}={val[:40]}", "the root volume is gp3, unencrypted, "
                                   "deleted with its instance")


def check_launch_options(cloud, p: dict, ami: dict) -> LaunchOptions:
    from emulator.compute.types import INSTANCE_TYPES

    itype = INSTANCE_TYPES.get(p.get("InstanceType") or "t2.micro")
    for key, val in p.items():
        top = key.split(".")[0]
        if top in HANDLED:
            continue
        if top in UNSUPPORTED_HINTS:
            raise _unsupported(key, UNSUPPORTED_HINTS[top])
        if key not in DEFAULTS:
            raise _unsupported(key, "this RunInstances parameter is not implemented")
        allowed = DEFAULTS[key]
        if allowed is not None and val.lower() not in allowed:
            raise _unsupported(f"{key}={val[:40]}", f"pocketcloud does what AWS does by default here "
                               f"({', '.join(sorted(allowed)) or 'empty'})")
    if itype is not None:
        credits = p.get("CreditSpecification.CpuCredits")
        default_credits = "unlimited" if itype.name.startswith("t3") else "standard"
        if credits is not None and credits.lower() != default_credits:
            raise _unsupported(f"CreditSpecification.CpuCredits={credits[:20]}",
                               f"CPU is not metered by credits here; {itype.name} reports {default_credits}")
        cores = p.get("CpuOptions.CoreCount")
        if cores is not None and cores != str(itype.vcpus):
            raise _unsupported(f"CpuOptions.CoreCount={cores[:10]}", f"{itype.name} has {itype.vcpus} vCPUs")
    _block_devices(p, ami)
    subnet_id, groups = _network_interfaces(p)
    return LaunchOptions(subnet_id or p.get("SubnetId") or None, p.get("Placement.AvailabilityZone") or None, groups)
