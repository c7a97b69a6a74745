"""Security groups: named sets of ingress and egress rules, in a VPC.

An ingress rule for TCP port P on a group of a running instance becomes a forward
127.0.0.1:HOST -> instance:P; a port with no rule gets no forward, so nothing reaches it from
the host. That is why ingress rules are TCP only and open at most 32 ports each (each port is
a real listener on the host). Egress rules (every group starts with AWS's allow-all rule) are
recorded as AWS shows them; with VPC networking on (emulator/vpc_network.py) both directions are
kernel rules between instances. A rule's peer is a CIDR or another group of the same VPC (its
members' addresses: AWS's UserIdGroupPairs); a rule naming a group opens no host forward, since
the host is no member of any group. Every rule has a stable `sgr-` id
(DescribeSecurityGroupRules, ModifySecurityGroupRules, Terraform's per-rule resources).
"""
from __future__ import annotations

import ipaddress
import re
import secrets
import time
from dataclasses import dataclass, field, replace
from typing import Callable

from .errors import AlreadyExists, InvalidParameter, InvalidState, NotFound, QuotaExceeded
from .instances import MAX_FORWARDS
from .state import Store
from .validation import resource_id
from .vpcs import Vpcs

GROUP_NAME = re.compile(r"[A-Za-z0-9 ._\-:/()#,@\[\]+=&;{}!$*]{1,255}")
GROUP_ID = re.compile(r"sg-[0-9a-f]{17}")
RULE_ID = re.compile(r"sgr-[0-9a-f]{17}")
DESCRIPTION = re.compile(r"[A-Za-z0-9 ._\-:/()#,@\[\]+=&;{}!$*]{0,255}")
MAX_PORTS_PER_RULE = 32  # each ingress port is a real listening socket on the host
PROTOCOLS = {"6": "tcp", "tcp": "tcp", "17": "udp", "udp": "udp", "1": "icmp", "icmp": "icmp", "-1": "-1", "all": "-1"}


@dataclass(frozen=True)
class Rule:
    """Ports are -1/-1 for every port (protocol -1); for ICMP they are the type and code. The
    peer is `cidr`, or `group` (a security group id; cidr is then '')."""

    protocol: str
    from_port: int
    to_port: int
    cidr: str
    id: str = field(default="", compare=False)
    description: str = field(default="", compare=False)
    group: str = ""

    def ports(self) -> range:
        """Guest ports this rule forwards from the host: TCP from a CIDR (no host is a group member)."""
        return range(self.from_port, self.to_port + 1) if self.protocol == "tcp" and not self.group else range(0)

    @property
    def peer(self) -> str:
        return self.group or self.cidr

    def to_dict(self) -> dict:
        return {"id": self.id, "protocol": self.protocol, "from_port": self.from_port, "to_port": self.to_port,
                "cidr": self.cidr or None, "group": self.group or None, "description": self.description}

    def text(self) -> str:
        ports = "" if self.protocol == "-1" else f" {self.from_port}-{self.to_port}"
        return f"{'all' if self.protocol == '-1' else self.protocol}{ports} {self.peer}"


@dataclass(frozen=True)
class SecurityGroup:
    id: str
    owner: str
    name: str
    description: str
    vpc_id: str
    rules: tuple[Rule, ...]          # ingress
    egress: tuple[Rule, ...] = ()

    def to_dict(self) -> dict:
        return {"id": self.id, "name": self.name, "description": self.description, "vpc_id": self.vpc_id,
                "ingress": [r.to_dict() for r in self.rules], "egress": [r.to_dict() for r in self.egress]}


def rule_description(value) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or not DESCRIPTION.fullmatch(value):
        raise InvalidParameter("a rule description is at most 255 characters: letters, digits, spaces and "
                               "._-:/()#,@[]+=&;{}!$*", code="InvalidParameterValue")
    return value


def _cidr(cidr) -> str:
    try:
        net = ipaddress.ip_network(cidr or "0.0.0.0/0", strict=False)
    except (TypeError, ValueError):
        raise InvalidParameter(f"invalid CIDR {str(cidr)[:50]!r}", code="InvalidParameterValue") from None
    if net.version != 4:
        raise InvalidParameter("IPv6 rules are not supported: pocketcloud's networks are IPv4 only",
                               code="InvalidParameterValue")
    return str(net)


def _int(value, what: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise InvalidParameter(f"{what} must be a number, got {str(value)[:20]!r}",
                               code="InvalidParameterValue") from None


def _peer(r: Rule, group: str | None) -> Rule:
    """The rule with a group as its peer instead of a CIDR (checked to exist when it is added)."""
    if group is None:
        return r
    if not isinstance(group, str) or not GROUP_ID.fullmatch(group):
        raise InvalidParameter(f"Invalid id: \"{str(group)[:40]}\" (expecting \"sg-...\")", code="InvalidGroupId.Malformed")
    return replace(r, cidr="", group=group)


def rule(protocol, from_port, to_port, cidr="0.0.0.0/0", description=None, kernel: bool = False,
         group: str | None = None) -> Rule:
    """An ingress rule: TCP ports that become host forwards. With `kernel` (VPC networking on, the
    rules enforced between instances) any protocol, as AWS takes it; only TCP ones get forwards.
    With `group` the peer is that group's members (a rule between instances: no forward), so any
    protocol is recorded either way (the default group's own self rule is one of all traffic)."""
    if (kernel or group is not None) and PROTOCOLS.get(str(protocol).lower()) in ("udp", "icmp", "-1"):
        return egress_rule(protocol, from_port, to_port, cidr, description, group)
    protocol = PROTOCOLS.get(str(protocol).lower(), str(protocol)[:20])
    if protocol == "-1":
        raise InvalidParameter("pocketcloud forwards TCP ports only; give IpProtocol tcp and a port range",
                               code="InvalidParameterValue")
    if protocol != "tcp":
        raise InvalidParameter(f"unsupported protocol {protocol!r} for ingress: only tcp is forwarded",
                               code="InvalidParameterValue")
    lo, hi = _int(from_port, "FromPort"), _int(to_port, "ToPort")
    if not (1 <= lo <= hi <= 65535):
        raise InvalidParameter(f"invalid port range {from_port}-{to_port}", code="InvalidParameterValue")
    if hi - lo + 1 > MAX_PORTS_PER_RULE and group is None:
        raise InvalidParameter(f"a rule may open at most {MAX_PORTS_PER_RULE} ports here (each becomes a host "
                               "listener); split the range", code="InvalidParameterValue")
    return _peer(Rule("tcp", lo, hi, _cidr(cidr if group is None else None), description=rule_description(description)),
                 group)


def egress_rule(protocol, from_port, to_port, cidr="0.0.0.0/0", description=None, group: str | None = None) -> Rule:
    """An egress rule: any of tcp, udp, icmp or all (-1), as AWS accepts them."""
    proto = PROTOCOLS.get(str(protocol).lower())
    if proto is None:
        raise InvalidParameter(f"unsupported protocol {str(protocol)[:20]!r}: use tcp, udp, icmp or -1",
                               code="InvalidParameterValue")
    if proto == "-1":
        lo = hi = -1
    elif proto == "icmp":
        lo = _int(-1 if from_port is None else from_port, "FromPort")
        hi = _int(-1 if to_port is None else to_port, "ToPort")
        if not (-1 <= lo <= 255 and -1 <= hi <= 255):
            raise InvalidParameter("ICMP type and code must be between -1 and 255", code="InvalidParameterValue")
    else:
        lo, hi = _int(from_port, "FromPort"), _int(to_port, "ToPort")
        if not (0 <= lo <= hi <= 65535):
            raise InvalidParameter(f"invalid port range {from_port}-{to_port}", code="InvalidParameterValue")
    return _peer(Rule(proto, lo, hi, _cidr(cidr if group is None else None), description=rule_description(description)),
                 group)


ALLOW_ALL = Rule("-1", -1, -1, "0.0.0.0/0")
DEFAULT = "default"
DEFAULT_DESCRIPTION = "default VPC security group"


def self_rule(group_id: str) -> Rule:
    """The default group's ingress rule: all traffic from its own members (AWS's UserIdGroupPair
    naming the group itself). A stored rule like any other: shown, revocable, re-authorizable."""
    return Rule("-1", -1, -1, "", group=group_id)


MAX_RULES = 60  # EC2's default quota, inbound and outbound each


class SecurityGroups:
    def __init__(self, store: Store, max_rules: int = MAX_RULES, vpcs: Vpcs | None = None):
        self.store = store
        self.max_rules = max_rules
        self.vpcs = vpcs or Vpcs(store)
        # Every VPC is made with its default group, in the transaction that records the VPC, so
        # no crash leaves one without the other; DeleteVpc removes the group the same way.
        self.vpcs.with_default_group = self.insert_default
        # Called after every committed change (the cloud re-applies its network rules).
        self.on_change: Callable[[], None] = lambda: None

    def _rules(self, group_ids: list[str]) -> dict[tuple[str, bool], list[Rule]]:
        out: dict[tuple[str, bool], list[Rule]] = {}
        if not group_ids:
            return out
        for r in self.store.query(f"SELECT * FROM security_group_rules WHERE group_id IN "
                                  f"({','.join('?' * len(group_ids))}) ORDER BY created_at, rowid", tuple(group_ids)):
            out.setdefault((r["group_id"], bool(r["egress"])), []).append(
                Rule(r["protocol"], r["from_port"], r["to_port"], r["cidr"], r["id"], r["description"],
                     r["ref_group"] or ""))
        return out

    def _groups(self, rows) -> list[SecurityGroup]:
        rules = self._rules([r["id"] for r in rows])
        default_vpc = None
        out = []
        for row in rows:
            vpc = row["vpc_id"]
            if vpc is None:  # a group made before VPCs existed belongs to its account's default VPC
                default_vpc = default_vpc or self.vpcs.default(row["owner"]).id
                vpc = default_vpc
            out.append(SecurityGroup(row["id"], row["owner"], row["name"], row["description"], vpc,
                                     tuple(rules.get((row["id"], False), ())), tuple(rules.get((row["id"], True), ()))))
        return out

    def create(self, owner: str, name, description, vpc_id: str | None = None) -> SecurityGroup:
        if not isinstance(name, str) or not GROUP_NAME.fullmatch(name) or name.lower().startswith("sg-"):
            raise InvalidParameter("group name must be 1-255 printable characters, not starting with 'sg-'",
                                   code="InvalidParameterValue")
        if name == DEFAULT:  # every VPC has its own, made with the VPC (as AWS answers)
            raise InvalidParameter("The security group name default is reserved", code="InvalidGroup.Reserved")
        if not isinstance(description, str) or not 0 < len(description) <= 255:
            raise InvalidParameter("a group description of 1-255 characters is required", code="MissingParameter")
        vpc = self.vpcs.get(owner, vpc_id) if vpc_id else self.vpcs.default(owner)
        gid = "sg-" + secrets.token_hex(9)[:17]
        now = time.time()
        with self.store.tx() as c:
            # Names are unique per VPC, as on AWS (a group older than VPCs is in the default VPC).
            if c.execute("SELECT 1 FROM security_groups WHERE owner=? AND name=? AND (vpc_id=? OR (vpc_id IS NULL "
                         "AND ?))", (owner, name, vpc.id, int(vpc.is_default))).fetchone():
                raise AlreadyExists(f"The security group '{name}' already exists for VPC '{vpc.id}'",
                                    code="InvalidGroup.Duplicate")
            c.execute("INSERT INTO security_groups (id, owner, name, description, vpc_id, created_at) "
                      "VALUES (?,?,?,?,?,?)", (gid, owner, name, description, vpc.id, now))
            self._insert(c, gid, owner, True, [ALLOW_ALL], now)  # every new group may send anywhere, as on AWS
        self.on_change()
        return self.get(owner, gid)

    def insert_default(self, c, owner: str, vpc_id: str, now: float) -> str:
        """Inside the caller's transaction: the VPC's `default` group with AWS's two rules (all
        traffic in from its own members, all traffic out). An account's group named default
        from before VPCs existed (no VPC recorded) becomes its default VPC's, and gains the rules
        it lacks."""
        row = c.execute("SELECT id FROM security_groups WHERE owner=? AND name=? AND (vpc_id=? OR (vpc_id IS NULL "
                        "AND EXISTS (SELECT 1 FROM vpcs WHERE id=? AND is_default=1)))",
                        (owner, DEFAULT, vpc_id, vpc_id)).fetchone()
        gid = row[0] if row else "sg-" + secrets.token_hex(9)[:17]
        if row:
            c.execute("UPDATE security_groups SET vpc_id=? WHERE id=?", (vpc_id, gid))
        else:
            c.execute("INSERT INTO security_groups (id, owner, name, description, vpc_id, created_at) "
                      "VALUES (?,?,?,?,?,?)", (gid, owner, DEFAULT, DEFAULT_DESCRIPTION, vpc_id, now))
        have = {(bool(r[0]), r[1], r[2], r[3]) for r in c.execute(
            "SELECT egress, protocol, cidr, ref_group FROM security_group_rules WHERE group_id=?", (gid,))}
        if row is None or (False, "-1", "", gid) not in have:
            self._insert(c, gid, owner, False, [self_rule(gid)], now)
        if row is None:
            self._insert(c, gid, owner, True, [ALLOW_ALL], now)
        return gid

    @staticmethod
    def _insert(c, group_id: str, owner: str, egress: bool, rules: list[Rule], now: float) -> list[str]:
        ids = []
        for r in rules:
            rid = "sgr-" + secrets.token_hex(9)[:17]
            c.execute("INSERT INTO security_group_rules (id, group_id, owner, egress, protocol, from_port, to_port,"
                      " cidr, description, created_at, ref_group) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                      (rid, group_id, owner, int(egress), r.protocol, r.from_port, r.to_port, r.cidr, r.description,
                       now, r.group or None))
            ids.append(rid)
        return ids

    def default(self, owner: str, vpc_id: str | None = None) -> SecurityGroup:
        """The default group of a VPC (of the account's default VPC without one). Made with its
        VPC; made here for a VPC recorded before default groups were (the migration adds those,
        this is the safety net)."""
        vpc = self.vpcs.get(owner, vpc_id) if vpc_id else self.vpcs.default(owner)
        q = ("SELECT * FROM security_groups WHERE owner=? AND name=? AND (vpc_id=? OR (vpc_id IS NULL AND ?)) "
             "ORDER BY vpc_id IS NULL")
        args = (owner, DEFAULT, vpc.id, int(vpc.is_default))
        row = self.store.one(q, args)
        if row is None or row["vpc_id"] is None:
            with self.store.tx() as c:
                self.insert_default(c, owner, vpc.id, time.time())
            self.on_change()
            row = self.store.one(q, args)
        return self._groups([row])[0]

    def get(self, owner: str, id_or_name) -> SecurityGroup:
        if not isinstance(id_or_name, str) or not id_or_name:
            raise InvalidParameter("a security group id or name is required", code="MissingParameter")
        if id_or_name == DEFAULT:
            return self.default(owner)
        if id_or_name.startswith("sg-"):
            resource_id(id_or_name, GROUP_ID, "sg", "InvalidGroupId")
        col = "id" if GROUP_ID.fullmatch(id_or_name) else "name"
        # A name may be in several VPCs: the default VPC's group first (EC2's GroupName means it).
        row = self.store.one(f"SELECT g.* FROM security_groups g LEFT JOIN vpcs v ON v.id = g.vpc_id WHERE g.owner=? "
                             f"AND g.{col}=? ORDER BY COALESCE(v.is_default, 1) DESC, g.created_at LIMIT 1",
                             (owner, id_or_name))
        if row is None:
            # Another account's group answers exactly like a missing one.
            raise NotFound(f"The security group '{id_or_name[:255]}' does not exist", code="InvalidGroup.NotFound")
        return self._groups([row])[0]

    def list(self, owner: str, ids_or_names: list[str] | None = None) -> list[SecurityGroup]:
        self.default(owner)
        if ids_or_names:
            return [self.get(owner, g) for g in ids_or_names]
        return self._groups(self.store.query("SELECT * FROM security_groups WHERE owner=? ORDER BY created_at",
                                             (owner,)))

    def names(self, owner: str) -> dict[str, str]:
        """id -> name of every group of an account, in one query."""
        return {r["id"]: r["name"] for r in self.store.query(
            "SELECT id, name FROM security_groups WHERE owner=?", (owner,))}

    # -- rules -------------------------------------------------------------------------
    def check_peers(self, owner: str, group: SecurityGroup, rules: list[Rule]) -> None:
        """Every group a rule names is the owner's, in the same VPC (AWS needs peering otherwise).
        Another account's group answers as a missing one does."""
        for r in rules:
            if r.group and r.group != group.id:
                peer = self.get(owner, r.group)
                if peer.vpc_id != group.vpc_id:
                    raise NotFound(f"You have specified two resources that belong to different networks: "
                                   f"{group.id} is in {group.vpc_id}, {peer.id} in {peer.vpc_id}",
                                   code="InvalidGroup.NotFound")

    def referencing(self, group_id: str) -> list[str]:
        """Other groups whose rules name this one (it cannot be deleted while they do, as on AWS)."""
        return [r["group_id"] for r in self.store.query(
            "SELECT DISTINCT group_id FROM security_group_rules WHERE ref_group=? AND group_id!=? ORDER BY group_id",
            (group_id, group_id))]

    def _add(self, owner: str, group_id: str, rules: list[Rule], egress: bool) -> tuple[SecurityGroup, list[str]]:
        group = self.get(owner, group_id)
        have = group.egress if egress else group.rules
        for i, r in enumerate(rules):
            if r in have or r in rules[:i]:
                raise AlreadyExists(f"the specified rule \"peer: {r.peer}, {r.text()}, ALLOW\" already exists",
                                    code="InvalidPermission.Duplicate")
        self.check_peers(owner, group, rules)
        with self.store.tx() as c:
            # Counted in the transaction that inserts, so concurrent additions cannot both fit.
            count = c.execute("SELECT COUNT(*) FROM security_group_rules WHERE group_id=? AND egress=?",
                              (group.id, int(egress))).fetchone()[0]
            if count + len(rules) > self.max_rules:
                raise QuotaExceeded(
                    f"{group.id} has {count} {'outbound' if egress else 'inbound'} rules; {len(rules)} more would "
                    f"pass the limit of {self.max_rules} per direction (each CIDR of a permission is a rule)",
                    code="RulesPerSecurityGroupLimitExceeded")
            ids = self._insert(c, group.id, owner, egress, rules, time.time())
        self.on_change()
        return self.get(owner, group.id), ids

    def _remove(self, owner: str, group_id: str, rules: list[Rule], egress: bool) -> SecurityGroup:
        group = self.get(owner, group_id)
        have = list(group.egress if egress else group.rules)
        gone = []
        for r in rules:
            match = [h for h in have if (h.id == r.id if r.id else h == r)]
            if not match:
                what = r.id or r.text()
                raise NotFound(f"The specified rule {what} does not exist in this security group",
                               code="InvalidPermission.NotFound")
            gone.append(match[0].id)
        with self.store.tx() as c:
            c.executemany("DELETE FROM security_group_rules WHERE id=?", [(i,) for i in gone])
            c.executemany("DELETE FROM resource_tags WHERE resource_id=?", [(i,) for i in gone])
        self.on_change()
        return self.get(owner, group.id)

    def authorize(self, owner: str, group_id: str, rules: list[Rule]) -> SecurityGroup:
        return self._add(owner, group_id, rules, egress=False)[0]

    def revoke(self, owner: str, group_id: str, rules: list[Rule]) -> SecurityGroup:
        return self._remove(owner, group_id, rules, egress=False)

    def authorize_egress(self, owner: str, group_id: str, rules: list[Rule]) -> tuple[SecurityGroup, list[str]]:
        return self._add(owner, group_id, rules, egress=True)

    def revoke_egress(self, owner: str, group_id: str, rules: list[Rule]) -> SecurityGroup:
        return self._remove(owner, group_id, rules, egress=True)

    def rules_by_id(self, owner: str, group_id: str, rule_ids: list[str], egress: bool) -> list[Rule]:
        group = self.get(owner, group_id)
        have = {r.id: r for r in (group.egress if egress else group.rules)}
        for rid in rule_ids:
            resource_id(rid, RULE_ID, "sgr", "InvalidSecurityGroupRuleId")
            if rid not in have:
                raise NotFound(f"The security group rule ID '{rid}' does not exist",
                               code="InvalidSecurityGroupRuleId.NotFound")
        return [have[r] for r in rule_ids]

    def all_rules(self, owner: str) -> list[tuple[SecurityGroup, bool, Rule]]:
        """(group, is egress, rule) for every rule of the account."""
        out = []
        for g in self.list(owner):
            out += [(g, False, r) for r in g.rules] + [(g, True, r) for r in g.egress]
        return out

    def replace_rules(self, owner: str, group_id: str, changes: dict[str, Rule]) -> SecurityGroup:
        """ModifySecurityGroupRules: each rule id keeps its id and direction, takes the new content."""
        group = self.get(owner, group_id)
        by_id = {r.id: (False, r) for r in group.rules} | {r.id: (True, r) for r in group.egress}
        for rid, new in changes.items():
            if rid not in by_id:
                raise NotFound(f"The security group rule ID '{str(rid)[:40]}' does not exist",
                               code="InvalidSecurityGroupRuleId.NotFound")
            egress = by_id[rid][0]
            others = [r for i, (e, r) in by_id.items() if e == egress and i != rid]
            if new in others:
                raise AlreadyExists(f"the specified rule \"{new.text()}\" already exists",
                                    code="InvalidPermission.Duplicate")
        self.check_peers(owner, group, list(changes.values()))
        with self.store.tx() as c:
            for rid, r in changes.items():
                c.execute("UPDATE security_group_rules SET protocol=?, from_port=?, to_port=?, cidr=?, description=?, "
                          "ref_group=? WHERE id=?",
                          (r.protocol, r.from_port, r.to_port, r.cidr, r.description, r.group or None, rid))
        self.on_change()
        return self.get(owner, group.id)

    def for_launch(self, owner: str, names: list[str], vpc_id: str) -> list[SecurityGroup]:
        """A launch's groups: `default` is the default group of the launch's VPC (as AWS picks
        it for a launch without SecurityGroupIds); every other group must be of that VPC."""
        groups = [self.default(owner, vpc_id) if g == DEFAULT else self.get(owner, g) for g in names]
        for g in groups:
            if g.vpc_id != vpc_id:  # a group's rules hold only inside its VPC (AWS refuses the mix too)
                raise InvalidParameter(f"Security group {g.id} ({g.name}) and the instance's subnet belong to "
                                       f"different networks: give SecurityGroupIds of {vpc_id}", code="InvalidParameter")
        return groups

    def delete(self, owner: str, group_id: str, in_use: bool) -> None:
        group = self.get(owner, group_id)
        if group.name == DEFAULT:
            raise InvalidState("the default security group cannot be deleted", code="CannotDelete")
        if in_use:
            raise InvalidState(f"resource {group.id} has a dependent object", code="DependencyViolation")
        if refs := self.referencing(group.id):
            raise InvalidState(f"resource {group.id} has a dependent object: rules of {', '.join(refs)} name it",
                               code="DependencyViolation")
        ids = [group.id] + [r.id for r in group.rules + group.egress]
        with self.store.tx() as c:
            c.execute("DELETE FROM security_groups WHERE id=?", (group.id,))  # its rules go by cascade
            c.execute(f"DELETE FROM resource_tags WHERE resource_id IN ({','.join('?' * len(ids))})", ids)
        self.on_change()

    def check_forwards(self, instances: list, group_id: str, ingress: list[Rule]) -> None:
        """Refuse a rule change (the group's ingress becoming `ingress`) that would give one of
        `instances` more forwards than a launch may have: each takes a host port of one range."""
        for inst in instances:
            gids = inst.details.get("security_groups", [])
            if inst.state == "terminated" or group_id not in gids:
                continue
            groups = []
            for gid in gids:
                try:
                    g = self.get(inst.owner, gid)
                except NotFound:
                    continue
                groups.append(replace(g, rules=tuple(ingress)) if g.id == group_id else g)
            ports = {p["guest"] for p in inst.ports if not p.get("from_group")} | set(self.ports(groups))
            if len(ports) > MAX_FORWARDS:
                raise QuotaExceeded(f"instance {inst.id} would have {len(ports)} forwarded ports with this change "
                                    f"(at most {MAX_FORWARDS}: explicit ports and its groups' rules); nothing was "
                                    "changed", code="ForwardedPortLimitExceeded")

    @staticmethod
    def ports(groups: list[SecurityGroup]) -> list[int]:
        """Guest ports the groups' ingress rules open, in order, each once."""
        out: list[int] = []
        for g in groups:
            for r in g.rules:
                out += [p for p in r.ports() if p not in out]
        return out
