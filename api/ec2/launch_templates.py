"""Launch-template actions of the EC2 API, and RunInstances' `LaunchTemplate` parameter."""
from __future__ import annotations

import base64

from emulator.errors import InvalidParameter
from emulator.launch_templates import LaunchTemplate, LaunchTemplates, TemplateVersion
from emulator.timefmt import iso_utc

from ..autoscaling.params import nested
from .params import filters, integer, members, tags, values

# EC2's Query names (singular) -> the model's member names used in storage.
REQUEST_NAMES = {"SecurityGroupId": "SecurityGroupIds", "SecurityGroup": "SecurityGroups",
                 "TagSpecification": "TagSpecifications", "Tag": "Tags",
                 "BlockDeviceMapping": "BlockDeviceMappings"}
# The model's list members -> EC2 XML element names.
RESPONSE_NAMES = {"SecurityGroupIds": "securityGroupIdSet", "SecurityGroups": "securityGroupSet",
                  "TagSpecifications": "tagSpecificationSet", "Tags": "tagSet",
                  "BlockDeviceMappings": "blockDeviceMappingSet"}


def _templates(cloud) -> LaunchTemplates:
    return LaunchTemplates(cloud.store)


def _xml_data(value):
    if isinstance(value, dict):
        return {RESPONSE_NAMES.get(k, k[:1].lower() + k[1:]): _xml_data(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_xml_data(v) for v in value]
    return value


def template_xml(caller, t: LaunchTemplate) -> dict:
    return {"launchTemplateId": t.id, "launchTemplateName": t.name, "createTime": iso_utc(t.created_at, millis=True),
            "createdBy": f"arn:aws:iam::{caller.id}:user/{caller.name}",
            "defaultVersionNumber": t.default_version, "latestVersionNumber": t.latest_version,
            "tagSet": [{"key": k, "value": v} for k, v in t.tags.items()]}


def version_xml(caller, v: TemplateVersion) -> dict:
    return {"launchTemplateId": v.template.id, "launchTemplateName": v.template.name, "versionNumber": v.version,
            "versionDescription": v.description or None, "createTime": iso_utc(v.created_at, millis=True),
            "createdBy": f"arn:aws:iam::{caller.id}:user/{caller.name}", "defaultVersion": v.is_default,
            "launchTemplateData": _xml_data(v.data)}


def _data(p) -> dict:
    data = nested(p, "LaunchTemplateData", REQUEST_NAMES)
    if data is not None and not isinstance(data, dict):
        raise InvalidParameter("LaunchTemplateData must be a structure", code="InvalidParameterValue")
    return data or {}


def _template(cloud, caller, p) -> LaunchTemplate:
    return _templates(cloud).get(caller.id, p.get("LaunchTemplateId") or None, p.get("LaunchTemplateName") or None)


def create_launch_template(cloud, caller, p) -> dict:
    template_tags = {}
    for spec in members(p, "TagSpecification"):
        if spec.get("ResourceType") != "launch-template":
            raise InvalidParameter("CreateLaunchTemplate tags the launch template only (ResourceType "
                                   "launch-template); instance tags go in LaunchTemplateData",
                                   code="InvalidParameterValue")
        template_tags.update(tags(spec, "Tag"))
    v = _templates(cloud).create(caller.id, p.get("LaunchTemplateName"), _data(p), p.get("VersionDescription"),
                                 template_tags)
    return {"launchTemplate": template_xml(caller, v.template)}


def create_launch_template_version(cloud, caller, p) -> dict:
    v = _templates(cloud).create_version(_template(cloud, caller, p), _data(p), p.get("VersionDescription"),
                                         p.get("SourceVersion"))
    return {"launchTemplateVersion": version_xml(caller, v)}


def modify_launch_template(cloud, caller, p) -> dict:
    t = _template(cloud, caller, p)
    if p.get("SetDefaultVersion"):
        t = _templates(cloud).set_default(t, p["SetDefaultVersion"])
    return {"launchTemplate": template_xml(caller, t)}


def delete_launch_template(cloud, caller, p) -> dict:
    t = _template(cloud, caller, p)
    _templates(cloud).delete(t)
    return {"launchTemplate": template_xml(caller, t)}


def _page(p, items: list) -> tuple[list, str | None]:
    max_results = integer(p, "MaxResults", None, 1, 200)
    try:
        start = int(base64.b64decode(p["NextToken"]).decode()) if p.get("NextToken") else 0
    except ValueError:
        raise InvalidParameter("invalid NextToken", code="InvalidParameterValue") from None
    if max_results is None:
        return items[start:], None
    end = start + max_results
    return items[start:end], (base64.b64encode(str(end).encode()).decode() if end < len(items) else None)


def describe_launch_templates(cloud, caller, p) -> dict:
    store = _templates(cloud)
    ids, names = values(p, "LaunchTemplateId"), values(p, "LaunchTemplateName")
    if ids or names:
        found = [store.get(caller.id, template_id=i) for i in ids] + [store.get(caller.id, name=n) for n in names]
    else:
        found = store.list(caller.id)
    for name, vals in filters(p).items():
        if name == "launch-template-name":
            found = [t for t in found if t.name in vals]
        elif name == "tag-key":
            found = [t for t in found if any(k in t.tags for k in vals)]
        elif name.startswith("tag:"):
            found = [t for t in found if t.tags.get(name[4:]) in vals]
        else:
            raise InvalidParameter(f"the filter '{name[:64]}' is invalid (supported: launch-template-name, "
                                   "tag-key, tag:KEY)", code="InvalidParameterValue")
    page, token = _page(p, found)
    return {"launchTemplates": [template_xml(caller, t) for t in page], "nextToken": token}


def describe_launch_template_versions(cloud, caller, p) -> dict:
    t = _template(cloud, caller, p)
    low, high = integer(p, "MinVersion", None, 1), integer(p, "MaxVersion", None, 1)
    versions = _templates(cloud).versions(t, values(p, "LaunchTemplateVersion") or None, low, high)
    for name, vals in filters(p).items():
        if name == "is-default-version":
            versions = [v for v in versions if str(v.is_default).lower() in vals]
        else:
            raise InvalidParameter(f"the filter '{name[:64]}' is invalid (supported: is-default-version)",
                                   code="InvalidParameterValue")
    page, token = _page(p, versions)
    return {"launchTemplateVersionSet": [version_xml(caller, v) for v in page], "nextToken": token}


def with_launch_template(cloud, caller, p: dict) -> dict:
    """RunInstances parameters with a `LaunchTemplate` filled in from the template version:
    what the request gives explicitly wins, as on EC2; tags of both are kept (the request's
    last, so they win per key)."""
    spec = nested(p, "LaunchTemplate")
    if not spec:
        return p
    if not isinstance(spec, dict):
        raise InvalidParameter("LaunchTemplate must be a structure", code="InvalidParameterValue")
    v = _templates(cloud).resolve(caller.id, spec.get("LaunchTemplateId"), spec.get("LaunchTemplateName"),
                                  spec.get("Version"))
    # The template is resolved here; what remains of the request is a plain launch.
    data, out = v.data, {k: val for k, val in p.items() if not k.startswith("LaunchTemplate.")}
    for key in ("ImageId", "InstanceType", "KeyName", "UserData"):
        if data.get(key) and not p.get(key):
            out[key] = data[key]
    if not values(p, "SecurityGroupId") and not values(p, "SecurityGroup"):
        for i, g in enumerate(data.get("SecurityGroupIds", []), 1):
            out[f"SecurityGroupId.{i}"] = g
        for i, g in enumerate(data.get("SecurityGroups", []), 1):
            out[f"SecurityGroup.{i}"] = g
    specs = data.get("TagSpecifications", [])
    if specs:
        for k in [k for k in out if k.startswith("TagSpecification.")]:
            del out[k]
        theirs = members(p, "TagSpecification")
        for i, s in enumerate(specs, 1):
            out[f"TagSpecification.{i}.ResourceType"] = s.get("ResourceType", "instance")
            for j, tag in enumerate(s.get("Tags", []), 1):
                out[f"TagSpecification.{i}.Tag.{j}.Key"] = tag["Key"]
                out[f"TagSpecification.{i}.Tag.{j}.Value"] = tag.get("Value", "")
        for i, s in enumerate(theirs, len(specs) + 1):
            out.update({f"TagSpecification.{i}.{k}": val for k, val in s.items()})
    return out
