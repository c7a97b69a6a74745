"""Security groups: named sets of ingress rules. An ingress rule for TCP port P on a
group of a running instance becomes a forward 127.0.0.1:HOST -> instance:P; a port with
no rule gets no forward, so nothing reaches it from the host."""
from __future__ import annotations

import ipaddress
import json
import re
import secrets
import time
from dataclasses import dataclass

from .errors import AlreadyExists, InvalidParameter, InvalidState, NotFound
from .state import Store

GROUP_NAME = re.compile(r"[A-Za-z0-9 ._\-:/()#,@\[\]+=&;{}!$*]{1,255}")
GROUP_ID = re.compile(r"sg-[0-9a-f]{17}")
MAX_PORTS_PER_RULE = 32  # each port is a real listening socket on the host


@dataclass(frozen=True)
class Rule:
    protocol: str
    from_port: int
    to_port: int
    cidr: str

    def ports(self) -> range:
        return range(self.from_port, self.to_port + 1)

    def to_dict(self) -> dict:
        return {"protocol": self.protocol, "from_port": self.from_port, "to_port": self.to_port, "cidr": self.cidr}


@dataclass(frozen=True)
class SecurityGroup:
    id: str
    owner: str
    name: str
    description: str
    rules: tuple[Rule, ...]

    def to_dict(self) -> dict:
        return {"id": self.id, "name": self.name, "description": self.description,
                "ingress": [r.to_dict() for r in self.rules]}


def rule(protocol, from_port, to_port, cidr="0.0.0.0/0") -> Rule:
    protocol = str(protocol).lower()
    if protocol in ("6", "tcp"):
        protocol = "tcp"
    elif protocol in ("-1", "all"):
        raise InvalidParameter("pocketcloud forwards TCP ports only; give IpProtocol tcp and a port range",
                               code="InvalidParameterValue")
    else:
        raise InvalidParameter(f"unsupported protocol {protocol!r}: only tcp is forwarded",
                               code="InvalidParameterValue")
    try:
        lo, hi = int(from_port), int(to_port)
    except (TypeError, ValueError):
        raise InvalidParameter("FromPort and ToPort must be numbers", code="InvalidParameterValue") from None
    if not (1 <= lo <= hi <= 65535):
        raise InvalidParameter(f"invalid port range {from_port}-{to_port}", code="InvalidParameterValue")
    if hi - lo + 1 > MAX_PORTS_PER_RULE:
        raise InvalidParameter(f"a rule may open at most {MAX_PORTS_PER_RULE} ports here (each becomes a host "
                               "listener); split the range", code="InvalidParameterValue")
    try:
        cidr = str(ipaddress.ip_network(cidr or "0.0.0.0/0", strict=False))
    except ValueError:
        raise InvalidParameter(f"invalid CIDR {cidr!r}", code="InvalidParameterValue") from None
    return Rule(protocol, lo, hi, cidr)


class SecurityGroups:
    def __init__(self, store: Store):
        self.store = store

    def _row(self, row) -> SecurityGroup:
        return SecurityGroup(row["id"], row["owner"], row["name"], row["description"],
                             tuple(Rule(**r) for r in json.loads(row["rules"])))

    def create(self, owner: str, name, description) -> SecurityGroup:
        if not isinstance(name, str) or not GROUP_NAME.fullmatch(name) or name.lower().startswith("sg-"):
            raise InvalidParameter("group name must be 1-255 printable characters, not starting with 'sg-'",
                                   code="InvalidParameterValue")
        if not isinstance(description, str) or not 0 < len(description) <= 255:
            raise InvalidParameter("a group description of 1-255 characters is required", code="MissingParameter")
        gid = "sg-" + secrets.token_hex(9)[:17]
        with self.store.tx() as c:
            if c.execute("SELECT 1 FROM security_groups WHERE owner=? AND name=?", (owner, name)).fetchone():
                raise AlreadyExists(f"the security group {name!r} already exists",
                                    code="InvalidGroup.Duplicate")
            c.execute("INSERT INTO security_groups (id, owner, name, description, rules, created_at) "
                      "VALUES (?,?,?,?,?,?)", (gid, owner, name, description, "[]", time.time()))
        return self.get(owner, gid)

    def default(self, owner: str) -> SecurityGroup:
        """Every account has a group named 'default' (no ingress), made on first use."""
        row = self.store.one("SELECT * FROM security_groups WHERE owner=? AND name='default'", (owner,))
        if row is not None:
            return self._row(row)
        try:
            return self.create(owner, "default", "default VPC security group")
        except AlreadyExists:
            return self.default(owner)

    def get(self, owner: str, id_or_name) -> SecurityGroup:
        if not isinstance(id_or_name, str):
            raise InvalidParameter("a security group id or name is required", code="MissingParameter")
        if id_or_name == "default":
            return self.default(owner)
        col = "id" if GROUP_ID.fullmatch(id_or_name) else "name"
        row = self.store.one(f"SELECT * FROM security_groups WHERE owner=? AND {col}=?", (owner, id_or_name))
        if row is None:
            code = "InvalidGroupId.NotFound" if col == "id" or id_or_name.startswith("sg-") else "InvalidGroup.NotFound"
            raise NotFound(f"the security group {id_or_name!r} does not exist", code=code)
        return self._row(row)

    def list(self, owner: str, ids_or_names: list[str] | None = None) -> list[SecurityGroup]:
        self.default(owner)
        if ids_or_names:
            return [self.get(owner, g) for g in ids_or_names]
        return [self._row(r) for r in self.store.query(
            "SELECT * FROM security_groups WHERE owner=? ORDER BY created_at", (owner,))]

    def names(self, owner: str) -> dict[str, str]:
        """id -> name of every group of an account, in one query."""
        return {r["id"]: r["name"] for r in self.store.query(
            "SELECT id, name FROM security_groups WHERE owner=?", (owner,))}

    def _set_rules(self, group: SecurityGroup, rules: tuple[Rule, ...]) -> SecurityGroup:
        with self.store.tx() as c:
            c.execute("UPDATE security_groups SET rules=? WHERE id=?",
                      (json.dumps([r.to_dict() for r in rules]), group.id))
        return self.get(group.owner, group.id)

    def authorize(self, owner: str, group_id: str, rules: list[Rule]) -> SecurityGroup:
        group = self.get(owner, group_id)
        for r in rules:
            if r in group.rules:
                raise AlreadyExists(f"the rule {r.protocol} {r.from_port}-{r.to_port} {r.cidr} already exists",
                                    code="InvalidPermission.Duplicate")
        return self._set_rules(group, group.rules + tuple(rules))

    def revoke(self, owner: str, group_id: str, rules: list[Rule]) -> SecurityGroup:
        group = self.get(owner, group_id)
        for r in rules:
            if r not in group.rules:
                raise NotFound(f"the rule {r.protocol} {r.from_port}-{r.to_port} {r.cidr} does not exist",
                               code="InvalidPermission.NotFound")
        return self._set_rules(group, tuple(r for r in group.rules if r not in rules))

    def delete(self, owner: str, group_id: str, in_use: bool) -> None:
        group = self.get(owner, group_id)
        if group.name == "default":
            raise InvalidState("the default security group cannot be deleted", code="CannotDelete")
        if in_use:
            raise InvalidState(f"{group.id} is in use by an instance", code="DependencyViolation")
        with self.store.tx() as c:
            c.execute("DELETE FROM security_groups WHERE id=?", (group.id,))

    @staticmethod
    def ports(groups: list[SecurityGroup]) -> list[int]:
        """Guest ports the groups open, in order, each once."""
        out: list[int] = []
        for g in groups:
            for r in g.rules:
                out += [p for p in r.ports() if p not in out]
        return out
