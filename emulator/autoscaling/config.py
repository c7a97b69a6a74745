"""Checking a group's configuration (CreateAutoScalingGroup / UpdateAutoScalingGroup input).

Input arrives in the API's shape (model member names, values as the wire gave them: strings
from the Query protocol, numbers from REST) and leaves normalised. What pocketcloud cannot
honour (load balancers, launch configurations, mixed instances, ...) is refused with a
message saying so, never stored as a promise nobody keeps.
"""
from __future__ import annotations

import re
from typing import Callable

from ..errors import InvalidParameter, NotFound
from ..launch_templates import LaunchTemplates, TemplateVersion
from .model import PROCESSES, zones

GROUP_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._\-]{0,254}")
MAX_SIZE = 10000
TERMINATION_POLICIES = ("Default", "OldestInstance", "NewestInstance", "OldestLaunchTemplate",
                        "OldestLaunchConfiguration", "ClosestToNextInstanceHour", "AllocationStrategy")
# Settings with an engine behind them that pocketcloud does not have (yet): refused when given.
REFUSED = {
    "LaunchConfigurationName": "launch configurations are retired by AWS; use a launch template",
    "MixedInstancesPolicy": "mixed instances policies (Spot and instance-type overrides) are not supported",
    "InstanceId": "creating a group from an instance is not supported; use a launch template",
    "LoadBalancerNames": "pocketcloud has no load balancers",
    "TargetGroupARNs": "pocketcloud has no load balancers (target groups)",
    "TrafficSources": "pocketcloud has no load balancers or VPC Lattice (traffic sources)",
    "LifecycleHookSpecificationList": "lifecycle hooks are not supported",
    "PlacementGroup": "placement groups are not supported",
    "AvailabilityZoneIds": "give AvailabilityZones (names)",
    "AvailabilityZoneImpairmentPolicy": "zonal shift is not supported",
    "CapacityReservationSpecification": "capacity reservations are not supported",
    "InstanceLifecyclePolicy": "instance retention policies are not supported",
}
ONLY_DEFAULT = {"CapacityRebalance": False, "MaxInstanceLifetime": 0, "DesiredCapacityType": "units",
                "DeletionProtection": "none", "SkipZonalShiftValidation": False}
KNOWN = {"AutoScalingGroupName", "LaunchTemplate", "MinSize", "MaxSize", "DesiredCapacity", "DefaultCooldown",
         "AvailabilityZones", "VPCZoneIdentifier", "HealthCheckType", "HealthCheckGracePeriod",
         "TerminationPolicies", "NewInstancesProtectedFromScaleIn", "Tags", "ServiceLinkedRoleARN", "Context",
         "DefaultInstanceWarmup", "InstanceMaintenancePolicy", "AvailabilityZoneDistribution", *REFUSED,
         *ONLY_DEFAULT}
# A failed launch is not a zone's fault here (every zone is this host), so both strategies
# behave alike: launch into the zone with the fewest members.
DISTRIBUTIONS = ("balanced-best-effort", "balanced-only")

# (owner, subnet ids) -> {subnet id: (vpc id, availability zone)}; raises for unknown subnets.
SubnetLookup = Callable[[str, list[str]], dict[str, tuple[str, str]]]


def invalid(message: str) -> InvalidParameter:
    return InvalidParameter(message, code="ValidationError")


def integer(value, name: str, low: int = 0, high: int = MAX_SIZE) -> int:
    if isinstance(value, bool):
        raise invalid(f"{name} must be an integer")
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise invalid(f"{name} must be an integer, got {str(value)[:20]!r}") from None
    if not low <= n <= high:
        raise invalid(f"{name} must be between {low} and {high}")
    return n


def boolean(value, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if str(value).lower() in ("true", "false"):
        return str(value).lower() == "true"
    raise invalid(f"{name} must be true or false")


def string_list(value, name: str, limit: int = 50) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or len(value) > limit or not all(isinstance(v, str) for v in value):
        raise invalid(f"{name} must be a list of at most {limit} strings")
    return value


def group_name(value) -> str:
    if not isinstance(value, str) or not GROUP_NAME.fullmatch(value):
        raise invalid("AutoScalingGroupName must be 1-255 characters: letters, digits, '.', '_' and '-', "
                      "starting with a letter or digit")
    return value


def launch_template(value, owner: str, templates: LaunchTemplates) -> dict:
    """A LaunchTemplateSpecification that names a template of the owner and a version it has."""
    if not isinstance(value, dict):
        raise invalid("LaunchTemplate must be a structure with LaunchTemplateId or LaunchTemplateName")
    tid, name, version = value.get("LaunchTemplateId"), value.get("LaunchTemplateName"), value.get("Version")
    if bool(tid) == bool(name):
        raise invalid("Valid requests must contain either LaunchTemplateId or LaunchTemplateName")
    if set(value) - {"LaunchTemplateId", "LaunchTemplateName", "Version"}:
        raise invalid("LaunchTemplate takes LaunchTemplateId or LaunchTemplateName, and Version")
    v = launch_template_version(value, owner, templates)
    return {"LaunchTemplateId": v.template.id, "LaunchTemplateName": v.template.name,
            "Version": version or "$Default"}


def launch_template_version(spec: dict, owner: str, templates: LaunchTemplates) -> TemplateVersion:
    """The version a LaunchTemplateSpecification names, or Auto Scaling's ValidationError."""
    try:
        return templates.resolve(owner, spec.get("LaunchTemplateId"), spec.get("LaunchTemplateName"),
                                 spec.get("Version"))
    except (NotFound, InvalidParameter) as e:
        raise invalid(f"You must use a valid fully-formed launch template. {e.message}") from None


def tags(value) -> list[dict]:
    out: dict[str, dict] = {}
    for t in value or []:
        if not isinstance(t, dict):
            raise invalid("each tag must be a structure with Key, Value and PropagateAtLaunch")
        key = t.get("Key")
        if not isinstance(key, str) or not 1 <= len(key) <= 128 or key.lower().startswith("aws:"):
            raise invalid("each tag needs a Key of 1-128 characters, not starting with 'aws:'")
        val = t.get("Value") or ""
        if not isinstance(val, str) or len(val) > 256:
            raise invalid(f"the value of tag {key!r} must be a string of at most 256 characters")
        out[key] = {"Key": key, "Value": val, "PropagateAtLaunch": boolean(t.get("PropagateAtLaunch", False),
                                                                           "PropagateAtLaunch")}
    if len(out) > 50:
        raise invalid("a group has at most 50 tags")
    return list(out.values())


def _placement(spec: dict, owner: str, region: str, subnets: SubnetLookup | None) -> dict:
    azs = string_list(spec.get("AvailabilityZones"), "AvailabilityZones", 10)
    vpc_zone = spec.get("VPCZoneIdentifier") or ""
    if not isinstance(vpc_zone, str):
        raise invalid("VPCZoneIdentifier must be a comma-separated list of subnet ids")
    legal = zones(region)
    for az in azs:
        if az not in legal:
            raise invalid(f"The availability zone {az[:40]} is not legal (this region has {', '.join(legal)})")
    subnet_ids = [s.strip() for s in vpc_zone.split(",") if s.strip()]
    if subnet_ids:
        if subnets is None:
            raise invalid("VPCZoneIdentifier: this pocketcloud has no subnets yet; give AvailabilityZones")
        found = subnets(owner, subnet_ids)
        if len({vpc for vpc, _ in found.values()}) > 1:
            raise invalid("The subnets of VPCZoneIdentifier must all belong to the same VPC")
        subnet_azs = [found[s][1] for s in subnet_ids]
        if azs and set(azs) != set(subnet_azs):
            raise invalid("AvailabilityZones and the zones of the subnets in VPCZoneIdentifier differ")
        azs = list(dict.fromkeys(subnet_azs))
    if not azs:
        raise invalid("At least one Availability Zone or VPC Subnet is required.")
    return {"AvailabilityZones": list(dict.fromkeys(azs)), "VPCZoneIdentifier": ",".join(subnet_ids),
            "Subnets": {s: found[s][1] for s in subnet_ids} if subnet_ids else {}}


def _refuse(spec: dict) -> None:
    for key, why in REFUSED.items():
        if spec.get(key) not in (None, "", [], {}):
            raise invalid(f"{key}: {why} in pocketcloud")
    for key, default in ONLY_DEFAULT.items():
        if key in spec and spec[key] not in (None, ""):
            given = spec[key]
            if isinstance(default, bool):
                given = boolean(given, key)
            elif isinstance(default, int):
                given = integer(given, key, 0, 1 << 30)
            if given != default:
                raise invalid(f"{key}={spec[key]!r} is not supported in pocketcloud (only {default!r})")
    unknown = sorted(set(spec) - KNOWN)
    if unknown:
        raise invalid(f"{unknown[0][:64]} is not a parameter pocketcloud's Auto Scaling supports")


def _common(spec: dict, config: dict, owner: str, region: str, templates: LaunchTemplates,
            subnets: SubnetLookup | None) -> None:
    """The settings Create and Update share, laid over `config` when given."""
    if spec.get("LaunchTemplate") is not None:
        config["LaunchTemplate"] = launch_template(spec["LaunchTemplate"], owner, templates)
    if spec.get("AvailabilityZones") or spec.get("VPCZoneIdentifier"):
        config.update(_placement(spec, owner, region, subnets))
    if spec.get("HealthCheckType") is not None:
        if spec["HealthCheckType"] != "EC2":
            raise invalid(f"HealthCheckType {str(spec['HealthCheckType'])[:20]!r} is not supported in pocketcloud: "
                          "it has no load balancers, so health is the EC2 state (EC2)")
        config["HealthCheckType"] = "EC2"
    for key, high in (("HealthCheckGracePeriod", 86400), ("DefaultCooldown", 86400)):
        if spec.get(key) is not None:
            config[key] = integer(spec[key], key, 0, high)
    if spec.get("DefaultInstanceWarmup") is not None:
        config["DefaultInstanceWarmup"] = integer(spec["DefaultInstanceWarmup"], "DefaultInstanceWarmup", -1, 86400)
    if spec.get("TerminationPolicies") is not None:
        policies = string_list(spec["TerminationPolicies"], "TerminationPolicies", 10) or ["Default"]
        for p in policies:
            if p not in TERMINATION_POLICIES:
                raise invalid(f"Termination policy {p[:40]!r} is not one of {', '.join(TERMINATION_POLICIES)}")
        config["TerminationPolicies"] = policies
    if spec.get("NewInstancesProtectedFromScaleIn") is not None:
        config["NewInstancesProtectedFromScaleIn"] = boolean(spec["NewInstancesProtectedFromScaleIn"],
                                                             "NewInstancesProtectedFromScaleIn")
    for key in ("Context", "ServiceLinkedRoleARN"):
        if spec.get(key) is not None:
            if not isinstance(spec[key], str) or len(spec[key]) > 1600:
                raise invalid(f"{key} must be a string of at most 1600 characters")
            config[key] = spec[key]
    if spec.get("AvailabilityZoneDistribution") is not None:
        dist = spec["AvailabilityZoneDistribution"]
        strategy = dist.get("CapacityDistributionStrategy") if isinstance(dist, dict) else None
        if strategy not in DISTRIBUTIONS:
            raise invalid(f"AvailabilityZoneDistribution.CapacityDistributionStrategy must be one of "
                          f"{', '.join(DISTRIBUTIONS)}")
        config["AvailabilityZoneDistribution"] = {"CapacityDistributionStrategy": strategy}
    if spec.get("InstanceMaintenancePolicy") is not None:
        imp = spec["InstanceMaintenancePolicy"]
        if not isinstance(imp, dict):
            raise invalid("InstanceMaintenancePolicy must be a structure")
        low = integer(imp.get("MinHealthyPercentage", -1), "MinHealthyPercentage", -1, 100)
        high = integer(imp.get("MaxHealthyPercentage", -1), "MaxHealthyPercentage", -1, 200)
        config["InstanceMaintenancePolicy"] = ({"MinHealthyPercentage": low, "MaxHealthyPercentage": high}
                                               if low >= 0 and high >= 0 else None)


def sizes(min_size: int, max_size: int, desired: int) -> None:
    if min_size > max_size:
        raise invalid(f"Max bound, {max_size}, must be greater than or equal to min bound, {min_size}")
    if not min_size <= desired <= max_size:
        raise invalid(f"Desired capacity:{desired} must be between the specified min size:{min_size} "
                      f"and max size:{max_size}")


def create(spec: dict, owner: str, region: str, templates: LaunchTemplates,
           subnets: SubnetLookup | None = None) -> dict:
    _refuse(spec)
    if spec.get("LaunchTemplate") is None:
        raise invalid("Valid requests must contain either LaunchTemplate, LaunchConfigurationName, InstanceId "
                      "or MixedInstancesPolicy parameter (pocketcloud: LaunchTemplate)")
    for key in ("MinSize", "MaxSize"):
        if spec.get(key) in (None, ""):
            raise invalid(f"The parameter {key} is required")
    config: dict = {"HealthCheckType": "EC2", "HealthCheckGracePeriod": 0, "DefaultCooldown": 300,
                    "TerminationPolicies": ["Default"], "NewInstancesProtectedFromScaleIn": False,
                    "DefaultInstanceWarmup": None, "Tags": tags(spec.get("Tags")), "SuspendedProcesses": [],
                    "Context": None, "ServiceLinkedRoleARN": None, "InstanceMaintenancePolicy": None,
                    "AvailabilityZoneDistribution": {"CapacityDistributionStrategy": "balanced-best-effort"}}
    if not spec.get("AvailabilityZones") and not spec.get("VPCZoneIdentifier"):
        raise invalid("At least one Availability Zone or VPC Subnet is required.")
    _common(spec, config, owner, region, templates, subnets)
    config["MinSize"] = integer(spec["MinSize"], "MinSize")
    config["MaxSize"] = integer(spec["MaxSize"], "MaxSize")
    desired = spec.get("DesiredCapacity")
    config["DesiredCapacity"] = config["MinSize"] if desired in (None, "") else integer(desired, "DesiredCapacity")
    sizes(config["MinSize"], config["MaxSize"], config["DesiredCapacity"])
    return config


def update(spec: dict, old: dict, owner: str, region: str, templates: LaunchTemplates,
           subnets: SubnetLookup | None = None) -> dict:
    _refuse(spec)
    config = dict(old)
    _common(spec, config, owner, region, templates, subnets)
    low = integer(spec["MinSize"], "MinSize") if spec.get("MinSize") not in (None, "") else old["MinSize"]
    high = integer(spec["MaxSize"], "MaxSize") if spec.get("MaxSize") not in (None, "") else old["MaxSize"]
    if spec.get("DesiredCapacity") not in (None, ""):
        desired = integer(spec["DesiredCapacity"], "DesiredCapacity")
    else:  # as AWS: a new min above (or max below) the current size moves the desired capacity with it
        desired = min(max(old["DesiredCapacity"], low), high) if low <= high else old["DesiredCapacity"]
    sizes(low, high, desired)
    config.update(MinSize=low, MaxSize=high, DesiredCapacity=desired)
    return config


def processes(value) -> list[str]:
    names = string_list(value, "ScalingProcesses", len(PROCESSES))
    for p in names:
        if p not in PROCESSES:
            raise invalid(f"Process {p[:40]!r} is not one of {', '.join(PROCESSES)}")
    return names or list(PROCESSES)
