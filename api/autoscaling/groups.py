"""Group, instance, activity and tag actions of the Auto Scaling API, named after the wire
actions. Each handler gets (autoscaling service, caller, params)."""
from __future__ import annotations

import json

from emulator.autoscaling import AutoScaling
from emulator.autoscaling.model import PROCESSES, Activity, Group, Member
from emulator.errors import InvalidParameter

from .params import nested
from .xml import page, stamp

# Members of CreateAutoScalingGroup/UpdateAutoScalingGroup read as nested values.
GROUP_FIELDS = ("AutoScalingGroupName", "LaunchTemplate", "MinSize", "MaxSize", "DesiredCapacity", "DefaultCooldown",
                "AvailabilityZones", "VPCZoneIdentifier", "HealthCheckType", "HealthCheckGracePeriod",
                "TerminationPolicies", "NewInstancesProtectedFromScaleIn", "Tags", "ServiceLinkedRoleARN", "Context",
                "DefaultInstanceWarmup", "InstanceMaintenancePolicy", "LaunchConfigurationName", "MixedInstancesPolicy",
                "InstanceId", "LoadBalancerNames", "TargetGroupARNs", "TrafficSources", "LifecycleHookSpecificationList",
                "PlacementGroup", "AvailabilityZoneIds", "AvailabilityZoneDistribution",
                "AvailabilityZoneImpairmentPolicy", "CapacityReservationSpecification", "InstanceLifecyclePolicy",
                "CapacityRebalance", "MaxInstanceLifetime", "DesiredCapacityType", "DeletionProtection",
                "SkipZonalShiftValidation")


def required(p: dict, name: str) -> str:
    value = p.get(name)
    if value in (None, ""):
        raise InvalidParameter(f"1 validation error detected: Value null at '{name[0].lower() + name[1:]}' failed to "
                               "satisfy constraint: Member must not be null", code="ValidationError")
    return value


def flag(p: dict, name: str, default: bool = False) -> bool:
    value = p.get(name)
    if value in (None, ""):
        return default
    if value.lower() not in ("true", "false"):
        raise InvalidParameter(f"{name} must be true or false", code="ValidationError")
    return value.lower() == "true"


def required_flag(p: dict, name: str) -> bool:
    required(p, name)
    return flag(p, name)


def spec_of(p: dict) -> dict:
    spec = {}
    for name in GROUP_FIELDS:
        value = nested(p, name)
        if value is not None:
            spec[name] = value
    unknown = sorted({k.split(".")[0] for k in p if not k.startswith("X-Amz-")} - set(GROUP_FIELDS)
                     - {"Action", "Version"})
    if unknown:
        raise InvalidParameter(f"{unknown[0][:64]} is not a parameter of this action", code="ValidationError")
    return spec


def tag_xml(group: Group, t: dict) -> dict:
    return {"ResourceId": group.name, "ResourceType": "auto-scaling-group", "Key": t["Key"], "Value": t["Value"],
            "PropagateAtLaunch": t["PropagateAtLaunch"]}


def member_xml(m: Member) -> dict:
    return {"InstanceId": m.instance_id, "InstanceType": m.template.get("InstanceType"), "AvailabilityZone": m.az,
            "LifecycleState": m.lifecycle, "HealthStatus": m.health,
            "LaunchTemplate": {k: m.template.get(k) for k in ("LaunchTemplateId", "LaunchTemplateName", "Version")},
            "ProtectedFromScaleIn": m.protected}


def group_xml(asg: AutoScaling, g: Group) -> dict:
    c = g.config
    return {
        "AutoScalingGroupName": g.name, "AutoScalingGroupARN": g.arn(asg.region),
        "LaunchTemplate": c["LaunchTemplate"], "MinSize": c["MinSize"], "MaxSize": c["MaxSize"],
        "DesiredCapacity": c["DesiredCapacity"], "DefaultCooldown": c["DefaultCooldown"],
        "AvailabilityZones": c["AvailabilityZones"], "LoadBalancerNames": [], "TargetGroupARNs": [],
        "HealthCheckType": c["HealthCheckType"], "HealthCheckGracePeriod": c["HealthCheckGracePeriod"],
        "Instances": [member_xml(m) for m in asg.members(g)], "CreatedTime": stamp(g.created_at),
        "SuspendedProcesses": [{"ProcessName": p, "SuspensionReason": "User suspended"}
                               for p in c.get("SuspendedProcesses", [])],
        "VPCZoneIdentifier": c.get("VPCZoneIdentifier") or None, "EnabledMetrics": [], "Status": g.status,
        "Tags": [tag_xml(g, t) for t in c.get("Tags", [])], "TerminationPolicies": c["TerminationPolicies"],
        "NewInstancesProtectedFromScaleIn": c["NewInstancesProtectedFromScaleIn"],
        "ServiceLinkedRoleARN": c.get("ServiceLinkedRoleARN") or (
            f"arn:aws:iam::{g.owner}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"),
        "CapacityRebalance": False, "TrafficSources": [], "Context": c.get("Context"),
        "DefaultInstanceWarmup": c.get("DefaultInstanceWarmup"),
        "InstanceMaintenancePolicy": c.get("InstanceMaintenancePolicy"),
        "AvailabilityZoneDistribution": c.get("AvailabilityZoneDistribution") or {
            "CapacityDistributionStrategy": "balanced-best-effort"},
    }


def activity_xml(asg: AutoScaling, a: Activity, deleted: bool = False) -> dict:
    return {"ActivityId": a.id, "AutoScalingGroupName": a.group_name, "Description": a.description, "Cause": a.cause,
            "StartTime": stamp(a.start_time), "EndTime": stamp(a.end_time),
            "StatusCode": a.status, "StatusMessage": a.status_message or None, "Progress": a.progress,
            "Details": json.dumps(a.details), "AutoScalingGroupState": "Deleted" if deleted else None}


# -- groups ---------------------------------------------------------------------------------------
def create_auto_scaling_group(asg: AutoScaling, cloud, caller, p) -> None:
    asg.create_group(caller, spec_of(p))


def update_auto_scaling_group(asg: AutoScaling, cloud, caller, p) -> None:
    spec = spec_of(p)
    asg.update_group(caller, required(p, "AutoScalingGroupName"), spec)


def describe_auto_scaling_groups(asg: AutoScaling, cloud, caller, p) -> dict:
    groups = asg.groups(caller.id, nested(p, "AutoScalingGroupNames") or None)
    for f in nested(p, "Filters") or []:
        name, vals = f.get("Name", ""), f.get("Values") or []
        if name == "tag-key":
            groups = [g for g in groups if any(t["Key"] in vals for t in g.config.get("Tags", []))]
        elif name == "tag-value":
            groups = [g for g in groups if any(t["Value"] in vals for t in g.config.get("Tags", []))]
        elif name.startswith("tag:"):
            groups = [g for g in groups if any(t["Key"] == name[4:] and t["Value"] in vals
                                               for t in g.config.get("Tags", []))]
        else:
            raise InvalidParameter(f"The filter {name[:64]!r} is not supported (tag-key, tag-value, tag:KEY)",
                                   code="ValidationError")
    groups, token = page(p, groups, 50, 100)
    return {"AutoScalingGroups": [group_xml(asg, g) for g in groups], "NextToken": token}


def delete_auto_scaling_group(asg: AutoScaling, cloud, caller, p) -> None:
    asg.delete_group(caller, required(p, "AutoScalingGroupName"), flag(p, "ForceDelete"))


def set_desired_capacity(asg: AutoScaling, cloud, caller, p) -> None:
    asg.set_desired(caller, required(p, "AutoScalingGroupName"), required(p, "DesiredCapacity"),
                    flag(p, "HonorCooldown"))


def suspend_processes(asg: AutoScaling, cloud, caller, p) -> None:
    asg.set_processes(caller, required(p, "AutoScalingGroupName"), nested(p, "ScalingProcesses") or [], True)


def resume_processes(asg: AutoScaling, cloud, caller, p) -> None:
    asg.set_processes(caller, required(p, "AutoScalingGroupName"), nested(p, "ScalingProcesses") or [], False)


def describe_scaling_process_types(asg: AutoScaling, cloud, caller, p) -> dict:
    return {"Processes": [{"ProcessName": name} for name in PROCESSES]}


# -- instances ------------------------------------------------------------------------------------
def describe_auto_scaling_instances(asg: AutoScaling, cloud, caller, p) -> dict:
    members, token = page(p, asg.instances(caller.id, nested(p, "InstanceIds") or None), 50, 50)
    return {"AutoScalingInstances": [{**member_xml(m), "AutoScalingGroupName": m.group_name,
                                      "HealthStatus": m.health.upper()} for m in members], "NextToken": token}


def terminate_instance_in_auto_scaling_group(asg: AutoScaling, cloud, caller, p) -> dict:
    activity = asg.terminate_instance(caller, required(p, "InstanceId"),
                                      required_flag(p, "ShouldDecrementDesiredCapacity"))
    return {"Activity": activity_xml(asg, asg.activities.get(activity))}


def set_instance_health(asg: AutoScaling, cloud, caller, p) -> None:
    asg.set_instance_health(caller, required(p, "InstanceId"), required(p, "HealthStatus"),
                            flag(p, "ShouldRespectGracePeriod"))


def set_instance_protection(asg: AutoScaling, cloud, caller, p) -> dict:
    ids = nested(p, "InstanceIds") or []
    if not ids:
        required(p, "InstanceIds")
    asg.set_instance_protection(caller, required(p, "AutoScalingGroupName"), ids,
                                required_flag(p, "ProtectedFromScaleIn"))
    return {}


# -- activities and tags -----------------------------------------------------------------------------
def describe_scaling_activities(asg: AutoScaling, cloud, caller, p) -> dict:
    name = p.get("AutoScalingGroupName") or None
    deleted = flag(p, "IncludeDeletedGroups")
    live = {g.name for g in asg.groups(caller.id)}
    if name is not None and name not in live and not deleted:
        asg.group(caller.id, name)  # raises the group's not-found error
    acts = asg.activities.list(caller.id, name, nested(p, "ActivityIds") or None)
    if not deleted:
        acts = [a for a in acts if a.group_name in live]
    acts, token = page(p, acts, 100, 100)
    return {"Activities": [activity_xml(asg, a, a.group_name not in live) for a in acts], "NextToken": token}


def create_or_update_tags(asg: AutoScaling, cloud, caller, p) -> None:
    asg.put_tags(caller, nested(p, "Tags") or [])


def delete_tags(asg: AutoScaling, cloud, caller, p) -> None:
    asg.delete_tags(caller, nested(p, "Tags") or [])


def describe_tags(asg: AutoScaling, cloud, caller, p) -> dict:
    tags = [(g, t) for g in asg.groups(caller.id) for t in g.config.get("Tags", [])]
    for f in nested(p, "Filters") or []:
        name, vals = f.get("Name", ""), f.get("Values") or []
        pick = {"auto-scaling-group": lambda g, t: g.name, "key": lambda g, t: t["Key"],
                "value": lambda g, t: t["Value"],
                "propagate-at-launch": lambda g, t: str(t["PropagateAtLaunch"]).lower()}.get(name)
        if pick is None:
            raise InvalidParameter(f"The filter {name[:64]!r} is not supported (auto-scaling-group, key, value, "
                                   "propagate-at-launch)", code="ValidationError")
        tags = [(g, t) for g, t in tags if pick(g, t) in vals]
    tags, token = page(p, tags, 50, 100)
    return {"Tags": [tag_xml(g, t) for g, t in tags], "NextToken": token}


def describe_account_limits(asg: AutoScaling, cloud, caller, p) -> dict:
    from emulator.autoscaling.service import MAX_GROUPS

    return {"MaxNumberOfAutoScalingGroups": MAX_GROUPS, "MaxNumberOfLaunchConfigurations": 0,
            "NumberOfAutoScalingGroups": len(asg.groups(caller.id)), "NumberOfLaunchConfigurations": 0}

