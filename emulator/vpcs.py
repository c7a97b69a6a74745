"""VPCs, subnets and network interfaces: the state model (ids, CIDRs, placement).

Every account has one default VPC (`vpc-` + 17 hex), made on first use, with one default
subnet per availability zone (`/20`s, as AWS lays out 172.31.0.0/16) and one primary network
interface (`eni-…`) per instance. Today these describe where an instance is placed; the
VPC networking work makes the same records real (one bridge per subnet) without changing an
id or a CIDR, so a Terraform state written now does not drift later.

CIDRs: the host has one routing table and the metadata service will identify callers by
source address, so every VPC's CIDR is distinct on this host. Default VPCs take successive
/16s of 10.0.0.0/8 (the networking library's IPAM) that overlap nothing the host uses, no VPC
of any account of this cloud, and no reserved range (10.213.0.0/16: the VM networks of the
test suites).
"""
from __future__ import annotations

import hashlib
import re
import secrets
import sqlite3
import time
from dataclasses import dataclass
from typing import Callable

from .errors import InvalidParameter, InvalidState, QuotaExceeded
from .networks import ipam
from .state import Store
from .validation import by_ids

VPC_ID = re.compile(r"vpc-[0-9a-f]{17}")
SUBNET_ID = re.compile(r"subnet-[0-9a-f]{17}")
ENI_ID = re.compile(r"eni-[0-9a-f]{17}")
RESERVED = ("10.213.0.0/16",)
ZONES = ("a", "b", "c")
# Per account and per VPC: each subnet is a bridge and a Docker network on this one host.
MAX_VPCS, MAX_SUBNETS = 5, 16


def new_id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(9)[:17]}"


def host_taken() -> set[str]:
    """CIDRs this host uses already (routes, addresses, Docker and libvirt networks, other
    clouds' VPCs): read by the networking library, which owns that knowledge."""
    from .networks.ipam import host_taken_cidrs

    return host_taken_cidrs()


def _mac(eni_id: str) -> str:
    # Locally administered, derived from the id: stable, and distinct from libvirt's 52:54:00 range.
    h = hashlib.sha256(eni_id.encode()).digest()
    return "0e:" + ":".join(f"{b:02x}" for b in h[:5])


@dataclass(frozen=True)
class Vpc:
    id: str
    owner: str
    cidr: str
    is_default: bool
    created_at: float


@dataclass(frozen=True)
class Subnet:
    id: str
    owner: str
    vpc_id: str
    zone: str
    cidr: str
    is_default: bool

    @property
    def available_ips(self) -> int:
        return ipam.describe(self.cidr)["available"]  # AWS reserves the first four and the last


@dataclass(frozen=True)
class NetworkInterface:
    id: str
    owner: str
    instance_id: str
    subnet_id: str
    vpc_id: str
    zone: str
    zone_suffix: str
    mac: str
    attachment_id: str
    created_at: float


class Vpcs:
    def __init__(self, store: Store, reserved: tuple = RESERVED, taken=None):
        self.store = store
        self.reserved = reserved
        self.taken = taken or (lambda: host_taken())  # looked up when called: tests replace it
        # Called after a VPC or subnet is recorded or removed (the cloud makes its bridges).
        self.on_change: Callable[[], None] = lambda: None
        # Records a new VPC's default security group inside the VPC's own transaction
        # (SecurityGroups sets it: (connection, owner, vpc id, time) -> group id).
        self.with_default_group: Callable[[sqlite3.Connection, str, str, float], str] = lambda c, o, v, t: ""

    # -- VPCs ------------------------------------------------------------------------
    def default(self, owner: str) -> Vpc:
        """The account's default VPC and its subnets, made (once) on first use."""
        row = self.store.one("SELECT * FROM vpcs WHERE owner=? AND is_default=1", (owner,))
        if row is None:
            row = self._create_default(owner)
        return self._vpc(row)

    def _create_default(self, owner: str) -> sqlite3.Row:
        on_host = set(self.taken())
        vpc_id = new_id("vpc")
        now = time.time()
        with self.store.tx() as c:
            # Inside the write transaction: two servers sharing a home cannot pick the same /16.
            row = c.execute("SELECT * FROM vpcs WHERE owner=? AND is_default=1", (owner,)).fetchone()
            if row is not None:
                return row
            in_cloud = [r[0] for r in c.execute("SELECT cidr FROM vpcs")]
            block = ipam.allocate_vpc_cidr([*in_cloud, *on_host, *self.reserved])
            c.execute("INSERT INTO vpcs (id, owner, cidr, is_default, created_at) VALUES (?,?,?,1,?)",
                      (vpc_id, owner, block, now))
            subnets: list[str] = []
            for zone in ZONES:  # one /20 per zone, as AWS lays out a default VPC
                subnets.append(ipam.allocate_subnet_cidr(block, subnets))
                c.execute("INSERT INTO subnets (id, owner, vpc_id, zone_suffix, cidr, is_default, created_at) "
                          "VALUES (?,?,?,?,?,1,?)", (new_id("subnet"), owner, vpc_id, zone, subnets[-1], now))
            self.with_default_group(c, owner, vpc_id, now)
        self.on_change()
        return self.store.one("SELECT * FROM vpcs WHERE id=?", (vpc_id,))

    @staticmethod
    def _vpc(row) -> Vpc:
        return Vpc(row["id"], row["owner"], row["cidr"], bool(row["is_default"]), row["created_at"])

    def list(self, owner: str, ids: list[str] | None = None) -> list[Vpc]:
        self.default(owner)
        rows = [self._vpc(r) for r in self.store.query("SELECT * FROM vpcs WHERE owner=? ORDER BY created_at",
                                                       (owner,))]
        return by_ids(rows, ids, VPC_ID, "vpc", "vpc ID", ("InvalidVpcID", "InvalidVpcID.NotFound"))

    def get(self, owner: str, vpc_id: str) -> Vpc:
        return self.list(owner, [vpc_id])[0]

    def create(self, owner: str, cidr) -> Vpc:
        """A VPC of the caller's block: private, /16-/28, overlapping no VPC of this cloud, no host
        network and no reserved range (InvalidVpc.Range). Records only; the caller makes it real."""
        network = ipam.network(cidr)  # malformed input is refused before anything is read
        self.default(owner)
        on_host = set(self.taken())
        vpc_id = new_id("vpc")
        with self.store.tx() as c:
            if c.execute("SELECT COUNT(*) FROM vpcs WHERE owner=?", (owner,)).fetchone()[0] >= MAX_VPCS:
                raise QuotaExceeded(f"The maximum number of VPCs ({MAX_VPCS}) has been reached.",
                                    code="VpcLimitExceeded")
            in_cloud = [r[0] for r in c.execute("SELECT cidr FROM vpcs")]
            block = ipam.validate_vpc_cidr(str(network), [*in_cloud, *on_host, *self.reserved])
            now = time.time()
            c.execute("INSERT INTO vpcs (id, owner, cidr, is_default, created_at) VALUES (?,?,?,0,?)",
                      (vpc_id, owner, block, now))
            self.with_default_group(c, owner, vpc_id, now)
        return self.get(owner, vpc_id)

    def delete(self, owner: str, vpc_id: str) -> Vpc:
        """Removes a VPC's record and its default security group; refused while it has subnets or
        other security groups (as on AWS), and for the default VPC, where launches without a
        subnet go."""
        vpc = self.get(owner, vpc_id)
        if vpc.is_default:
            raise InvalidState(f"{vpc.id} is this account's default VPC: pocketcloud keeps it (launches without a "
                               "subnet go there)", code="OperationNotPermitted")
        with self.store.tx() as c:
            subnets = [r[0] for r in c.execute("SELECT id FROM subnets WHERE vpc_id=?", (vpc.id,))]
            groups = [r[0] for r in c.execute("SELECT id FROM security_groups WHERE vpc_id=? AND name!='default'",
                                              (vpc.id,))]
            if subnets or groups:
                raise InvalidState(f"The vpc '{vpc.id}' has dependencies and cannot be deleted "
                                   f"({', '.join((subnets + groups)[:5])})", code="DependencyViolation")
            gone = [vpc.id] + [r[0] for r in c.execute(
                "SELECT g.id FROM security_groups g WHERE g.vpc_id=? UNION SELECT r.id FROM security_group_rules r "
                "JOIN security_groups g ON g.id = r.group_id WHERE g.vpc_id=?", (vpc.id, vpc.id))]
            c.execute("DELETE FROM security_groups WHERE vpc_id=?", (vpc.id,))  # its default group; rules by cascade
            c.execute("DELETE FROM vpcs WHERE id=?", (vpc.id,))
            c.execute(f"DELETE FROM resource_tags WHERE resource_id IN ({','.join('?' * len(gone))})", gone)
        return vpc

    def forget(self, vpc_id: str = "", subnet_id: str = "") -> None:
        """Drops a record just made whose network could not be made (the create's rollback)."""
        with self.store.tx() as c:
            c.execute("DELETE FROM subnets WHERE id=?", (subnet_id,))
            c.execute("DELETE FROM security_groups WHERE vpc_id=? AND EXISTS (SELECT 1 FROM vpcs WHERE id=? AND "
                      "is_default=0)", (vpc_id, vpc_id))
            c.execute("DELETE FROM vpcs WHERE id=? AND is_default=0", (vpc_id,))

    # -- subnets ---------------------------------------------------------------------
    def create_subnet(self, owner: str, region: str, vpc_id: str, cidr, zone: str | None = None) -> Subnet:
        """A subnet of one of the caller's VPCs: inside its block (InvalidSubnet.Range) and overlapping
        none of its subnets (InvalidSubnet.Conflict). Records only; the caller makes it real."""
        network = ipam.network(cidr)
        suffix = ZONES[0]
        if zone is not None:
            if not isinstance(zone, str) or not zone.startswith(region) or zone[len(region):] not in ZONES:
                raise InvalidParameter(f"Value ({str(zone)[:40]}) for parameter availabilityZone is invalid. "
                                       f"Subnets can currently only be created in the following availability zones: "
                                       f"{', '.join(region + z for z in ZONES)}.", code="InvalidParameterValue")
            suffix = zone[len(region):]
        vpc = self.get(owner, vpc_id)
        on_host = self.taken()
        subnet_id = new_id("subnet")
        with self.store.tx() as c:
            siblings = [r[0] for r in c.execute("SELECT cidr FROM subnets WHERE vpc_id=?", (vpc.id,))]
            if len(siblings) >= MAX_SUBNETS:
                raise QuotaExceeded(f"The maximum number of subnets ({MAX_SUBNETS}) for {vpc.id} has been reached.",
                                    code="SubnetLimitExceeded")
            block = ipam.validate_subnet_cidr(vpc.cidr, str(network), siblings)
            # Inside the VPC's block, the host's only networks should be this VPC's own subnets:
            # anything else (a Docker network made by hand) would make Docker refuse the bridge.
            foreign = ipam.overlapping(ipam.network(block), [t for t in on_host if t != vpc.cidr and t not in siblings])
            if foreign is not None:
                raise InvalidParameter(f"The CIDR '{block}' conflicts with {foreign}, which another network of this "
                                       "host uses", code="InvalidSubnet.Conflict")
            c.execute("INSERT INTO subnets (id, owner, vpc_id, zone_suffix, cidr, is_default, created_at) "
                      "VALUES (?,?,?,?,?,0,?)", (subnet_id, owner, vpc.id, suffix, block, time.time()))
        return self.subnets(owner, region, [subnet_id])[0]

    def delete_subnet(self, owner: str, region: str, subnet_id: str) -> Subnet:
        """Removes a subnet's record; DependencyViolation while an instance that is not terminated is
        in it (or was launched into it and has no interface yet)."""
        subnet = self.subnets(owner, region, [subnet_id])[0]
        with self.store.tx() as c:
            users = [r[0] for r in c.execute(
                "SELECT id FROM instances WHERE owner=? AND state!='terminated' AND (id IN (SELECT instance_id FROM "
                "network_interfaces WHERE subnet_id=?) OR json_extract(details, '$.subnet_id')=?)",
                (owner, subnet.id, subnet.id))]
            if users:
                raise InvalidState(f"The subnet '{subnet.id}' has dependencies and cannot be deleted "
                                   f"({', '.join(users[:5])})", code="DependencyViolation")
            c.execute("DELETE FROM network_interfaces WHERE subnet_id=?", (subnet.id,))  # terminated instances'
            c.execute("DELETE FROM subnets WHERE id=?", (subnet.id,))
            c.execute("DELETE FROM resource_tags WHERE resource_id=?", (subnet.id,))
        return subnet

    # -- subnets ---------------------------------------------------------------------
    def _subnet(self, row, region: str) -> Subnet:
        return Subnet(row["id"], row["owner"], row["vpc_id"], region + row["zone_suffix"], row["cidr"],
                      bool(row["is_default"]))

    def subnets(self, owner: str, region: str, ids: list[str] | None = None) -> list[Subnet]:
        self.default(owner)
        rows = [self._subnet(r, region) for r in self.store.query(
            "SELECT * FROM subnets WHERE owner=? ORDER BY zone_suffix, created_at", (owner,))]
        return by_ids(rows, ids, SUBNET_ID, "subnet", "subnet ID",
                      ("InvalidSubnetID", "InvalidSubnetID.NotFound"))

    def subnet_for(self, owner: str, region: str, subnet_id: str | None = None, zone: str | None = None) -> Subnet:
        """Where a new instance goes: the given subnet, else the default subnet of the given
        zone, else the default subnet of the first zone."""
        if subnet_id:
            subnet = self.subnets(owner, region, [subnet_id])[0]
            if zone and zone != subnet.zone:
                raise InvalidParameter(f"subnet {subnet_id} is in {subnet.zone}, not {zone}",
                                       code="InvalidParameterCombination")
            return subnet
        defaults = [s for s in self.subnets(owner, region) if s.is_default]
        if zone:
            match = [s for s in defaults if s.zone == zone]
            if not match:
                raise InvalidParameter(f"Invalid availability zone: [{zone[:40]}] (this region has "
                                       f"{', '.join(s.zone for s in defaults)})", code="InvalidParameterValue")
            return match[0]
        return defaults[0]

    # -- network interfaces -----------------------------------------------------------
    def attach(self, owner: str, instance_ids: list[str], subnet: Subnet) -> None:
        """Give each instance its primary network interface in `subnet` (idempotent)."""
        now = time.time()
        with self.store.tx() as c:
            for iid in instance_ids:
                eni = new_id("eni")
                c.execute("INSERT OR IGNORE INTO network_interfaces (id, owner, instance_id, subnet_id, mac,"
                          " attachment_id, created_at) VALUES (?,?,?,?,?,?,?)",
                          (eni, owner, iid, subnet.id, _mac(eni), new_id("eni-attach"), now))

    def interfaces(self, owner: str, region: str, instances: dict[str, str | None]) -> list[NetworkInterface]:
        """Primary interfaces of these instances (id -> the subnet chosen at launch, if any).
        An instance gets its interface the first time anyone looks: in its chosen subnet, or
        (launched through REST, CLI or console) in the default subnet of the first zone."""
        if not instances:
            return []
        ids = list(instances)
        marks = ",".join("?" * len(ids))
        have = {r[0] for r in self.store.query(
            f"SELECT instance_id FROM network_interfaces WHERE owner=? AND instance_id IN ({marks})", (owner, *ids))}
        missing = [i for i in ids if i not in have]
        if missing:
            known = {s.id: s for s in self.subnets(owner, region)}
            fallback = self.subnet_for(owner, region)
            by_subnet: dict[str, list[str]] = {}
            for iid in missing:
                by_subnet.setdefault(instances[iid] if instances[iid] in known else fallback.id, []).append(iid)
            for subnet_id, group in by_subnet.items():
                self.attach(owner, group, known[subnet_id])
        rows = self.store.query(
            "SELECT n.*, s.vpc_id, s.zone_suffix FROM network_interfaces n JOIN subnets s ON s.id = n.subnet_id "
            f"WHERE n.owner=? AND n.instance_id IN ({marks}) ORDER BY n.created_at", (owner, *ids))
        return [NetworkInterface(r["id"], r["owner"], r["instance_id"], r["subnet_id"], r["vpc_id"],
                                 region + r["zone_suffix"], r["zone_suffix"], r["mac"], r["attachment_id"],
                                 r["created_at"]) for r in rows]
