"""Key pairs, tags and security groups of the EC2 API."""
from __future__ import annotations

import base64

from emulator.errors import InvalidParameter
from emulator.security_groups import rule

from .params import filters, members, required, tags, values


# -- key pairs ---------------------------------------------------------------------------
def _key_xml(kp) -> dict:
    return {"keyPairId": kp.id, "keyName": kp.name, "keyFingerprint": kp.fingerprint, "keyType": kp.key_type,
            "publicKey": kp.public_key, "createTime": kp.to_dict()["created_at"], "tagSet": []}


def create_key_pair(cloud, caller, p) -> dict:
    kp, private = cloud.keypairs.create(caller.id, required(p, "KeyName"))
    return {"keyName": kp.name, "keyFingerprint": kp.fingerprint, "keyMaterial": private, "keyPairId": kp.id}


def import_key_pair(cloud, caller, p) -> dict:
    raw = required(p, "PublicKeyMaterial")
    try:
        material = base64.b64decode(raw, validate=True).decode()
    except (ValueError, UnicodeDecodeError):  # binascii.Error, and non-ASCII text
        material = raw  # some clients send the key line itself
    kp = cloud.keypairs.import_(caller.id, required(p, "KeyName"), material)
    return {"keyName": kp.name, "keyFingerprint": kp.fingerprint, "keyPairId": kp.id}


def describe_key_pairs(cloud, caller, p) -> dict:
    keys = cloud.keypairs.list(caller.id, values(p, "KeyName") or None)
    ids = values(p, "KeyPairId")
    if ids:
        keys = [k for k in keys if k.id in ids]
    for name, vals in filters(p).items():
        if name == "key-name":
            keys = [k for k in keys if k.name in vals]
        elif name == "fingerprint":
            keys = [k for k in keys if k.fingerprint in vals]
    return {"keySet": [_key_xml(k) for k in keys]}


def delete_key_pair(cloud, caller, p) -> dict:
    name = p.get("KeyName")
    if not name and p.get("KeyPairId"):
        match = [k for k in cloud.keypairs.list(caller.id) if k.id == p["KeyPairId"]]
        name = match[0].name if match else None
        if name is None:
            return {"return": True}
    cloud.keypairs.delete(caller.id, name if name else required(p, "KeyName"))
    return {"return": True}


# -- tags ------------------------------------------------------------------------------------
def _instance_ids(p) -> list[str]:
    ids = values(p, "ResourceId")
    if not ids:
        raise InvalidParameter("the request must contain the parameter ResourceId", code="MissingParameter")
    bad = [i for i in ids if not i.startswith("i-")]
    if bad:
        raise InvalidParameter(f"tags are supported on instances only here, not {bad[0]!r}",
                               code="InvalidID")
    return ids


def create_tags(cloud, caller, p) -> dict:
    cloud.create_tags(caller, _instance_ids(p), tags(p))
    return {"return": True}


def delete_tags(cloud, caller, p) -> dict:
    spec = {}
    for t in members(p, "Tag"):
        if "Key" not in t:  # a Tag.N with only a Value: EC2 asks for the key
            raise InvalidParameter("each Tag needs a Key", code="InvalidParameterValue")
        spec[t["Key"]] = t.get("Value")
    cloud.delete_tags(caller, _instance_ids(p), spec)
    return {"return": True}


def describe_tags(cloud, caller, p) -> dict:
    out = []
    f = filters(p)
    for inst in cloud.describe_instances(caller):
        for k, v in inst.tags.items():
            out.append({"resourceId": inst.id, "resourceType": "instance", "key": k, "value": v})
    for name, key in (("resource-id", "resourceId"), ("key", "key"), ("value", "value"),
                      ("resource-type", "resourceType")):
        if name in f:
            out = [t for t in out if t[key] in f[name]]
    return {"tagSet": out}


# -- security groups ---------------------------------------------------------------------------
def _group_xml(caller, g) -> dict:
    return {
        "ownerId": caller.id, "groupId": g.id, "groupName": g.name, "groupDescription": g.description,
        "vpcId": "vpc-pocketcloud",
        "ipPermissions": [{"ipProtocol": r.protocol, "fromPort": r.from_port, "toPort": r.to_port,
                           "groups": [], "ipRanges": [{"cidrIp": r.cidr}], "ipv6Ranges": [],
                           "prefixListIds": []} for r in g.rules],
        "ipPermissionsEgress": [{"ipProtocol": "-1", "groups": [], "ipRanges": [{"cidrIp": "0.0.0.0/0"}],
                                 "ipv6Ranges": [], "prefixListIds": []}],
    }


def create_security_group(cloud, caller, p) -> dict:
    g = cloud.security_groups.create(caller.id, required(p, "GroupName"), required(p, "GroupDescription"))
    return {"return": True, "groupId": g.id}


def describe_security_groups(cloud, caller, p) -> dict:
    groups = cloud.security_groups.list(caller.id, (values(p, "GroupId") + values(p, "GroupName")) or None)
    for name, vals in filters(p).items():
        if name == "group-name":
            groups = [g for g in groups if g.name in vals]
        elif name == "group-id":
            groups = [g for g in groups if g.id in vals]
    return {"securityGroupInfo": [_group_xml(caller, g) for g in groups]}


def _rules(p) -> list:
    perms = members(p, "IpPermissions")
    out = []
    for perm in perms:
        cidrs = [r.get("CidrIp") for r in members(perm, "IpRanges")] or ["0.0.0.0/0"]
        for cidr in cidrs:
            out.append(rule(perm.get("IpProtocol", "tcp"), perm.get("FromPort"), perm.get("ToPort"), cidr))
    if not perms and "IpProtocol" in p:  # the older flat form: IpProtocol, FromPort, ToPort, CidrIp
        out.append(rule(p["IpProtocol"], p.get("FromPort"), p.get("ToPort"), p.get("CidrIp", "0.0.0.0/0")))
    if not out:
        raise InvalidParameter("the request must contain IpPermissions", code="MissingParameter")
    return out


def _group_ref(p) -> str:
    return p.get("GroupId") or required(p, "GroupName")


def authorize_security_group_ingress(cloud, caller, p) -> dict:
    cloud.authorize_ingress(caller, _group_ref(p), _rules(p))
    return {"return": True}


def revoke_security_group_ingress(cloud, caller, p) -> dict:
    cloud.revoke_ingress(caller, _group_ref(p), _rules(p))
    return {"return": True}


def delete_security_group(cloud, caller, p) -> dict:
    cloud.delete_security_group(caller, _group_ref(p))
    return {"return": True}
