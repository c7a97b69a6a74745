"""The Auto Scaling Query API on the one port (SigV4 service `autoscaling`), so that
`boto3.client("autoscaling")`, `aws autoscaling ...` and Terraform's `aws_autoscaling_group`
work unmodified. Handlers parse, make one call on `emulator.autoscaling`, and render."""
from __future__ import annotations

from functools import partial

from emulator.autoscaling import AutoScaling
from emulator.errors import Unauthorized

from ..errors import query_error
from ..query import QueryService, create_query_app
from . import groups as g
from . import scaling as s
from .xml import NAMESPACE, response

HANDLERS = {
    "CreateAutoScalingGroup": g.create_auto_scaling_group,
    "UpdateAutoScalingGroup": g.update_auto_scaling_group,
    "DescribeAutoScalingGroups": g.describe_auto_scaling_groups,
    "DeleteAutoScalingGroup": g.delete_auto_scaling_group,
    "SetDesiredCapacity": g.set_desired_capacity,
    "SuspendProcesses": g.suspend_processes,
    "ResumeProcesses": g.resume_processes,
    "DescribeScalingProcessTypes": g.describe_scaling_process_types,
    "DescribeAutoScalingInstances": g.describe_auto_scaling_instances,
    "TerminateInstanceInAutoScalingGroup": g.terminate_instance_in_auto_scaling_group,
    "SetInstanceHealth": g.set_instance_health,
    "SetInstanceProtection": g.set_instance_protection,
    "DescribeScalingActivities": g.describe_scaling_activities,
    "CreateOrUpdateTags": g.create_or_update_tags,
    "DeleteTags": g.delete_tags,
    "DescribeTags": g.describe_tags,
    "DescribeAccountLimits": g.describe_account_limits,
    "PutScalingPolicy": s.put_scaling_policy,
    "DescribePolicies": s.describe_policies,
    "DeletePolicy": s.delete_policy,
    "ExecutePolicy": s.execute_policy,
    "DescribeAdjustmentTypes": s.describe_adjustment_types,
    "DescribeTerminationPolicyTypes": s.describe_termination_policy_types,
    "StartInstanceRefresh": s.start_instance_refresh,
    "DescribeInstanceRefreshes": s.describe_instance_refreshes,
    "CancelInstanceRefresh": s.cancel_instance_refresh,
    "DescribeWarmPool": s.describe_warm_pool,
    "DescribeAutoScalingNotificationTypes": s.describe_auto_scaling_notification_types,
    "DescribeLifecycleHookTypes": s.describe_lifecycle_hook_types,
    "DeleteWarmPool": s.delete_nothing("warm pool"),
    "DeleteLifecycleHook": s.delete_nothing("lifecycle hook"),
    "DeleteNotificationConfiguration": s.delete_nothing("notification configuration"),
    "DeleteScheduledAction": s.delete_nothing("scheduled action"),
    **{action: s.empty(key) for action, key in s.EMPTY.items()},
    **{action: s.refused(action, why) for action, why in s.REFUSED.items()},
}


def create_autoscaling_app(cloud, asg: AutoScaling):
    return create_query_app(cloud, QueryService(
        name="autoscaling", actions={a: partial(h, asg) for a, h in HANDLERS.items()}, render=response,
        error=lambda exc, rid: query_error(exc, NAMESPACE, rid),
        unsigned=lambda: Unauthorized("Request is missing Authentication Token: sign it with AWS Signature "
                                      "Version 4 using a pocketcloud access key (eval \"$(pocketcloud env)\")",
                                      code="MissingAuthenticationToken"),
        unknown_key_code="InvalidClientTokenId"))
