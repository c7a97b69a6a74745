"""JSON REST for Auto Scaling groups and launch templates under /api/v1 (the CLI and curl).

Register next to the main REST blueprint: `flask_app.register_blueprint(rest_groups.bp)`;
the service is `app.config["AUTOSCALING"]`. Auth, error shape and helpers are api/rest.py's.

    GET    /api/v1/groups                                 the caller's groups (summary)
    POST   /api/v1/groups  {"name", "launch_template": {"name"|"id", "version"?}, "min", "max",
                            "desired"?, "zones"?: ["a", ...], "grace"?, "tags"?: {k: v} (propagated)}
    GET    /api/v1/groups/NAME                            instances, activities, policies, refreshes, CPU
    PATCH  /api/v1/groups/NAME  {"min"?, "max"?, "desired"?}
    DELETE /api/v1/groups/NAME[?force=true]
    GET    /api/v1/groups/NAME/activities[?limit=N]
    GET    /api/v1/instances/ID/group                     which group keeps it alive, and why (or why not)
    GET    /api/v1/launch-templates, POST {"name", "image", "kind", "type"?, "user_data"?, "key_name"?,
                                          "security_groups"?, "tags"?}, DELETE /api/v1/launch-templates/NAME
"""
from __future__ import annotations

import base64

from flask import Blueprint, current_app, g, jsonify, request

from emulator.autoscaling import AutoScaling
from emulator.autoscaling.model import Activity, Group, Member, iso
from emulator.errors import CloudError, InvalidParameter
from emulator.launch_templates import LaunchTemplates, TemplateVersion, ami_id, image_of_ami

from .rest import authenticated, body, cloud

bp = Blueprint("rest_groups", __name__, url_prefix="/api/v1")


def autoscaling() -> AutoScaling:
    return current_app.config["AUTOSCALING"]


def group_summary(asg: AutoScaling, grp: Group) -> dict:
    members = asg.members(grp)
    c = grp.config
    return {"name": grp.name, "arn": grp.arn(asg.region), "status": grp.status or "active",
            "min": c["MinSize"], "max": c["MaxSize"], "desired": c["DesiredCapacity"],
            "in_service": sum(1 for m in members if m.lifecycle == "InService" and m.health == "Healthy"),
            "instances": len(members), "launch_template": c["LaunchTemplate"], "zones": c["AvailabilityZones"],
            "health_check_type": c["HealthCheckType"], "grace": c["HealthCheckGracePeriod"],
            "suspended": c.get("SuspendedProcesses", []),
            "tags": {t["Key"]: t["Value"] for t in c.get("Tags", [])}, "created_at": iso(grp.created_at)}


def member_dict(m: Member, inst=None) -> dict:
    return {"id": m.instance_id, "zone": m.az, "lifecycle": m.lifecycle, "health": m.health,
            "health_reason": m.health_reason or None, "state": inst.state if inst else None,
            "engine_id": inst.engine_id if inst else None,
            "template_version": m.template.get("Version"), "type": m.template.get("InstanceType"),
            "protected": m.protected, "launched_at": iso(m.launched_at), "in_service_at": iso(m.in_service_at)}


def activity_dict(a: Activity) -> dict:
    return {"id": a.id, "description": a.description, "cause": a.cause, "status": a.status,
            "status_message": a.status_message or None, "start": iso(a.start_time), "end": iso(a.end_time),
            "start_ts": a.start_time, "end_ts": a.end_time}


def group_detail(asg: AutoScaling, account, grp: Group, limit: int = 50) -> dict:
    members = asg.members(grp)
    records = {i.id: i for i in cloud().describe_instances(account, ids=[m.instance_id for m in members])} \
        if members else {}
    refreshes = asg.refreshes.describe(account, grp.name)
    return {**group_summary(asg, grp),
            "members": [member_dict(m, records.get(m.instance_id)) for m in members],
            "activities": [activity_dict(a) for a in asg.activities.list(grp.owner, grp.name)[:limit]],
            "policies": asg.policies.list(account, grp.name),
            "refreshes": [{"id": r.id, "status": r.status, "percentage": r.percentage, "reason": r.status_reason,
                           "start": iso(r.start_time), "end": iso(r.end_time)} for r in refreshes[:5]],
            "cpu": asg.policies.cpu(grp)}


@bp.get("/groups")
@authenticated
def list_groups():
    asg = autoscaling()
    return jsonify(groups=[group_summary(asg, grp) for grp in asg.groups(g.account.id)])


def _int(data: dict, key: str):
    value = data.get(key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise InvalidParameter(f"{key} must be an integer")
    return value


def _zones(value) -> list[str]:
    """Zone names, or just their letters (a, b, c); default all three."""
    region = cloud().config.region
    if value is None:
        return [f"{region}{z}" for z in "abc"]
    if not isinstance(value, list) or not all(isinstance(z, str) for z in value):
        raise InvalidParameter('zones must be a list like ["a", "b"] or ["us-east-1a"]')
    return [f"{region}{z}" if len(z) == 1 else z for z in value]


@bp.post("/groups")
@authenticated
def create_group():
    data = body()
    lt = data.get("launch_template")
    if not isinstance(lt, dict):
        raise InvalidParameter('launch_template must be an object like {"name": "web"} or {"id": "lt-...", '
                               '"version": "$Latest"}')
    tags = data.get("tags") or {}
    if not isinstance(tags, dict):
        raise InvalidParameter("tags must be an object of string keys to string values")
    spec = {"AutoScalingGroupName": data.get("name"), "MinSize": _int(data, "min"), "MaxSize": _int(data, "max"),
            "DesiredCapacity": _int(data, "desired"), "HealthCheckGracePeriod": _int(data, "grace"),
            "AvailabilityZones": _zones(data.get("zones")),
            "LaunchTemplate": {k: v for k, v in (("LaunchTemplateId", lt.get("id")),
                                                 ("LaunchTemplateName", lt.get("name")),
                                                 ("Version", lt.get("version"))) if v},
            "Tags": [{"Key": k, "Value": v, "PropagateAtLaunch": True} for k, v in tags.items()]}
    grp = autoscaling().create_group(g.account, {k: v for k, v in spec.items() if v is not None})
    return jsonify(group_detail(autoscaling(), g.account, grp)), 201


@bp.get("/groups/<name>")
@authenticated
def get_group(name: str):
    return jsonify(group_detail(autoscaling(), g.account, autoscaling().group(g.account.id, name)))


@bp.patch("/groups/<name>")
@authenticated
def update_group(name: str):
    data = body()
    unknown = set(data) - {"min", "max", "desired"}
    if unknown:
        raise InvalidParameter(f"unknown field {sorted(unknown)[0][:40]!r}: give min, max and/or desired")
    spec = {k: v for k, v in (("MinSize", _int(data, "min")), ("MaxSize", _int(data, "max")),
                              ("DesiredCapacity", _int(data, "desired"))) if v is not None}
    grp = autoscaling().update_group(g.account, name, spec)
    return jsonify(group_detail(autoscaling(), g.account, grp))


@bp.delete("/groups/<name>")
@authenticated
def delete_group(name: str):
    autoscaling().delete_group(g.account, name, force=request.args.get("force", "").lower() in ("1", "true", "yes"))
    return jsonify(group_summary(autoscaling(), autoscaling().group(g.account.id, name))) \
        if autoscaling().groups(g.account.id, [name]) else ("", 204)


@bp.get("/groups/<name>/activities")
@authenticated
def group_activities(name: str):
    grp = autoscaling().group(g.account.id, name)
    try:
        limit = int(request.args.get("limit", 100))
    except ValueError:
        raise InvalidParameter("limit must be an integer") from None
    acts = autoscaling().activities.list(grp.owner, grp.name)[:max(1, min(limit, 1000))]
    return jsonify(activities=[activity_dict(a) for a in acts])


@bp.get("/instances/<instance_id>/group")
@authenticated
def instance_group(instance_id: str):
    return jsonify(autoscaling().explain(g.account, instance_id))


# -- launch templates ------------------------------------------------------------------------
def template_dict(v: TemplateVersion) -> dict:
    try:
        image, kind = image_of_ami(cloud().list_images(), v.data.get("ImageId", ""))
    except CloudError:
        image, kind = None, None
    return {"id": v.template.id, "name": v.template.name, "default_version": v.template.default_version,
            "latest_version": v.template.latest_version, "image_id": v.data.get("ImageId"), "image": image,
            "kind": kind, "type": v.data.get("InstanceType"), "key_name": v.data.get("KeyName"),
            "created_at": iso(v.template.created_at)}


@bp.get("/launch-templates")
@authenticated
def list_templates():
    store = LaunchTemplates(cloud().store)
    return jsonify(launch_templates=[template_dict(store.version(t)) for t in store.list(g.account.id)])


@bp.post("/launch-templates")
@authenticated
def create_template():
    data = body()
    image, kind = data.get("image"), data.get("kind", "container")
    if not isinstance(image, str) or kind not in ("container", "vm"):
        raise InvalidParameter('give "image" (a catalog name such as tiny) and "kind" (container or vm)')
    ami = ami_id(image, kind)
    image_of_ami(cloud().list_images(), ami)  # the image must exist in that kind now
    launch = {"ImageId": ami, "InstanceType": data.get("type") or "t2.micro"}
    if data.get("user_data"):
        if not isinstance(data["user_data"], str):
            raise InvalidParameter("user_data must be a string")
        launch["UserData"] = base64.b64encode(data["user_data"].encode()).decode()
    if data.get("key_name"):
        launch["KeyName"] = data["key_name"]
    if data.get("security_groups"):
        launch["SecurityGroupIds"] = data["security_groups"]
    if data.get("tags"):
        if not isinstance(data["tags"], dict):
            raise InvalidParameter("tags must be an object of string keys to string values")
        launch["TagSpecifications"] = [{"ResourceType": "instance", "Tags": [{"Key": k, "Value": v}
                                                                             for k, v in data["tags"].items()]}]
    v = LaunchTemplates(cloud().store).create(g.account.id, data.get("name"), launch, data.get("description"))
    return jsonify(template_dict(v)), 201


@bp.delete("/launch-templates/<name>")
@authenticated
def delete_template(name: str):
    store = LaunchTemplates(cloud().store)
    store.delete(store.get(g.account.id, name=name))
    return "", 204
