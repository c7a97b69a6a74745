"""pocketcloud's own IP address management for VPCs, subnets and instance addresses.

Why our own: the host has one routing table, Docker refuses overlapping pools, and the
metadata service and the firewall identify an instance by its source address, so every
VPC CIDR must be distinct *on the host* - unlike AWS, where two VPCs may share 10.0.0.0/16.
The allocator therefore avoids host routes and addresses, Docker networks, libvirt networks
and whatever the caller already knows is taken (other VPCs in the state database).

Everything here is pure except `host_taken_cidrs`, which reads the host. Errors carry the
EC2 codes the EC2 front end answers with (`InvalidVpc.Range`, `InvalidSubnet.Range`,
`InvalidSubnet.Conflict`, `InvalidIPAddress.InUse`).
"""
from __future__ import annotations

import ipaddress
import json
import subprocess
from collections.abc import Iterable
from ipaddress import IPv4Address, IPv4Network
from typing import Any

from ..errors import AlreadyExists, InvalidParameter, QuotaExceeded

RFC1918 = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))
MIN_PREFIX, MAX_PREFIX = 16, 28  # AWS: a VPC or subnet block is between /16 and /28
DEFAULT_POOL = "10.0.0.0/8"


def network(value: Any, what: str = "CIDR block") -> IPv4Network:
    """A strict IPv4 network ('10.1.0.0/16'; host bits set is an error, as on AWS)."""
    if not isinstance(value, str) or len(value) > 18:
        raise InvalidParameter(f"invalid {what} {str(value)[:40]!r}: expected an IPv4 CIDR such as 10.1.0.0/16",
                               code="InvalidParameterValue")
    try:
        net = ipaddress.ip_network(value, strict=True)
    except ValueError:
        raise InvalidParameter(f"Value ({value}) for parameter cidrBlock is invalid. This is not a valid CIDR block.",
                               code="InvalidParameterValue") from None
    if not isinstance(net, IPv4Network) or "/" not in value:
        raise InvalidParameter(f"invalid {what} {value!r}: an IPv4 CIDR with a prefix length is required",
                               code="InvalidParameterValue")
    return net


def _nets(cidrs: Iterable[str | IPv4Network]) -> list[IPv4Network]:
    out = []
    for c in cidrs:
        try:
            n = ipaddress.ip_network(c, strict=False)
        except ValueError:
            continue
        if isinstance(n, IPv4Network):
            out.append(n)
    return out


def overlapping(net: IPv4Network, taken: Iterable[str | IPv4Network]) -> IPv4Network | None:
    return next((t for t in _nets(taken) if t.overlaps(net)), None)


def validate_vpc_cidr(value: Any, taken: Iterable[str | IPv4Network] = ()) -> str:
    """A user's VPC CIDR: /16-/28, private (RFC 1918), and overlapping nothing taken."""
    net = network(value)
    if not MIN_PREFIX <= net.prefixlen <= MAX_PREFIX:
        raise InvalidParameter(f"The CIDR '{net}' is invalid: a VPC block is between /16 and /28",
                               code="InvalidVpc.Range")
    if not any(net.subnet_of(p) for p in RFC1918):
        raise InvalidParameter(f"The CIDR '{net}' is invalid: use a private range (10.0.0.0/8, 172.16.0.0/12, "
                               "192.168.0.0/16)", code="InvalidVpc.Range")
    clash = overlapping(net, taken)
    if clash is not None:
        raise InvalidParameter(f"The CIDR '{net}' is invalid: it overlaps {clash}, which is already in use on this "
                               "host (another VPC, a host route, a Docker or libvirt network)", code="InvalidVpc.Range")
    return str(net)


def allocate_vpc_cidr(taken: Iterable[str | IPv4Network] = (), pool: str = DEFAULT_POOL, prefix: int = 16) -> str:
    """The first /prefix of the pool that overlaps nothing taken (default VPCs get one each)."""
    pool_net = network(pool, "pool")
    if not pool_net.prefixlen <= prefix <= MAX_PREFIX:
        raise InvalidParameter(f"cannot cut /{prefix} blocks out of {pool_net}")
    used = _nets(taken)
    for cand in pool_net.subnets(new_prefix=prefix):
        if not any(u.overlaps(cand) for u in used):
            return str(cand)
    raise QuotaExceeded(f"no free /{prefix} left in {pool_net} on this host", code="VpcLimitExceeded")


def validate_subnet_cidr(vpc_cidr: str, value: Any, siblings: Iterable[str] = ()) -> str:
    """A subnet block: inside its VPC, /16-/28, and not overlapping the VPC's other subnets."""
    vpc, net = network(vpc_cidr, "VPC CIDR"), network(value)
    if not net.subnet_of(vpc) or not MIN_PREFIX <= net.prefixlen <= MAX_PREFIX:
        raise InvalidParameter(f"The CIDR '{net}' is invalid: a subnet is a /16-/28 inside its VPC's {vpc}",
                               code="InvalidSubnet.Range")
    clash = overlapping(net, siblings)
    if clash is not None:
        raise InvalidParameter(f"The CIDR '{net}' conflicts with another subnet ({clash})",
                               code="InvalidSubnet.Conflict")
    return str(net)


def allocate_subnet_cidr(vpc_cidr: str, siblings: Iterable[str] = (), prefix: int = 20) -> str:
    """The first free /prefix in a VPC (default subnets: one /20 per availability zone, as on AWS)."""
    vpc = network(vpc_cidr, "VPC CIDR")
    prefix = max(prefix, vpc.prefixlen)
    used = _nets(siblings)
    for cand in vpc.subnets(new_prefix=prefix):
        if not any(u.overlaps(cand) for u in used):
            return str(cand)
    raise QuotaExceeded(f"no free /{prefix} left in {vpc}", code="InsufficientFreeAddressesInSubnet")


def gateway(subnet_cidr: str) -> str:
    """The subnet's router: its first usable address (AWS: base + 1), held by the bridge."""
    return str(network(subnet_cidr)[1])


def reserved(subnet_cidr: str) -> list[str]:
    """AWS reserves five addresses per subnet: network, router, DNS, future use, broadcast."""
    net = network(subnet_cidr)
    return [str(net[i]) for i in (0, 1, 2, 3)] + [str(net.broadcast_address)]


def validate_address(subnet_cidr: str, value: Any, taken: Iterable[str] = ()) -> str:
    """A requested private address (RunInstances PrivateIpAddress)."""
    net = network(subnet_cidr)
    try:
        addr = IPv4Address(value)
    except (ValueError, TypeError):
        raise InvalidParameter(f"invalid IPv4 address {str(value)[:40]!r}", code="InvalidParameterValue") from None
    if addr not in net:
        raise InvalidParameter(f"address {addr} is not in subnet {net}", code="InvalidParameterValue")
    if str(addr) in reserved(subnet_cidr):
        raise InvalidParameter(f"address {addr} is reserved in subnet {net} (first four and last)",
                               code="InvalidParameterValue")
    if str(addr) in set(taken):
        raise AlreadyExists(f"address {addr} is in use in subnet {net}", code="InvalidIPAddress.InUse")
    return str(addr)


def allocate_address(subnet_cidr: str, taken: Iterable[str] = ()) -> str:
    """The lowest free, unreserved address of a subnet."""
    net = network(subnet_cidr)
    skip = set(reserved(subnet_cidr)) | set(taken)
    for addr in net.hosts():
        if str(addr) not in skip:
            return str(addr)
    raise QuotaExceeded(f"subnet {net} has no free address", code="InsufficientFreeAddressesInSubnet")


def host_taken_cidrs(docker_client: Any = None, libvirt_uri: str | None = "qemu:///system") -> set[str]:
    """CIDRs in use on this host: IPv4 routes and interface addresses, Docker networks, libvirt networks,
    and the VPCs of every pocketcloud on the host (each cloud's table publishes them in its
    `vpc_cidrs` set, so a VPC without a subnet - hence without a route - is still seen).

    Inactive libvirt networks are included (they claim their range when started). Each source that
    cannot be read (engine down) is skipped: its active ranges still show up as host routes.
    """
    from . import host

    out: set[str] = set()
    for r in host.ip_json("-4", "route", "show", "table", "all"):
        dst = r.get("dst")
        if dst and dst != "default" and r.get("type") in (None, "unicast"):
            out.add(dst if "/" in dst else f"{dst}/32")
    for link in host.ip_json("-4", "addr", "show"):
        for a in link.get("addr_info", []):
            out.add(str(ipaddress.ip_interface(f"{a['local']}/{a['prefixlen']}").network))
    out |= _cloud_vpc_cidrs()
    out |= _docker_cidrs(docker_client)
    if libvirt_uri:
        out |= _libvirt_cidrs(libvirt_uri)
    return {c for c in out if not c.startswith("127.")}


def _cloud_vpc_cidrs() -> set[str]:
    from . import host

    proc = host.run(["nft", "-j", "list", "sets", "inet"], check=False)
    if proc.returncode != 0:
        return set()
    out: set[str] = set()
    for obj in json.loads(proc.stdout or "{}").get("nftables", []):
        s = obj.get("set")
        if s and s.get("name") == "vpc_cidrs" and str(s.get("table", "")).startswith("pc-"):
            for e in s.get("elem", []):
                p = e.get("prefix") if isinstance(e, dict) else None
                out.add(f"{p['addr']}/{p['len']}" if p else f"{e}/32")
    return out


def _docker_cidrs(client: Any) -> set[str]:
    out: set[str] = set()
    try:
        if client is None:
            import docker

            client = docker.from_env()
        for n in client.api.networks():
            for cfg in (n.get("IPAM") or {}).get("Config") or []:
                if cfg.get("Subnet") and ":" not in cfg["Subnet"]:
                    out.add(cfg["Subnet"])
    except Exception:  # noqa: BLE001 - docker down: its active bridges are host routes anyway
        pass
    return out


def _libvirt_cidrs(uri: str) -> set[str]:
    import xml.etree.ElementTree as ET

    out: set[str] = set()
    try:
        names = subprocess.run(["virsh", "-c", uri, "net-list", "--all", "--name"], capture_output=True,
                               text=True, timeout=20).stdout.split()
        for name in names:
            xml = subprocess.run(["virsh", "-c", uri, "net-dumpxml", name], capture_output=True, text=True,
                                 timeout=20).stdout
            for ip in ET.fromstring(xml).findall("ip") if xml.strip() else []:
                addr, prefix = ip.get("address"), ip.get("prefix") or ip.get("netmask")
                if addr and prefix and ":" not in addr:
                    out.add(str(ipaddress.ip_interface(f"{addr}/{prefix}").network))
    except (OSError, subprocess.SubprocessError, ET.ParseError, ValueError):
        pass
    return out


def describe(subnet_cidr: str, taken: Iterable[str] = ()) -> dict[str, Any]:
    """Numbers for DescribeSubnets (AvailableIpAddressCount) and internals."""
    net = network(subnet_cidr)
    used = {t for t in taken if IPv4Address(t) in net} - set(reserved(subnet_cidr))
    return {"cidr": str(net), "gateway": gateway(subnet_cidr), "reserved": reserved(subnet_cidr),
            "available": net.num_addresses - 5 - len(used)}


if __name__ == "__main__":  # pragma: no cover - a quick look at what this host has taken
    print(json.dumps(sorted(host_taken_cidrs()), indent=1))
