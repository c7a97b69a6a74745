"""Console pages for Auto Scaling groups: the list (with a create form) and one page per
group with its members, the desired/min/max controls and the activity history.

The routes join the console's blueprint (same sign-in, CSRF and error pages): import this
module before the blueprint is registered (api/web/__init__.py does)."""
from __future__ import annotations

from flask import current_app, flash, g, redirect, render_template, request, url_for

from emulator.errors import InvalidParameter
from emulator.launch_templates import LaunchTemplates, ami_id

from ..rest_groups import group_detail, group_summary
from .views import action, bp, cloud


def autoscaling():
    return current_app.config["AUTOSCALING"]


def _number(form, key: str) -> int | None:
    raw = form.get(key, "").strip()
    if not raw:
        return None
    if not raw.isdigit():
        raise InvalidParameter(f"{key} must be a whole number, got {raw[:20]!r}")
    return int(raw)


@bp.get("/groups")
def groups():
    asg = autoscaling()
    store = LaunchTemplates(cloud().store)
    images = [i for i in cloud().list_images() if i.get("kind_names")]
    return render_template("groups.html", groups=[group_summary(asg, grp) for grp in asg.groups(g.account.id)],
                           templates=store.list(g.account.id), images=images, types=cloud().instance_types(),
                           zones=[f"{cloud().config.region}{z}" for z in "abc"])


@bp.post("/groups")
@action
def group_create():
    f = request.form
    name = f.get("name", "").strip()
    template = f.get("template", "")
    if not template:  # quick create: a launch template named after the group, from an image
        image, kind = f.get("image", ""), f.get("kind", "container")
        data = {"ImageId": ami_id(image, kind), "InstanceType": f.get("type") or "t2.micro"}
        LaunchTemplates(cloud().store).create(g.account.id, name, data, "made by the console with the group")
        template = name
    spec = {"AutoScalingGroupName": name, "LaunchTemplate": {"LaunchTemplateName": template, "Version": "$Latest"},
            "MinSize": _number(f, "min"), "MaxSize": _number(f, "max"), "DesiredCapacity": _number(f, "desired"),
            "AvailabilityZones": f.getlist("zones") or [f"{cloud().config.region}a"]}
    autoscaling().create_group(g.account, {k: v for k, v in spec.items() if v is not None})
    flash(f"Created group {name}: it launches its instances now.", "ok")
    return redirect(url_for("web.group", name=name))


@bp.get("/groups/<name>")
def group(name: str):
    asg = autoscaling()
    return render_template("group.html", group=group_detail(asg, g.account, asg.group(g.account.id, name), 100))


@bp.post("/groups/<name>/capacity")
@action
def group_capacity(name: str):
    f = request.form
    spec = {k: v for k, v in (("MinSize", _number(f, "min")), ("MaxSize", _number(f, "max")),
                              ("DesiredCapacity", _number(f, "desired"))) if v is not None}
    grp = autoscaling().update_group(g.account, name, spec)
    flash(f"{name}: min {grp.min_size}, desired {grp.desired}, max {grp.max_size}.", "ok")
    return redirect(url_for("web.group", name=name))


@bp.post("/groups/<name>/instances/<instance_id>/terminate")
@action
def group_terminate(name: str, instance_id: str):
    autoscaling().group(g.account.id, name)
    decrement = request.form.get("decrement") == "1"
    autoscaling().terminate_instance(g.account, instance_id, decrement)
    flash(f"Terminating {instance_id}" + (" and lowering the desired capacity." if decrement
                                          else "; the group launches a replacement."), "ok")
    return redirect(url_for("web.group", name=name))


@bp.post("/groups/<name>/delete")
@action
def group_delete(name: str):
    autoscaling().delete_group(g.account, name, force=True)
    flash(f"Deleting group {name}: its instances are being terminated.", "ok")
    return redirect(url_for("web.groups"))
