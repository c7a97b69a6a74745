"""Key pairs and tags of the EC2 API (tags on every resource type pocketcloud describes)."""
from __future__ import annotations

import base64
import re

from emulator.errors import InvalidParameter, NotFound
from emulator.placement import placements
from emulator.tags import resource_type
from emulator.validation import by_ids

from . import filtering
from .catalog import all_amis
from .params import boolean, dry_run, members, mutating, required, tag_specifications, tags, values

KEY_PAIR_ID = re.compile(r"key-[0-9a-f]{17}")


# -- key pairs ---------------------------------------------------------------------------
def _key_xml(kp, tag_map: dict, with_public: bool) -> dict:
    return {"keyPairId": kp.id, "keyName": kp.name, "keyFingerprint": kp.fingerprint, "keyType": kp.key_type,
            "publicKey": kp.public_key if with_public else None, "createTime": kp.to_dict()["created_at"],
            "tagSet": [{"key": k, "value": v} for k, v in tag_map.get(kp.id, {}).items()]}


def _key_tags(p) -> dict:
    return tag_specifications(p, ("key-pair",)).get("key-pair", {})


@mutating
def create_key_pair(cloud, caller, p) -> dict:
    name = required(p, "KeyName")
    key_type = p.get("KeyType", "ed25519")
    if key_type != "ed25519" or p.get("KeyFormat", "pem") != "pem":
        raise InvalidParameter("pocketcloud creates ed25519 key pairs in OpenSSH PEM format only; omit KeyType "
                               "and KeyFormat, or import your own key (ImportKeyPair)", code="UnsupportedOperation")
    key_tags = _key_tags(p)
    dry_run(p)
    kp, private = cloud.keypairs.create(caller.id, name)
    if key_tags:
        cloud.resource_tags.set(caller.id, [kp.id], key_tags)
    return {"keyName": kp.name, "keyFingerprint": kp.fingerprint, "keyMaterial": private, "keyPairId": kp.id,
            "tagSet": [{"key": k, "value": v} for k, v in key_tags.items()]}


@mutating
def import_key_pair(cloud, caller, p) -> dict:
    raw = required(p, "PublicKeyMaterial")
    try:
        material = base64.b64decode(raw, validate=True).decode()
    except (ValueError, UnicodeDecodeError):  # binascii.Error, and non-ASCII text
        material = raw  # some clients send the key line itself
    key_tags = _key_tags(p)
    dry_run(p)
    kp = cloud.keypairs.import_(caller.id, required(p, "KeyName"), material)
    if key_tags:
        cloud.resource_tags.set(caller.id, [kp.id], key_tags)
    return {"keyName": kp.name, "keyFingerprint": kp.fingerprint, "keyPairId": kp.id,
            "tagSet": [{"key": k, "value": v} for k, v in key_tags.items()]}


def _key_pairs(cloud, caller, names: list[str] | None = None, ids: list[str] | None = None) -> list:
    return by_ids(cloud.keypairs.list(caller.id, names or None), ids, KEY_PAIR_ID, "key", "key pair",
                  ("InvalidKeyPair", "InvalidKeyPair.NotFound"))


def describe_key_pairs(cloud, caller, p) -> dict:
    keys = _key_pairs(cloud, caller, values(p, "KeyName"), values(p, "KeyPairId"))
    tag_map = cloud.resource_tags.of(caller.id, [k.id for k in keys])
    table = {"key-name": lambda k: k.name, "key-pair-id": lambda k: k.id, "fingerprint": lambda k: k.fingerprint,
             "key-type": lambda k: k.key_type}
    keys = filtering.apply(p, keys, table, tags=lambda k: tag_map.get(k.id, {}))
    return {"keySet": [_key_xml(k, tag_map, boolean(p, "IncludePublicKey")) for k in keys]}


@mutating
def delete_key_pair(cloud, caller, p) -> dict:
    """Deleting a key pair that does not exist succeeds, as on EC2."""
    if p.get("KeyPairId"):
        match = [k for k in cloud.keypairs.list(caller.id) if k.id == p["KeyPairId"]]
        name = match[0].name if match else None
    else:
        name = required(p, "KeyName")
        match = [k for k in cloud.keypairs.list(caller.id) if k.name == name]
    dry_run(p)
    if name is not None:
        cloud.keypairs.delete(caller.id, name)
    if match:
        cloud.resource_tags.forget([match[0].id])
    return {"return": True, "keyPairId": match[0].id if match else None}


# -- tags ------------------------------------------------------------------------------------
def _owned(cloud, caller, ids: list[str]) -> tuple[list[str], list[str]]:
    """Split resource ids into instances and other resources, checking each is the caller's
    (another account's resource answers exactly like a missing one)."""
    if not ids:
        raise InvalidParameter("the request must contain the parameter ResourceId", code="MissingParameter")
    if len(ids) > 1000:
        raise InvalidParameter("at most 1000 resources per request", code="InvalidParameterValue")
    instances, others = [], []
    by_type: dict[str, list[str]] = {}
    for rid in ids:
        kind = resource_type(rid) if isinstance(rid, str) else None
        if kind is None:
            raise InvalidParameter(f"Invalid id: \"{str(rid)[:40]}\"", code="InvalidID")
        by_type.setdefault(kind, []).append(rid)
    for kind, group in by_type.items():
        if kind == "instance":
            for rid in group:
                cloud.get_instance(caller, rid)
            instances += group
            continue
        _exist(cloud, caller, kind, group)
        others += group
    return instances, others


def _exist(cloud, caller, kind: str, ids: list[str]) -> None:
    if kind == "vpc":
        cloud.vpcs.list(caller.id, ids)
    elif kind == "subnet":
        cloud.vpcs.subnets(caller.id, cloud.config.region, ids)
    elif kind == "security-group":
        for i in ids:
            cloud.security_groups.get(caller.id, i)
    elif kind == "key-pair":
        _key_pairs(cloud, caller, ids=ids)
    elif kind == "security-group-rule":
        have = {r.id for _, _, r in cloud.security_groups.all_rules(caller.id)}
        for i in ids:
            if i not in have:
                raise NotFound(f"The security group rule ID '{i[:40]}' does not exist",
                               code="InvalidSecurityGroupRuleId.NotFound")
    elif kind == "volume":
        cloud.describe_volumes(caller, ids)
    elif kind == "snapshot":
        cloud.describe_snapshots(caller, ids)
    elif kind == "image":
        catalog = {a["id"] for a in all_amis(cloud)}
        for i in ids:
            if i in catalog:
                raise InvalidParameter(f"{i} is a catalog image shared by every account; it cannot be tagged",
                                       code="UnsupportedOperation")
        cloud.describe_machine_images(caller, ids)
    elif kind == "network-interface":
        live = [i for i in cloud.describe_instances(caller) if i.state != "terminated"]
        have = {w.interface.id for w in placements(cloud, caller.id, live).values()}
        for i in ids:
            if i not in have:
                raise NotFound(f"The {kind} '{i[:40]}' does not exist", code="InvalidNetworkInterfaceID.NotFound")


def _tag_spec(p) -> dict[str, str | None]:
    spec = {}
    for t in members(p, "Tag"):
        if "Key" not in t:
            raise InvalidParameter("each Tag needs a Key", code="InvalidParameterValue")
        spec[t["Key"]] = t.get("Value")
    return spec


@mutating
def create_tags(cloud, caller, p) -> dict:
    new = tags(p)
    if not new:
        raise InvalidParameter("the request must contain the parameter Tag", code="MissingParameter")
    instances, others = _owned(cloud, caller, values(p, "ResourceId"))
    dry_run(p)
    if instances:
        cloud.create_tags(caller, instances, new)
    if others:
        cloud.resource_tags.set(caller.id, others, new)
    return {"return": True}


@mutating
def delete_tags(cloud, caller, p) -> dict:
    spec = _tag_spec(p)
    instances, others = _owned(cloud, caller, values(p, "ResourceId"))
    dry_run(p)
    for iid in instances:
        # No Tag at all removes every tag, as on EC2.
        cloud.delete_tags(caller, [iid], spec or dict.fromkeys(cloud.get_instance(caller, iid).tags))
    if others:
        cloud.resource_tags.delete(caller.id, others, spec)
    return {"return": True}


def describe_tags(cloud, caller, p) -> dict:
    out = []
    cloud.resource_tags.prune(caller.id)
    live = [i for i in cloud.describe_instances(caller) if i.state != "terminated"]
    for inst in live:
        out += [{"resourceId": inst.id, "resourceType": "instance", "key": k, "value": v}
                for k, v in inst.tags.items()]
    where = placements(cloud, caller.id, live).values()
    # An interface or root volume went with its terminated instance, and so did its tags.
    attached = ({w.interface.id for w in where} | {v.id for w in where for v in w.volumes}
                | {v.id for v in cloud.volumes.data(caller.id)})
    for rid, kv in cloud.resource_tags.of(caller.id).items():
        kind = resource_type(rid)
        if kind in ("network-interface", "volume") and rid not in attached:
            continue
        out += [{"resourceId": rid, "resourceType": kind, "key": k, "value": v} for k, v in kv.items()]
    table = {"resource-id": lambda t: t["resourceId"], "resource-type": lambda t: t["resourceType"],
             "key": lambda t: t["key"], "value": lambda t: t["value"]}
    out = filtering.apply(p, out, table)
    out, token = filtering.page(p, out)
    return {"tagSet": out, "nextToken": token}
