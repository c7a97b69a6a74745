"""Security groups and their rules on the EC2 API: groups, ingress (TCP forwards from
127.0.0.1), egress (kernel rules with VPC networking on), peers that are CIDRs or other groups
(UserIdGroupPairs), and rules by id (DescribeSecurityGroupRules, ModifySecurityGroupRules,
revoke by SecurityGroupRuleId, as Terraform's per-rule resources use them)."""
from __future__ import annotations

import functools
from dataclasses import replace

from emulator.errors import InvalidParameter, NotFound
from emulator.security_groups import Rule, egress_rule, rule, rule_description

from . import filtering
from .params import dry_run, members, mutating, required, tag_specifications, values


def _arn(cloud, caller, kind: str, rid: str) -> str:
    return f"arn:aws:ec2:{cloud.config.region}:{caller.id}:{kind}/{rid}"


def _permissions(rules: tuple[Rule, ...], owner: str) -> list[dict]:
    """Rules grouped as EC2 shows them: one permission per protocol and port range, with
    every CIDR and every group it is open to."""
    grouped: dict[tuple, list[Rule]] = {}
    for r in rules:
        grouped.setdefault((r.protocol, r.from_port, r.to_port), []).append(r)
    out = []
    for (proto, lo, hi), rs in grouped.items():
        ports = {} if proto == "-1" else {"fromPort": lo, "toPort": hi}
        out.append({"ipProtocol": proto, **ports,
                    "groups": [{"groupId": r.group, "userId": owner, "description": r.description or None}
                               for r in rs if r.group],
                    "ipRanges": [{"cidrIp": r.cidr, "description": r.description or None} for r in rs if not r.group],
                    "ipv6Ranges": [], "prefixListIds": []})
    return out


def _group_xml(cloud, caller, g, tag_map) -> dict:
    return {
        "ownerId": caller.id, "groupId": g.id, "groupName": g.name, "groupDescription": g.description,
        "vpcId": g.vpc_id, "securityGroupArn": _arn(cloud, caller, "security-group", g.id),
        "ipPermissions": _permissions(g.rules, caller.id),
        "ipPermissionsEgress": _permissions(g.egress, caller.id),
        "tagSet": [{"key": k, "value": v} for k, v in tag_map.get(g.id, {}).items()],
    }


def _tag_specs(p, allowed: str) -> dict:
    return tag_specifications(p, (allowed,)).get(allowed, {})


@mutating
def create_security_group(cloud, caller, p) -> dict:
    name, description = required(p, "GroupName"), required(p, "GroupDescription")
    if p.get("VpcId"):
        cloud.vpcs.get(caller.id, p["VpcId"])  # the caller's VPC, or InvalidVpcID.NotFound
    group_tags = _tag_specs(p, "security-group")
    dry_run(p)
    g = cloud.security_groups.create(caller.id, name, description, p.get("VpcId") or None)
    if group_tags:
        cloud.resource_tags.set(caller.id, [g.id], group_tags)
    return {"return": True, "groupId": g.id, "securityGroupArn": _arn(cloud, caller, "security-group", g.id),
            "tagSet": [{"key": k, "value": v} for k, v in group_tags.items()]}


GROUP_FILTERS = {
    "group-id": lambda g: g.id, "group-name": lambda g: g.name, "description": lambda g: g.description,
    "vpc-id": lambda g: g.vpc_id,
    "ip-permission.protocol": lambda g: [r.protocol for r in g.rules],
    "ip-permission.from-port": lambda g: [r.from_port for r in g.rules],
    "ip-permission.to-port": lambda g: [r.to_port for r in g.rules],
    "ip-permission.cidr": lambda g: [r.cidr for r in g.rules if r.cidr],
    "ip-permission.group-id": lambda g: [r.group for r in g.rules if r.group],
    "egress.ip-permission.protocol": lambda g: [r.protocol for r in g.egress],
    "egress.ip-permission.from-port": lambda g: [r.from_port for r in g.egress],
    "egress.ip-permission.to-port": lambda g: [r.to_port for r in g.egress],
    "egress.ip-permission.cidr": lambda g: [r.cidr for r in g.egress if r.cidr],
    "egress.ip-permission.group-id": lambda g: [r.group for r in g.egress if r.group],
}


def describe_security_groups(cloud, caller, p) -> dict:
    groups = cloud.security_groups.list(caller.id, (values(p, "GroupId") + values(p, "GroupName")) or None)
    tag_map = cloud.resource_tags.of(caller.id, [g.id for g in groups])
    table = {**GROUP_FILTERS, "owner-id": lambda g: caller.id}
    groups = filtering.apply(p, groups, table, tags=lambda g: tag_map.get(g.id, {}))
    groups, token = filtering.page(p, groups)
    return {"securityGroupInfo": [_group_xml(cloud, caller, g, tag_map) for g in groups], "nextToken": token}


def _rule_xml(cloud, caller, g, egress: bool, r: Rule, tag_map) -> dict:
    return {
        "securityGroupRuleId": r.id, "groupId": g.id, "groupOwnerId": caller.id, "isEgress": egress,
        "ipProtocol": r.protocol, "fromPort": r.from_port, "toPort": r.to_port,
        **({"referencedGroupInfo": {"groupId": r.group, "userId": caller.id}} if r.group else {"cidrIpv4": r.cidr}),
        "description": r.description or None,
        "securityGroupRuleArn": _arn(cloud, caller, "security-group-rule", r.id),
        "tagSet": [{"key": k, "value": v} for k, v in tag_map.get(r.id, {}).items()],
    }


def describe_security_group_rules(cloud, caller, p) -> dict:
    found = cloud.security_groups.all_rules(caller.id)
    ids = values(p, "SecurityGroupRuleId")
    if ids:
        have = {r.id for _, _, r in found}
        for i in ids:
            if i not in have:
                cloud.security_groups.rules_by_id(caller.id, "default", [i], False)  # malformed / not found error
        found = [f for f in found if f[2].id in ids]
    tag_map = cloud.resource_tags.of(caller.id, [r.id for _, _, r in found])
    table = {"group-id": lambda f: f[0].id, "security-group-rule-id": lambda f: f[2].id,
             "is-egress": lambda f: f[1]}
    found = filtering.apply(p, found, table, tags=lambda f: tag_map.get(f[2].id, {}))
    found, token = filtering.page(p, found)
    return {"securityGroupRuleSet": [_rule_xml(cloud, caller, g, e, r, tag_map) for g, e, r in found],
            "nextToken": token}


def _peer_group(cloud, caller, pair: dict) -> str:
    """A UserIdGroupPair's group id. Another account's group (by its UserId, or an id the caller
    does not own) answers InvalidGroup.NotFound, as a missing one does."""
    user, gid, name = pair.get("UserId"), pair.get("GroupId"), pair.get("GroupName")
    if user not in (None, "", caller.id):
        raise NotFound(f"The security group '{str(gid or name)[:255]}' does not exist in account "
                       f"{str(user)[:20]}", code="InvalidGroup.NotFound")
    if not gid and not name:
        raise InvalidParameter("each of Groups needs a GroupId", code="MissingParameter")
    return cloud.security_groups.get(caller.id, gid or name).id


def _rules(cloud, caller, p, egress: bool, revoking: bool = False) -> list[Rule]:
    kernel = cloud.network.enabled
    make = egress_rule if egress else functools.partial(rule, kernel=kernel)
    perms = members(p, "IpPermissions")
    out = []
    for perm in perms:
        if members(perm, "PrefixListIds") or members(perm, "Ipv6Ranges"):
            if revoking:  # no such rule can exist here (Terraform revokes AWS's default IPv6 egress rule)
                raise NotFound("The specified rule does not exist in this security group: pocketcloud has no "
                               "prefix-list or IPv6 rules", code="InvalidPermission.NotFound")
            raise InvalidParameter("pocketcloud's networks are IPv4 without prefix lists: give IPv4 CIDR ranges "
                                   "(IpRanges) or security groups (Groups)", code="UnsupportedOperation")
        pairs = members(perm, "Groups")
        ranges = members(perm, "IpRanges") or ([] if pairs else [{"CidrIp": "0.0.0.0/0"}])
        for r in ranges:
            out.append(make(perm.get("IpProtocol", "tcp"), perm.get("FromPort"), perm.get("ToPort"),
                            r.get("CidrIp"), r.get("Description")))
        for pair in pairs:
            out.append(make(perm.get("IpProtocol", "tcp"), perm.get("FromPort"), perm.get("ToPort"),
                            None, pair.get("Description"), group=_peer_group(cloud, caller, pair)))
    if not perms and "IpProtocol" in p:  # the older flat form: IpProtocol, FromPort, ToPort, CidrIp
        out.append(make(p["IpProtocol"], p.get("FromPort"), p.get("ToPort"), p.get("CidrIp", "0.0.0.0/0")))
    if not out:
        raise InvalidParameter("the request must contain IpPermissions", code="MissingParameter")
    return out


def _group_ref(p) -> str:
    return p.get("GroupId") or required(p, "GroupName")


def _created(cloud, caller, group_id: str, egress: bool, wanted: list[Rule], rule_tags: dict) -> dict:
    g = cloud.security_groups.get(caller.id, group_id)
    made = [r for r in (g.egress if egress else g.rules) if r in wanted]
    if rule_tags:
        cloud.resource_tags.set(caller.id, [r.id for r in made], rule_tags)
    tag_map = cloud.resource_tags.of(caller.id, [r.id for r in made])
    return {"return": True, "securityGroupRuleSet": [_rule_xml(cloud, caller, g, egress, r, tag_map) for r in made]}


@mutating
def authorize_security_group_ingress(cloud, caller, p) -> dict:
    group = cloud.security_groups.get(caller.id, _group_ref(p))
    rules, rule_tags = _rules(cloud, caller, p, False), _tag_specs(p, "security-group-rule")
    dry_run(p)
    cloud.authorize_ingress(caller, group.id, rules)
    return _created(cloud, caller, group.id, False, rules, rule_tags)


@mutating
def authorize_security_group_egress(cloud, caller, p) -> dict:
    group = cloud.security_groups.get(caller.id, required(p, "GroupId"))
    rules, rule_tags = _rules(cloud, caller, p, True), _tag_specs(p, "security-group-rule")
    dry_run(p)
    cloud.security_groups.authorize_egress(caller.id, group.id, rules)
    return _created(cloud, caller, group.id, True, rules, rule_tags)


def _to_revoke(cloud, caller, p, group_id: str, egress: bool) -> list[Rule]:
    ids = values(p, "SecurityGroupRuleId")
    if ids:
        return cloud.security_groups.rules_by_id(caller.id, group_id, ids, egress)
    return _rules(cloud, caller, p, egress, revoking=True)


@mutating
def revoke_security_group_ingress(cloud, caller, p) -> dict:
    group = cloud.security_groups.get(caller.id, _group_ref(p))
    rules = _to_revoke(cloud, caller, p, group.id, False)
    dry_run(p)
    cloud.revoke_ingress(caller, group.id, rules)
    return {"return": True}


@mutating
def revoke_security_group_egress(cloud, caller, p) -> dict:
    group = cloud.security_groups.get(caller.id, required(p, "GroupId"))
    rules = _to_revoke(cloud, caller, p, group.id, True)
    dry_run(p)
    cloud.security_groups.revoke_egress(caller.id, group.id, rules)
    return {"return": True}


@mutating
def modify_security_group_rules(cloud, caller, p) -> dict:
    group = cloud.security_groups.get(caller.id, required(p, "GroupId"))
    changes = {}
    for item in members(p, "SecurityGroupRule"):
        rid = item.get("SecurityGroupRuleId")
        if not rid:
            raise InvalidParameter("each SecurityGroupRule needs a SecurityGroupRuleId", code="MissingParameter")
        spec = {k.split(".", 1)[1]: v for k, v in item.items() if k.startswith("SecurityGroupRule.")}
        if spec.get("PrefixListId") or spec.get("CidrIpv6"):
            raise InvalidParameter("pocketcloud's networks are IPv4 without prefix lists: give CidrIpv4 or "
                                   "ReferencedGroupId", code="UnsupportedOperation")
        ref = spec.get("ReferencedGroupId")
        egress = any(r.id == rid for r in group.egress)
        if not egress and not any(r.id == rid for r in group.rules):
            cloud.security_groups.rules_by_id(caller.id, group.id, [rid], False)  # the AWS not-found error
        make = egress_rule if egress else functools.partial(rule, kernel=cloud.network.enabled)
        changes[rid] = make(spec.get("IpProtocol", "tcp"), spec.get("FromPort"), spec.get("ToPort"),
                            None if ref else spec.get("CidrIpv4"), spec.get("Description"),
                            group=_peer_group(cloud, caller, {"GroupId": ref}) if ref else None)
    if not changes:
        raise InvalidParameter("the request must contain SecurityGroupRule", code="MissingParameter")
    dry_run(p)
    cloud.modify_security_group_rules(caller, group.id, changes)
    return {"return": True}


def _update_descriptions(cloud, caller, p, egress: bool) -> dict:
    group = cloud.security_groups.get(caller.id, _group_ref(p) if not egress else required(p, "GroupId"))
    have = group.egress if egress else group.rules
    changes = {}
    for item in members(p, "SecurityGroupRuleDescription"):
        [r] = cloud.security_groups.rules_by_id(caller.id, group.id, [item.get("SecurityGroupRuleId", "")], egress)
        changes[r.id] = replace(r, description=rule_description(item.get("Description")))
    if members(p, "IpPermissions"):
        for new in _rules(cloud, caller, p, egress):
            match = [r for r in have if r == new]
            if not match:
                raise NotFound(f"The specified rule {new.text()} does not exist in this security group",
                               code="InvalidPermission.NotFound")
            changes[match[0].id] = replace(new, id=match[0].id)
    if not changes:
        raise InvalidParameter("the request must contain IpPermissions or SecurityGroupRuleDescriptions",
                               code="MissingParameter")
    dry_run(p)
    cloud.modify_security_group_rules(caller, group.id, changes)
    return {"return": True}


@mutating
def update_security_group_rule_descriptions_ingress(cloud, caller, p) -> dict:
    return _update_descriptions(cloud, caller, p, False)


@mutating
def update_security_group_rule_descriptions_egress(cloud, caller, p) -> dict:
    return _update_descriptions(cloud, caller, p, True)


@mutating
def delete_security_group(cloud, caller, p) -> dict:
    group = cloud.security_groups.get(caller.id, _group_ref(p))
    dry_run(p)
    cloud.delete_security_group(caller, group.id)
    return {"return": True, "groupId": group.id}
