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
from emulator.volumes import ROOT_DEVICE

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
    block_devices: list[dict] | None = None


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


# BlockDeviceMapping.N.<key> -> (the service's field, how the text converts)
EBS_KEYS = {"DeviceName": ("device", str), "Ebs.VolumeSize": ("size_gib", int), "Ebs.SnapshotId": ("snapshot_id", str),
            "Ebs.VolumeType": ("volume_type", str), "Ebs.DeleteOnTermination": ("delete_on_termination", bool),
            "Ebs.Iops": ("iops", int), "Ebs.Throughput": ("throughput", int), "Ebs.Encrypted": ("encrypted", bool),
            "NoDevice": ("no_device", None)}


def _block_devices(p, ami: dict) -> list[dict] | None:
    """BlockDeviceMapping.N.* as the service's mappings (checked there, with the caller's
    snapshots and quotas). Tools send defaults explicitly: a root device's gp2 (what the
    image is, reported as gp3), and 0 for Iops/Throughput, mean "as the image/gp3 does"."""
    out = []
    for bdm in members(p, "BlockDeviceMapping"):
        m: dict = {}
        root = bdm.get("DeviceName") == ROOT_DEVICE[ami["kind"]]
        for key, val in bdm.items():
            if key not in EBS_KEYS:
                why = ("instance store volumes do not exist here" if key == "VirtualName" else
                       "set the size, snapshot, type, IOPS, throughput and DeleteOnTermination only")
                raise _unsupported(f"BlockDeviceMapping.{key[:40]}", why)
            field, conv = EBS_KEYS[key]
            if conv is None:
                m[field] = True
            elif conv is bool:
                if val.lower() not in ("true", "false"):
                    raise InvalidParameter(f"Value ({val[:20]}) for parameter BlockDeviceMapping.{key} is invalid. "
                                           "Expected: 'true' or 'false'", code="InvalidParameterValue")
                m[field] = val.lower() == "true"
            elif conv is int:
                if not val.isdigit() or len(val) > 6:
                    raise InvalidParameter(f"Value ({val[:20]}) for parameter BlockDeviceMapping.{key} is invalid. "
                                           "Expected an integer", code="InvalidParameterValue")
                if int(val) or key == "Ebs.VolumeSize":
                    m[field] = int(val)
            elif val or key == "DeviceName":
                m[field] = val
        if root and m.get("volume_type") == "gp2":
            m.pop("volume_type")
        out.append(m)
    return out or None


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
    block_devices = _block_devices(p, ami)
    subnet_id, groups = _network_interfaces(p)
    return LaunchOptions(subnet_id or p.get("SubnetId") or None, p.get("Placement.AvailabilityZone") or None, groups,
                         block_devices)
