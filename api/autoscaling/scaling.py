"""Policy and instance-refresh actions, and the honest empty answers (load balancers, warm
pools, lifecycle hooks, notifications, ...) that tools such as Terraform read."""
from __future__ import annotations

from emulator.autoscaling import AutoScaling
from emulator.autoscaling.model import Refresh
from emulator.errors import InvalidParameter

from .groups import flag, required
from .params import nested
from .xml import page, stamp

POLICY_FIELDS = ("PolicyType", "AdjustmentType", "MinAdjustmentStep", "MinAdjustmentMagnitude", "ScalingAdjustment",
                 "Cooldown", "MetricAggregationType", "StepAdjustments", "EstimatedInstanceWarmup",
                 "TargetTrackingConfiguration", "Enabled", "PredictiveScalingConfiguration")
NOTIFICATION_TYPES = ["autoscaling:EC2_INSTANCE_LAUNCH", "autoscaling:EC2_INSTANCE_LAUNCH_ERROR",
                      "autoscaling:EC2_INSTANCE_TERMINATE", "autoscaling:EC2_INSTANCE_TERMINATE_ERROR",
                      "autoscaling:TEST_NOTIFICATION"]
# Real actions pocketcloud refuses, with the reason (anything else is InvalidAction).
REFUSED = {
    "AttachInstances": "adding instances launched outside a group is not supported; launch them from its template",
    "DetachInstances": "detaching members is not supported; terminate them in the group instead",
    "EnterStandby": "standby is not supported", "ExitStandby": "standby is not supported",
    "AttachLoadBalancers": "pocketcloud has no load balancers", "DetachLoadBalancers": "pocketcloud has no load balancers",
    "AttachLoadBalancerTargetGroups": "pocketcloud has no load balancers",
    "DetachLoadBalancerTargetGroups": "pocketcloud has no load balancers",
    "AttachTrafficSources": "pocketcloud has no load balancers", "DetachTrafficSources": "pocketcloud has no load balancers",
    "PutLifecycleHook": "lifecycle hooks are not supported", "CompleteLifecycleAction": "lifecycle hooks are not supported",
    "RecordLifecycleActionHeartbeat": "lifecycle hooks are not supported",
    "PutWarmPool": "warm pools are not supported",
    "PutNotificationConfiguration": "notifications need SNS, which pocketcloud does not have",
    "PutScheduledUpdateGroupAction": "scheduled actions are not supported",
    "BatchPutScheduledUpdateGroupAction": "scheduled actions are not supported",
    "EnableMetricsCollection": "group metrics need CloudWatch, which pocketcloud does not have",
    "CreateLaunchConfiguration": "launch configurations are retired by AWS; use an EC2 launch template",
    "RollbackInstanceRefresh": "instance refresh rollback is not supported",
    "LaunchInstances": "LaunchInstances is not supported; set the desired capacity instead",
}


def refused(action: str, why: str):
    def refuse(asg, cloud, caller, p):
        raise InvalidParameter(f"pocketcloud does not implement {action}: {why}", code="NotImplemented")

    return refuse


# -- policies -------------------------------------------------------------------------------------
def put_scaling_policy(asg: AutoScaling, cloud, caller, p) -> dict:
    spec = {k: v for k in POLICY_FIELDS if (v := nested(p, k)) is not None}
    if spec.get("PredictiveScalingConfiguration") or spec.get("MinAdjustmentStep"):
        raise InvalidParameter("predictive scaling and MinAdjustmentStep are not supported in pocketcloud",
                               code="ValidationError")
    policy = asg.policies.put(caller, required(p, "AutoScalingGroupName"), required(p, "PolicyName"), spec)
    return {"PolicyARN": policy["PolicyARN"], "Alarms": policy["Alarms"]}


def describe_policies(asg: AutoScaling, cloud, caller, p) -> dict:
    policies = asg.policies.list(caller, p.get("AutoScalingGroupName") or None, nested(p, "PolicyNames") or None,
                                 nested(p, "PolicyTypes") or None)
    policies, token = page(p, policies, 50, 100)
    return {"ScalingPolicies": policies, "NextToken": token}


def delete_policy(asg: AutoScaling, cloud, caller, p) -> None:
    name = required(p, "PolicyName")
    group = p.get("AutoScalingGroupName")
    if not group and name.startswith("arn:"):
        group = name.split("autoScalingGroupName/")[-1].split(":")[0]
        name = name.rsplit("policyName/", 1)[-1]
    asg.policies.delete(caller, group or required(p, "AutoScalingGroupName"), name)


def execute_policy(asg: AutoScaling, cloud, caller, p) -> None:
    asg.policies.execute(caller, required(p, "AutoScalingGroupName"), required(p, "PolicyName"),
                         flag(p, "HonorCooldown"), p.get("MetricValue"), p.get("BreachThreshold"))


def describe_adjustment_types(asg: AutoScaling, cloud, caller, p) -> dict:
    return {"AdjustmentTypes": [{"AdjustmentType": t} for t in ("ChangeInCapacity", "ExactCapacity",
                                                                "PercentChangeInCapacity")]}


def describe_termination_policy_types(asg: AutoScaling, cloud, caller, p) -> dict:
    from emulator.autoscaling.config import TERMINATION_POLICIES

    return {"TerminationPolicyTypes": list(TERMINATION_POLICIES)}


# -- instance refresh -------------------------------------------------------------------------------
def refresh_xml(r: Refresh) -> dict:
    prefs = r.config["Preferences"]
    return {"InstanceRefreshId": r.id, "AutoScalingGroupName": r.group_name, "Status": r.status,
            "StatusReason": r.status_reason or None, "StartTime": stamp(r.start_time),
            "EndTime": stamp(r.end_time), "PercentageComplete": r.percentage,
            "InstancesToUpdate": len(r.progress.get("pending", [])),
            "Preferences": {**prefs, "AutoRollback": False},
            "DesiredConfiguration": r.config.get("DesiredConfiguration"), "Strategy": r.config["Strategy"]}


def start_instance_refresh(asg: AutoScaling, cloud, caller, p) -> dict:
    return {"InstanceRefreshId": asg.refreshes.start(caller, required(p, "AutoScalingGroupName"), p.get("Strategy"),
                                                     nested(p, "DesiredConfiguration"), nested(p, "Preferences"))}


def describe_instance_refreshes(asg: AutoScaling, cloud, caller, p) -> dict:
    found = asg.refreshes.describe(caller, required(p, "AutoScalingGroupName"), nested(p, "InstanceRefreshIds") or None)
    found, token = page(p, found, 50, 100)
    return {"InstanceRefreshes": [refresh_xml(r) for r in found], "NextToken": token}


def cancel_instance_refresh(asg: AutoScaling, cloud, caller, p) -> dict:
    return {"InstanceRefreshId": asg.refreshes.cancel(caller, required(p, "AutoScalingGroupName"))}


# -- what pocketcloud has none of: answered empty, for a group that exists ---------------------------
def empty(key: str):
    def describe(asg: AutoScaling, cloud, caller, p) -> dict:
        if p.get("AutoScalingGroupName"):
            asg.group(caller.id, p["AutoScalingGroupName"])
        return {key: []}

    return describe


def describe_warm_pool(asg: AutoScaling, cloud, caller, p) -> dict:
    asg.group(caller.id, required(p, "AutoScalingGroupName"))
    return {"Instances": []}


def describe_auto_scaling_notification_types(asg: AutoScaling, cloud, caller, p) -> dict:
    return {"AutoScalingNotificationTypes": NOTIFICATION_TYPES}


def describe_lifecycle_hook_types(asg: AutoScaling, cloud, caller, p) -> dict:
    return {"LifecycleHookTypes": ["autoscaling:EC2_INSTANCE_LAUNCHING", "autoscaling:EC2_INSTANCE_TERMINATING"]}


EMPTY = {"DescribeLifecycleHooks": "LifecycleHooks", "DescribeTrafficSources": "TrafficSources",
         "DescribeLoadBalancers": "LoadBalancers", "DescribeLoadBalancerTargetGroups": "LoadBalancerTargetGroups",
         "DescribeNotificationConfigurations": "NotificationConfigurations",
         "DescribeLaunchConfigurations": "LaunchConfigurations", "DescribeScheduledActions": "ScheduledUpdateGroupActions",
         "DescribeMetricCollectionTypes": "Metrics"}


def delete_nothing(what: str):
    def delete(asg: AutoScaling, cloud, caller, p) -> None:
        asg.group(caller.id, required(p, "AutoScalingGroupName"))
        raise InvalidParameter(f"No {what} found for this group", code="ValidationError")

    return delete
