"""One Linux bridge per subnet, and the Docker network that lets containers join it.

Why pocketcloud creates the bridge itself (instead of letting Docker or libvirt do it): both
kinds of instance must sit on the same L2 segment with addresses from one IPAM. Docker
adopts an existing bridge (`com.docker.network.bridge.name`, verified with Docker 20.10:
it keeps the bridge on `docker network rm`), and libvirt attaches a VM's tap to any
bridge (`<interface type='bridge'>`). So: bridge first, Docker network second, both
removed in the opposite order.

Each bridge gets: the subnet's gateway address (AWS: base + 1), a fixed MAC (the bridge
otherwise takes its lowest port's MAC, which changes as instances come and go and leaves
stale gateway entries in ARP caches), `route_localnet=1` (DNAT forwards from 127.0.0.1
need it; rules.py's guard closes what it opens), br_netfilter on for this bridge (security
groups between two instances of one subnet are enforced on bridged frames), IPv6 off, and
an ifalias `pocketcloud <label> <subnet id>` that says which cloud owns it: nothing here
ever touches a bridge another cloud (or another program) owns.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from ..errors import AlreadyExists, BackendUnavailable, EngineError, InvalidState, NotFound
from . import host, model
from .model import Subnet

ALIAS = "pocketcloud"


def alias(label: str, subnet_id: str) -> str:
    return f"{ALIAS} {model.label(label)} {subnet_id}"


def bridge_mac(subnet_id: str) -> str:
    """A stable, locally administered unicast MAC for the gateway (02:...)."""
    h = hashlib.sha256(subnet_id.encode()).hexdigest()
    return "02:" + ":".join(h[i:i + 2] for i in range(0, 10, 2))


def tap_name(instance_id: str) -> str:
    """The host-side name for a VM's tap: 'pct-' + 11 hex digits of the instance id."""
    return "pct-" + model.resource_id(instance_id, "i").split("-", 1)[1][:11]


def _link(name: str) -> dict[str, Any] | None:
    if not host.link_exists(name):
        return None
    found = host.ip_json("-d", "link", "show", "dev", name)
    return found[0] if found else None


def owner(name: str) -> str | None:
    """The ifalias of a link, or None when it does not exist."""
    link = _link(name)
    return None if link is None else (link.get("ifalias") or "")


def ensure_bridge(label: str, subnet: Subnet) -> dict[str, Any]:
    """Creates (or repairs) the subnet's bridge; idempotent. Returns {name, gateway, created}."""
    name, want_alias = subnet.bridge, alias(label, subnet.id)
    prefix = subnet.cidr.split("/")[1]
    link = _link(name)
    created = link is None
    if link is not None:
        if link.get("ifalias", "") != want_alias:
            raise AlreadyExists(f"a network interface named {name} already exists and is not this subnet's bridge "
                                f"({link.get('ifalias') or 'no owner'})", code="InvalidSubnet.Conflict")
        if (link.get("linkinfo") or {}).get("info_kind") != "bridge":
            raise EngineError(f"{name} is not a bridge")
    else:
        try:
            host.run(["ip", "link", "add", "name", name, "type", "bridge", "stp_state", "0",
                      "forward_delay", "0", "nf_call_iptables", "1"])
            host.run(["ip", "link", "set", "dev", name, "address", bridge_mac(subnet.id), "alias", want_alias])
        except EngineError:
            if _link(name) is not None and owner(name) in ("", want_alias):
                host.run(["ip", "link", "del", "dev", name], check=False)
            raise
    try:
        _configure(name, f"{subnet.gateway}/{prefix}")
    except EngineError:
        if created:
            host.run(["ip", "link", "del", "dev", name], check=False)
        raise
    return {"name": name, "gateway": subnet.gateway, "created": created}


def _configure(name: str, gateway_cidr: str) -> None:
    if Path(f"/proc/sys/net/ipv6/conf/{name}").exists():
        host.write_sysctl(f"net/ipv6/conf/{name}/disable_ipv6", "1")
    host.write_sysctl(f"net/ipv4/conf/{name}/route_localnet", "1")
    bridge_opts = Path(f"/sys/class/net/{name}/bridge/nf_call_iptables")
    if bridge_opts.exists() and bridge_opts.read_text().strip() != "1":
        host.run(["ip", "link", "set", "dev", name, "type", "bridge", "nf_call_iptables", "1"])
    have = {f"{a['local']}/{a['prefixlen']}" for li in host.ip_json("-4", "addr", "show", "dev", name)
            for a in li.get("addr_info", [])}
    for stale in have - {gateway_cidr}:
        host.run(["ip", "addr", "del", stale, "dev", name])
    if gateway_cidr not in have:
        host.run(["ip", "addr", "add", gateway_cidr, "dev", name])
    host.run(["ip", "link", "set", "dev", name, "up"])


def remove_bridge(label: str, subnet: Subnet) -> bool:
    """Deletes the subnet's bridge if it is ours; refuses while instances are attached to it."""
    name = subnet.bridge
    current = owner(name)
    if current is None:
        return False
    if current != alias(label, subnet.id):
        raise NotFound(f"{name} is not this cloud's bridge for {subnet.id}; left alone")
    attached = ports(name)
    if attached:
        raise InvalidState(f"{subnet.id} still has interfaces on {name}: {', '.join(attached)}",
                           code="DependencyViolation")
    host.run(["ip", "link", "del", "dev", name])
    return True


def ports(bridge: str) -> list[str]:
    """The interfaces enslaved to a bridge (taps, veths)."""
    brif = Path("/sys/class/net", host.ifname(bridge), "brif")
    return sorted(p.name for p in brif.iterdir()) if brif.exists() else []


def list_bridges(label: str | None = None) -> list[dict[str, str]]:
    """pocketcloud bridges on this host ({name, label, subnet}), optionally one cloud's only."""
    out = []
    for link in host.ip_json("link", "show", "type", "bridge"):
        parts = (link.get("ifalias") or "").split()
        if len(parts) == 3 and parts[0] == ALIAS and (label is None or parts[1] == label):
            out.append({"name": link["ifname"], "label": parts[1], "subnet": parts[2]})
    return out


# ---- Docker ------------------------------------------------------------------------

def _docker_error(e: Exception, doing: str) -> Exception:
    """A docker SDK failure as one of ours: daemon unreachable vs. request refused."""
    import docker

    if isinstance(e, docker.errors.APIError):
        return EngineError(f"docker could not {doing}: {e.explanation or e}")
    return BackendUnavailable(f"dockerd is not reachable ({e.__class__.__name__}) while trying to {doing}",
                              hint="run `make engines`")


def _docker_failures() -> tuple[type[Exception], ...]:
    import docker
    import requests

    return (docker.errors.DockerException, requests.RequestException)


def docker_network_name(label: str, subnet_id: str) -> str:
    return f"pc-{model.label(label)}-{model.resource_id(subnet_id, 'subnet')}"


def ensure_docker_network(client: Any, label: str, subnet: Subnet) -> str:
    """A Docker bridge network bound to the subnet's (existing) bridge; idempotent. Docker's own
    masquerading is off: outbound NAT is per VPC in pocketcloud's table. Returns the network id."""
    from docker.types import IPAMConfig, IPAMPool

    name = docker_network_name(label, subnet.id)
    try:
        found = client.networks.list(names=[name])
        for net in found:
            if net.name == name:
                opts = net.attrs.get("Options") or {}
                if opts.get("com.docker.network.bridge.name") != subnet.bridge:
                    raise EngineError(f"docker network {name} is bound to another bridge")
                return net.id
        net = client.networks.create(
            name, driver="bridge", check_duplicate=True,
            options={"com.docker.network.bridge.name": subnet.bridge,
                     "com.docker.network.bridge.enable_ip_masquerade": "false"},
            ipam=IPAMConfig(pool_configs=[IPAMPool(subnet=subnet.cidr, gateway=subnet.gateway)]),
            labels={"pocketcloud.cloud": label, "pocketcloud.subnet": subnet.id})
        return net.id
    except _docker_failures() as e:
        raise _docker_error(e, f"create network {name}") from None


def remove_docker_network(client: Any, label: str, subnet_id: str) -> bool:
    """Removes the subnet's Docker network (Docker leaves the adopted bridge in place)."""
    name = docker_network_name(label, subnet_id)
    try:
        for net in client.networks.list(names=[name]):
            if net.name == name:
                net.remove()
                return True
    except _docker_failures() as e:
        if "active endpoints" in str(e):
            raise InvalidState(f"{subnet_id} still has containers attached", code="DependencyViolation") from None
        raise _docker_error(e, f"remove network {name}") from None
    return False


def container_port(client: Any, label: str, container_id: str, subnet: Subnet) -> dict[str, str]:
    """The host side of a running container's interface on the subnet: {ifname, mac, ip}.

    Docker names the host-side veth at random and renames it on every restart, so the
    firewall's pinning is refreshed from this after each start (Firewall.repin)."""
    import docker

    try:
        c = client.containers.get(container_id)
    except docker.errors.NotFound:
        raise NotFound(f"container {container_id[:24]} does not exist") from None
    except _docker_failures() as e:
        raise _docker_error(e, "inspect a container") from None
    pid = c.attrs.get("State", {}).get("Pid") or 0
    net = (c.attrs.get("NetworkSettings", {}).get("Networks") or {}).get(docker_network_name(label, subnet.id))
    if not pid or not net:
        raise InvalidState(f"container {c.name} is not running on {subnet.id}")
    mac = net.get("MacAddress", "").lower()
    inside = host.run(["nsenter", "-t", str(int(pid)), "-n", "ip", "-j", "link", "show"]).stdout
    peer = next((li.get("link_index") for li in json.loads(inside) if li.get("address", "").lower() == mac), None)
    if peer is None:
        raise EngineError(f"no interface with MAC {mac} inside container {c.name}")
    for li in host.ip_json("link", "show"):
        if li.get("ifindex") == peer and li.get("master") == subnet.bridge:
            return {"ifname": li["ifname"], "mac": mac, "ip": net.get("IPAddress", "")}
    raise EngineError(f"the host side of {c.name}'s interface is not on {subnet.bridge}")

