"""Subnet lifecycle across the engines, with rollback: bridge, Docker network, DHCP.

A subnet is three kernel/engine objects that must appear and disappear together. Creation
goes bridge -> Docker network (Docker adopts the bridge) and undoes what it did if a later
step fails; deletion goes the other way and refuses while instances are attached, so a
failed CreateSubnet or DeleteSubnet never leaves a stray bridge or network behind.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import BackendUnavailable, CloudError, InvalidState
from . import bridges, host
from .dhcp import Dhcp
from .model import Subnet

TOOLS = ("ip", "nft", "iptables", "iptables-restore", "dnsmasq", "nsenter")


def check_host() -> list[str]:
    """What this host lacks for VPC networking (empty when ready)."""
    problems = []
    for t in TOOLS:
        try:
            host.tool(t)
        except BackendUnavailable:
            problems.append(f"`{t}` is not installed")
    if not host.is_root():
        problems.append("VPC networking needs root (bridges, nftables, dnsmasq)")
    if host.read_sysctl("net/bridge/bridge-nf-call-iptables") is None:
        problems.append("br_netfilter is not loaded (modprobe br_netfilter): bridged traffic would skip the groups")
    return problems


def prepare_host() -> None:
    """Turns on IPv4 forwarding (Docker does the same) after checking the tools are there."""
    problems = [p for p in check_host() if "installed" in p or "root" in p]
    if problems:
        raise BackendUnavailable("; ".join(problems), hint="run `make engines` as root")
    host.write_sysctl("net/ipv4/ip_forward", "1")


def create_subnet(label: str, subnet: Subnet, docker_client: Any | None) -> dict[str, Any]:
    """Bridge with the gateway address, then a Docker network bound to it (when a client is given)."""
    made = bridges.ensure_bridge(label, subnet)
    try:
        network_id = bridges.ensure_docker_network(docker_client, label, subnet) if docker_client else None
    except CloudError:
        if made["created"]:
            bridges.remove_bridge(label, subnet)
        raise
    return {**made, "docker_network": network_id}


def delete_subnet(label: str, subnet: Subnet, docker_client: Any | None, dhcp_dir: Path | None = None) -> None:
    """DHCP, Docker network, bridge - in that order; DependencyViolation while anything is attached."""
    attached = bridges.ports(subnet.bridge) if host.link_exists(subnet.bridge) else []
    if attached:
        raise InvalidState(f"{subnet.id} still has interfaces on {subnet.bridge}: {', '.join(attached)}",
                           code="DependencyViolation")
    if dhcp_dir is not None:
        Dhcp(label, subnet, dhcp_dir).stop()
    if docker_client is not None:
        bridges.remove_docker_network(docker_client, label, subnet.id)
    bridges.remove_bridge(label, subnet)
