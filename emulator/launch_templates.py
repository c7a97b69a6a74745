"""Launch templates: named, versioned instance configurations (EC2's `lt-…`).

A version's data is kept in the shape of EC2's `RequestLaunchTemplateData` (model member
names: `ImageId`, `SecurityGroupIds`, `TagSpecifications`, ...), checked against a schema
so that what is stored reads back exactly as written. Settings pocketcloud has no engine
for are refused when they ask for something other than AWS's default, never silently kept
as a promise nobody honours; block devices are stored (root volumes come with issue 13/15).
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import secrets
import time
from dataclasses import dataclass

from .compute.types import INSTANCE_TYPES
from .errors import AlreadyExists, InvalidParameter, NotFound
from .state import Store

TEMPLATE_ID = re.compile(r"lt-[0-9a-f]{17}")
TEMPLATE_NAME = re.compile(r"[a-zA-Z0-9().\-/_]{3,128}")
AMI = re.compile(r"ami-[0-9a-f]{17}")
MAX_VERSIONS = 10000  # EC2's limit per template
MAX_USER_DATA = 16 * 1024

# The accepted members of RequestLaunchTemplateData: a type, a nested schema, or a list of one.
_EBS = {"Encrypted": bool, "DeleteOnTermination": bool, "Iops": int, "KmsKeyId": str, "SnapshotId": str,
        "VolumeSize": int, "VolumeType": str, "Throughput": int}
SCHEMA: dict = {
    "ImageId": str, "InstanceType": str, "KeyName": str, "UserData": str,
    "SecurityGroupIds": [str], "SecurityGroups": [str],
    "TagSpecifications": [{"ResourceType": str, "Tags": [{"Key": str, "Value": str}]}],
    "BlockDeviceMappings": [{"DeviceName": str, "VirtualName": str, "NoDevice": str, "Ebs": _EBS}],
    "Monitoring": {"Enabled": bool},
    "Placement": {"AvailabilityZone": str, "Tenancy": str},
    "InstanceInitiatedShutdownBehavior": str, "DisableApiTermination": bool, "DisableApiStop": bool,
    "EbsOptimized": bool, "CreditSpecification": {"CpuCredits": str},
    "MetadataOptions": {"HttpTokens": str, "HttpPutResponseHopLimit": int, "HttpEndpoint": str,
                        "HttpProtocolIpv6": str, "InstanceMetadataTags": str},
}
# Settings that would change behaviour pocketcloud cannot deliver: only AWS's default passes.
ONLY_DEFAULT = {
    ("Monitoring", "Enabled"): False,
    ("InstanceInitiatedShutdownBehavior",): "stop",
    ("DisableApiTermination",): False,
    ("DisableApiStop",): False,
    ("Placement", "Tenancy"): "default",
}


def ami_id(image: str, kind: str) -> str:
    """The AMI id of a catalog image in one kind (the same derivation as the EC2 catalog)."""
    return "ami-" + hashlib.sha256(f"{image}:{kind}".encode()).hexdigest()[:17]


def image_of_ami(catalog: list[dict], ami: str, own: dict[str, str] | None = None) -> tuple[str, str]:
    """(image name, kind) behind an AMI id, from `Cloud.list_images()`, or from OWN (the
    launching account's images: ami id -> kind), which launch by their id."""
    if own and ami in own:
        return ami, own[ami]
    for img in catalog:
        for kind in img["kinds"]:
            if ami_id(img["name"], kind) == ami:
                return img["name"], kind
    raise NotFound(f"The image id '[{ami}]' does not exist", code="InvalidAMIID.NotFound")


@dataclass(frozen=True)
class LaunchTemplate:
    id: str
    owner: str
    name: str
    default_version: int
    latest_version: int
    tags: dict[str, str]
    created_at: float

    @classmethod
    def from_row(cls, row) -> "LaunchTemplate":
        return cls(row["id"], row["owner"], row["name"], row["default_version"], row["latest_version"],
                   json.loads(row["tags"]), row["created_at"])


@dataclass(frozen=True)
class TemplateVersion:
    template: LaunchTemplate
    version: int
    description: str
    data: dict
    created_at: float

    @property
    def is_default(self) -> bool:
        return self.version == self.template.default_version

    def instance_tags(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for spec in self.data.get("TagSpecifications", []):
            if spec.get("ResourceType", "instance") == "instance":
                out.update({t["Key"]: t.get("Value", "") for t in spec.get("Tags", [])})
        return out

    def user_data(self) -> str:
        raw = self.data.get("UserData") or ""
        return base64.b64decode(raw).decode() if raw else ""


def _coerce(schema, value, path: str):
    if isinstance(schema, list):
        if not isinstance(value, list):
            raise InvalidParameter(f"{path} must be a list", code="InvalidParameterValue")
        if len(value) > 100:
            raise InvalidParameter(f"{path} has more than 100 entries", code="InvalidParameterValue")
        return [_coerce(schema[0], v, f"{path}.{i + 1}") for i, v in enumerate(value)]
    if isinstance(schema, dict):
        if not isinstance(value, dict):
            raise InvalidParameter(f"{path} must be a structure", code="InvalidParameterValue")
        unknown = sorted(set(value) - set(schema))
        if unknown:
            raise InvalidParameter(
                f"{path}.{unknown[0][:64]} is not supported by pocketcloud (supported: {', '.join(schema)})",
                code="InvalidParameterValue")
        return {k: _coerce(schema[k], v, f"{path}.{k}") for k, v in value.items()}
    if schema is bool:
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("true", "false"):
            return str(value).lower() == "true"
        raise InvalidParameter(f"{path} must be true or false", code="InvalidParameterValue")
    if schema is int:
        try:
            n = int(value)
        except (TypeError, ValueError):
            raise InvalidParameter(f"{path} must be an integer", code="InvalidParameterValue") from None
        if not 0 <= n <= 1 << 31:
            raise InvalidParameter(f"{path} is out of range", code="InvalidParameterValue")
        return n
    if not isinstance(value, str) or len(value) > 64 * 1024 or "\x00" in value:
        raise InvalidParameter(f"{path} must be a string", code="InvalidParameterValue")
    return value


def clean_data(data) -> dict:
    """Validate LaunchTemplateData (nested, model member names) and return it normalised."""
    data = _coerce(SCHEMA, data or {}, "LaunchTemplateData")
    for path, default in ONLY_DEFAULT.items():
        node = data
        for part in path[:-1]:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict) and path[-1] in node and node[path[-1]] != default:
            raise InvalidParameter(f"LaunchTemplateData.{'.'.join(path)}={node[path[-1]]!r} is not supported by "
                                   f"pocketcloud (only the default {default!r})", code="InvalidParameterValue")
    if "ImageId" in data and not AMI.fullmatch(data["ImageId"]):
        raise InvalidParameter(f"Invalid id: {data['ImageId'][:40]!r} (expecting 'ami-...')",
                               code="InvalidAMIID.Malformed")
    if "InstanceType" in data and data["InstanceType"] not in INSTANCE_TYPES:
        raise InvalidParameter(f"The instance type {data['InstanceType'][:40]!r} does not exist "
                               f"(pocketcloud offers {', '.join(INSTANCE_TYPES)})", code="InvalidInstanceType")
    if data.get("UserData"):
        try:
            raw = base64.b64decode(data["UserData"], validate=True)
            raw.decode()
        except (binascii.Error, UnicodeDecodeError):
            raise InvalidParameter("UserData must be base64-encoded UTF-8 text",
                                   code="InvalidUserData.Malformed") from None
        if len(raw) > MAX_USER_DATA:
            raise InvalidParameter(f"UserData is larger than {MAX_USER_DATA} bytes", code="InvalidUserData.Malformed")
    for spec in data.get("TagSpecifications", []):
        for tag in spec.get("Tags", []):
            if not tag.get("Key") or len(tag["Key"]) > 128 or tag["Key"].lower().startswith("aws:"):
                raise InvalidParameter("each tag needs a Key of 1-128 characters, not starting with 'aws:'",
                                       code="InvalidParameterValue")
    return data


def _clean_description(description) -> str:
    if description is None:
        return ""
    if not isinstance(description, str) or len(description) > 255:
        raise InvalidParameter("VersionDescription must be at most 255 characters", code="InvalidParameterValue")
    return description


class LaunchTemplates:
    def __init__(self, store: Store):
        self.store = store

    # -- reading ------------------------------------------------------------------------
    def get(self, owner: str, template_id: str | None = None, name: str | None = None) -> LaunchTemplate:
        """By id or by name; another account's template answers exactly like a missing one."""
        if template_id:
            if not isinstance(template_id, str) or not TEMPLATE_ID.fullmatch(template_id):
                raise InvalidParameter(f"The launch template ID '{str(template_id)[:40]}' is malformed",
                                       code="InvalidLaunchTemplateId.Malformed")
            row = self.store.one("SELECT * FROM launch_templates WHERE id=? AND owner=?", (template_id, owner))
            if row is None:
                raise NotFound(f"The specified launch template, with template ID {template_id}, does not exist.",
                               code="InvalidLaunchTemplateId.NotFound")
            return LaunchTemplate.from_row(row)
        if name:
            row = self.store.one("SELECT * FROM launch_templates WHERE name=? AND owner=?", (name, owner))
            if row is None:
                raise NotFound(f"The specified launch template, with template name {str(name)[:128]}, does not exist.",
                               code="InvalidLaunchTemplateName.NotFoundException")
            return LaunchTemplate.from_row(row)
        raise InvalidParameter("a launch template ID or name is required", code="MissingParameter")

    def list(self, owner: str) -> list[LaunchTemplate]:
        return [LaunchTemplate.from_row(r) for r in self.store.query(
            "SELECT * FROM launch_templates WHERE owner=? ORDER BY created_at", (owner,))]

    def version(self, template: LaunchTemplate, version="$Default") -> TemplateVersion:
        """One version: a number, `$Latest` or `$Default` (what EC2 and Auto Scaling accept)."""
        number = self._number(template, version)
        row = self.store.one("SELECT * FROM launch_template_versions WHERE template_id=? AND version=?",
                             (template.id, number))
        if row is None:
            raise NotFound(f"Could not find launch template version {number} of {template.id}",
                           code="InvalidLaunchTemplateId.VersionNotFound")
        return self._version(template, row)

    def versions(self, template: LaunchTemplate, wanted: list[str] | None = None,
                 low: int | None = None, high: int | None = None) -> list[TemplateVersion]:
        if wanted:
            return [self.version(template, v) for v in wanted]
        rows = self.store.query("SELECT * FROM launch_template_versions WHERE template_id=? ORDER BY version",
                                (template.id,))
        return [self._version(template, r) for r in rows
                if (low is None or r["version"] >= low) and (high is None or r["version"] <= high)]

    def resolve(self, owner: str, template_id: str | None, name: str | None, version=None) -> TemplateVersion:
        """What RunInstances and Auto Scaling launch from (version defaults to `$Default`)."""
        return self.version(self.get(owner, template_id, name), version or "$Default")

    @staticmethod
    def _number(template: LaunchTemplate, version) -> int:
        if version in (None, "", "$Default"):
            return template.default_version
        if version == "$Latest":
            return template.latest_version
        try:
            n = int(version)
        except (TypeError, ValueError):
            raise InvalidParameter(f"Invalid launch template version {str(version)[:20]!r}: a number, "
                                   "$Latest or $Default", code="InvalidLaunchTemplateId.VersionNotFound") from None
        if not 1 <= n <= template.latest_version:
            raise NotFound(f"Could not find launch template version {n} of {template.id}",
                           code="InvalidLaunchTemplateId.VersionNotFound")
        return n

    @staticmethod
    def _version(template: LaunchTemplate, row) -> TemplateVersion:
        return TemplateVersion(template, row["version"], row["description"], json.loads(row["data"]),
                               row["created_at"])

    # -- writing ------------------------------------------------------------------------
    def create(self, owner: str, name, data, description=None, tags: dict | None = None) -> TemplateVersion:
        if not isinstance(name, str) or not TEMPLATE_NAME.fullmatch(name):
            raise InvalidParameter("LaunchTemplateName must be 3-128 characters: letters, digits and ( ) . - / _",
                                   code="InvalidLaunchTemplateName.MalformedException")
        clean = clean_data(data)
        description = _clean_description(description)
        tid = "lt-" + secrets.token_hex(9)[:17]
        now = time.time()
        with self.store.tx() as c:
            if c.execute("SELECT 1 FROM launch_templates WHERE owner=? AND name=?", (owner, name)).fetchone():
                raise AlreadyExists(f"Launch template name already in use: {name}",
                                    code="InvalidLaunchTemplateName.AlreadyExistsException")
            c.execute("INSERT INTO launch_templates (id, owner, name, default_version, latest_version, tags, "
                      "created_at) VALUES (?,?,?,1,1,?,?)", (tid, owner, name, json.dumps(tags or {}), now))
            c.execute("INSERT INTO launch_template_versions (template_id, version, description, data, created_at) "
                      "VALUES (?,1,?,?,?)", (tid, description, json.dumps(clean), now))
        return self.resolve(owner, tid, None, 1)

    def create_version(self, template: LaunchTemplate, data, description=None,
                       source_version=None) -> TemplateVersion:
        """A new version; with a source version the new one is the source with `data` laid over it."""
        base = self.version(template, source_version).data if source_version is not None else {}
        clean = clean_data({**base, **(data or {})})
        description = _clean_description(description)
        with self.store.tx() as c:
            row = c.execute("SELECT latest_version FROM launch_templates WHERE id=?", (template.id,)).fetchone()
            if row is None:
                raise NotFound(f"The specified launch template, with template ID {template.id}, does not exist.",
                               code="InvalidLaunchTemplateId.NotFound")
            number = row[0] + 1
            if number > MAX_VERSIONS:
                raise InvalidParameter(f"a launch template has at most {MAX_VERSIONS} versions",
                                       code="LaunchTemplateVersionLimitExceeded")
            c.execute("INSERT INTO launch_template_versions (template_id, version, description, data, created_at) "
                      "VALUES (?,?,?,?,?)", (template.id, number, description, json.dumps(clean), time.time()))
            c.execute("UPDATE launch_templates SET latest_version=? WHERE id=?", (number, template.id))
        return self.resolve(template.owner, template.id, None, number)

    def set_default(self, template: LaunchTemplate, version) -> LaunchTemplate:
        number = self._number(template, version)
        with self.store.tx() as c:
            c.execute("UPDATE launch_templates SET default_version=? WHERE id=?", (number, template.id))
        return self.get(template.owner, template.id)

    def set_tags(self, template: LaunchTemplate, tags: dict[str, str]) -> None:
        with self.store.tx() as c:
            c.execute("UPDATE launch_templates SET tags=? WHERE id=?", (json.dumps(tags), template.id))

    def delete(self, template: LaunchTemplate) -> None:
        with self.store.tx() as c:
            c.execute("DELETE FROM launch_templates WHERE id=?", (template.id,))


def launch_args(version: TemplateVersion, catalog: list[dict], own: dict[str, str] | None = None) -> dict:
    """`Cloud.run_instance` keyword arguments for one launch from a template version (OWN: the
    owner's images, see image_of_ami)."""
    data = version.data
    if not data.get("ImageId"):
        raise InvalidParameter(f"launch template {version.template.id} version {version.version} has no ImageId",
                               code="MissingParameter")
    image, kind = image_of_ami(catalog, data["ImageId"], own)
    tags = version.instance_tags()
    groups = list(data.get("SecurityGroupIds", [])) + list(data.get("SecurityGroups", []))
    return {"image": image, "kind": kind, "type": data.get("InstanceType") or "t2.micro",
            "user_data": version.user_data() or None, "tags": tags or None,
            "key_name": data.get("KeyName") or None, "security_groups": groups or ["default"]}
