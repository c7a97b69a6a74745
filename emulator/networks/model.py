"""The desired state of one cloud's networks, as plain values.

The firewall is not told "add this rule": it is given the whole picture (VPCs, subnets,
security groups, instance ports, host forwards) and makes the kernel match it. That is
what makes every change idempotent and lets a restarted server reconcile the kernel with
its database. The state database (emulator/vpcs.py and friends) builds a `Desired`; this
library keeps no state of its own.

Every value that reaches an nft rule, an `ip` argv or a file name is validated here, once.
"""
from __future__ import annotations

import hashlib
import ipaddress
import re
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidParameter
from . import ipam
from .host import ifname as _ifname

LABEL = re.compile(r"^[a-z0-9]{1,24}$")
MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
PROTOCOLS = ("tcp", "udp", "icmp", "all")


_MALFORMED = {"vpc": "InvalidVpcID.Malformed", "subnet": "InvalidSubnetID.Malformed",
              "sg": "InvalidGroupId.Malformed", "i": "InvalidInstanceID.Malformed"}


def resource_id(value: Any, prefix: str) -> str:
    if not isinstance(value, str) or not re.fullmatch(rf"{prefix}-[0-9a-f]{{8,17}}", value):
        raise InvalidParameter(f"invalid {prefix} id {str(value)[:40]!r}: expected '{prefix}-' and 8-17 hex digits",
                               code=_MALFORMED[prefix])
    return value


def label(value: Any) -> str:
    """The cloud's label (Config.instance_label): part of every kernel object name."""
    if not isinstance(value, str) or not LABEL.fullmatch(value):
        raise InvalidParameter(f"invalid cloud label {str(value)[:40]!r}: 1-24 lowercase letters or digits")
    return value


def mac(value: Any) -> str:
    if not isinstance(value, str) or not MAC.fullmatch(value.lower()):
        raise InvalidParameter(f"invalid MAC address {str(value)[:40]!r}")
    if int(value[:2], 16) & 1:
        raise InvalidParameter(f"MAC address {value} is a multicast address")
    return value.lower()


def ipv4(value: Any) -> str:
    try:
        return str(ipaddress.IPv4Address(value))
    except (ValueError, TypeError):
        raise InvalidParameter(f"invalid IPv4 address {str(value)[:40]!r}") from None


def port_number(value: Any, what: str = "port") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise InvalidParameter(f"invalid {what} {value!r}: 1-65535")
    return value


@dataclass(frozen=True)
class Rule:
    """One security group permission with one peer: a CIDR or a group (AWS IpPermission, flattened).

    protocol: tcp | udp | icmp | all.  tcp/udp: from_port..to_port.  icmp: from_port is the type and
    to_port the code, -1 meaning any (as in EC2).  peer_cidr is the source for ingress and the
    destination for egress; peer_group likewise names a group whose members' addresses match.
    """

    protocol: str
    from_port: int = -1
    to_port: int = -1
    peer_cidr: str | None = None
    peer_group: str | None = None
    description: str = ""

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise InvalidParameter(f"invalid protocol {self.protocol!r}: one of {', '.join(PROTOCOLS)}",
                                   code="InvalidParameterValue")
        if (self.peer_cidr is None) == (self.peer_group is None):
            raise InvalidParameter("a rule names exactly one peer: a CIDR or a security group")
        if self.peer_cidr is not None:
            object.__setattr__(self, "peer_cidr", peer_cidr(self.peer_cidr))
        if self.peer_group is not None:
            resource_id(self.peer_group, "sg")
        if self.protocol in ("tcp", "udp"):
            port_number(self.from_port, "FromPort"), port_number(self.to_port, "ToPort")
            if self.from_port > self.to_port:
                raise InvalidParameter(f"invalid port range {self.from_port}-{self.to_port}")
        elif self.protocol == "icmp":
            for v in (self.from_port, self.to_port):
                if isinstance(v, bool) or not isinstance(v, int) or not -1 <= v <= 255:
                    raise InvalidParameter(f"invalid ICMP type/code {v!r}: -1 (any) or 0-255")
            if self.from_port == -1 and self.to_port != -1:
                raise InvalidParameter("an ICMP code needs an ICMP type")

    @property
    def key(self) -> str:
        """Stable short id of the rule (names its counter, so counters survive reordering)."""
        text = f"{self.protocol}|{self.from_port}|{self.to_port}|{self.peer_cidr}|{self.peer_group}"
        return hashlib.sha256(text.encode()).hexdigest()[:10]

    def summary(self) -> str:
        ports = {"all": "all", "icmp": f"icmp {self.from_port}/{self.to_port}"}.get(
            self.protocol, f"{self.protocol} {self.from_port}" + (f"-{self.to_port}" if self.to_port != self.from_port else ""))
        return f"{ports} {self.peer_cidr or self.peer_group}"


def peer_cidr(value: Any) -> str:
    """A rule's peer block; host bits are cleared, as EC2 does ('10.0.0.5/16' -> '10.0.0.0/16')."""
    try:
        net = ipaddress.ip_network(value, strict=False)
        if isinstance(net, ipaddress.IPv4Network) and isinstance(value, str) and "/" in value:
            return str(net)
    except (ValueError, TypeError):
        pass
    raise InvalidParameter(f"invalid CIDR {str(value)[:40]!r}: an IPv4 block such as 0.0.0.0/0",
                           code="InvalidParameterValue")


@dataclass(frozen=True)
class Group:
    id: str
    vpc_id: str
    ingress: tuple[Rule, ...] = ()
    egress: tuple[Rule, ...] = ()

    def __post_init__(self) -> None:
        resource_id(self.id, "sg"), resource_id(self.vpc_id, "vpc")
        object.__setattr__(self, "ingress", tuple(dict.fromkeys(self.ingress)))
        object.__setattr__(self, "egress", tuple(dict.fromkeys(self.egress)))


@dataclass(frozen=True)
class Vpc:
    id: str
    cidr: str
    nat: bool = True  # outbound access through the host; False = nothing leaves the VPC

    def __post_init__(self) -> None:
        resource_id(self.id, "vpc")
        object.__setattr__(self, "cidr", str(ipam.network(self.cidr)))


@dataclass(frozen=True)
class Subnet:
    id: str
    vpc_id: str
    cidr: str

    def __post_init__(self) -> None:
        resource_id(self.id, "subnet"), resource_id(self.vpc_id, "vpc")
        object.__setattr__(self, "cidr", str(ipam.network(self.cidr)))

    @property
    def bridge(self) -> str:
        return bridge_name(self.id)

    @property
    def gateway(self) -> str:
        return ipam.gateway(self.cidr)


def bridge_name(subnet_id: str) -> str:
    """'pcb-' + the first 11 hex digits of the subnet id: 15 characters, the kernel's limit."""
    return "pcb-" + resource_id(subnet_id, "subnet").split("-", 1)[1][:11]


@dataclass(frozen=True)
class Port:
    """An instance's interface on a subnet bridge: a VM's tap or a container's host-side veth.

    ifname is None while the host side is not known yet (a container being restarted): the address
    stays reserved to this port, so nobody else can use it, and the instance sends nothing until
    `Firewall.repin` names the new interface.
    """

    instance_id: str
    subnet_id: str
    ip: str
    mac: str
    groups: tuple[str, ...] = ()
    ifname: str | None = None

    def __post_init__(self) -> None:
        resource_id(self.instance_id, "i"), resource_id(self.subnet_id, "subnet")
        object.__setattr__(self, "ip", ipv4(self.ip))
        object.__setattr__(self, "mac", mac(self.mac))
        object.__setattr__(self, "groups", tuple(dict.fromkeys(resource_id(g, "sg") for g in self.groups)))
        if self.ifname is not None:
            _ifname(self.ifname, "port interface")


@dataclass(frozen=True)
class Forward:
    """host_ip:host_port on the host -> instance ip:port, as kernel DNAT (survives the server)."""

    host_port: int
    ip: str
    port: int
    protocol: str = "tcp"
    host_ip: str = "127.0.0.1"

    def __post_init__(self) -> None:
        port_number(self.host_port, "host port"), port_number(self.port)
        object.__setattr__(self, "ip", ipv4(self.ip))
        object.__setattr__(self, "host_ip", ipv4(self.host_ip))
        if self.protocol not in ("tcp", "udp"):
            raise InvalidParameter(f"a forward is tcp or udp, not {self.protocol!r}")


@dataclass(frozen=True)
class Desired:
    vpcs: tuple[Vpc, ...] = ()
    subnets: tuple[Subnet, ...] = ()
    groups: tuple[Group, ...] = ()
    ports: tuple[Port, ...] = ()
    forwards: tuple[Forward, ...] = ()
    imds_port: int | None = None  # the metadata listener on 127.0.0.1 (None: 169.254.169.254 unreachable)
    api_port: int | None = None  # the cloud's API/S3 port on 127.0.0.1, answered on each gateway (None: not)

    def check(self) -> "Desired":
        """Cross-references: every subnet in a known VPC and inside its CIDR, every port in a known
        subnet with its address inside it and its groups in its VPC, one port per address, forwards
        to known ports, host ports used once. Raises InvalidParameter on the first problem."""
        vpcs = {v.id: v for v in self.vpcs}
        subnets = {s.id: s for s in self.subnets}
        groups = {g.id: g for g in self.groups}
        for v in self.vpcs:
            for w in self.vpcs:
                if v.id < w.id and ipaddress.ip_network(v.cidr).overlaps(ipaddress.ip_network(w.cidr)):
                    raise InvalidParameter(f"{v.id} and {w.id} overlap", code="InvalidVpc.Range")
        for s in self.subnets:
            if s.vpc_id not in vpcs:
                raise InvalidParameter(f"{s.id} names an unknown {s.vpc_id}", code="InvalidVpcID.NotFound")
            ipam.validate_subnet_cidr(vpcs[s.vpc_id].cidr, s.cidr,
                                      [o.cidr for o in self.subnets if o.vpc_id == s.vpc_id and o.id != s.id])
        if len({s.bridge for s in self.subnets}) != len(self.subnets):
            raise InvalidParameter("two subnets share a bridge name (their ids start alike)")
        for g in self.groups:
            if g.vpc_id not in vpcs:
                raise InvalidParameter(f"{g.id} names an unknown {g.vpc_id}", code="InvalidVpcID.NotFound")
            for r in g.ingress + g.egress:
                if r.peer_group and (r.peer_group not in groups or groups[r.peer_group].vpc_id != g.vpc_id):
                    raise InvalidParameter(f"{g.id} references {r.peer_group}, not a group of {g.vpc_id}",
                                           code="InvalidGroup.NotFound")
        seen_ip: set[str] = set()
        seen_if: set[str] = set()
        for p in self.ports:
            if p.subnet_id not in subnets:
                raise InvalidParameter(f"{p.instance_id} is on an unknown {p.subnet_id}",
                                       code="InvalidSubnetID.NotFound")
            sub = subnets[p.subnet_id]
            if ipaddress.IPv4Address(p.ip) not in ipaddress.ip_network(sub.cidr) or p.ip in ipam.reserved(sub.cidr):
                raise InvalidParameter(f"{p.instance_id}'s address {p.ip} is not a usable address of {sub.cidr}")
            for gid in p.groups:
                if gid not in groups or groups[gid].vpc_id != sub.vpc_id:
                    raise InvalidParameter(f"{p.instance_id} is in {gid}, not a group of {sub.vpc_id}",
                                           code="InvalidGroup.NotFound")
            if p.ip in seen_ip or (p.ifname and p.ifname in seen_if):
                raise InvalidParameter(f"{p.ip} or {p.ifname} is used by two ports")
            seen_ip.add(p.ip)
            if p.ifname:
                seen_if.add(p.ifname)
        listen: set[tuple] = set()
        for f in self.forwards:
            if f.ip not in seen_ip:
                raise InvalidParameter(f"forward {f.host_ip}:{f.host_port} targets {f.ip}, which is no instance port")
            if (f.host_ip, f.host_port, f.protocol) in listen:
                raise InvalidParameter(f"host port {f.host_ip}:{f.host_port}/{f.protocol} is forwarded twice")
            listen.add((f.host_ip, f.host_port, f.protocol))
        if self.imds_port is not None:
            port_number(self.imds_port, "metadata port")
        if self.api_port is not None:
            port_number(self.api_port, "API port")
        return self

    def vpc_of(self, port: Port) -> Vpc:
        sub = next(s for s in self.subnets if s.id == port.subnet_id)
        return next(v for v in self.vpcs if v.id == sub.vpc_id)
