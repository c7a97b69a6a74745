"""The NAT network the driver defines for its VMs, and the static DHCP reservations that
keep an instance's private IP across stop/start."""
from __future__ import annotations

import ipaddress
import re
import socket
import threading
import xml.etree.ElementTree as ET

from ...errors import BackendUnavailable, EngineError, InvalidParameter
from . import domain
from .conn import Connection, engine_errors, is_libvirt_error, libvirt

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,40}$")


def host_routes() -> list[tuple[str, ipaddress.IPv4Network]]:
    """(interface, subnet) of every route the host has, default route excluded."""
    taken = []
    try:
        with open("/proc/net/route") as f:
            next(f)
            for line in f:
                parts = line.split()
                dest, mask = int(parts[1], 16), int(parts[7], 16)
                if mask == 0:
                    continue
                taken.append((parts[0], ipaddress.IPv4Network(
                    (socket.inet_ntoa(dest.to_bytes(4, "little")), socket.inet_ntoa(mask.to_bytes(4, "little"))),
                    strict=False)))
    except OSError:
        pass
    return taken


class VmNetwork:
    def __init__(self, conn: Connection, name: str, cidr: str):
        if not NAME.match(name):
            raise InvalidParameter(f"invalid libvirt network name {name!r}")
        try:
            net = ipaddress.IPv4Network(cidr)
        except ValueError as e:
            raise InvalidParameter(f"invalid network cidr {cidr!r}: {e}") from None
        if net.prefixlen > 28 or not net.is_private:
            raise InvalidParameter("the VM network must be a private IPv4 subnet of /28 or larger")
        self.conn = conn
        self.name = name
        self.subnet = net
        self._lock = threading.Lock()

    @property
    def gateway(self) -> ipaddress.IPv4Address:
        return self.subnet.network_address + 1

    def ensure(self):
        """The network, defined and started if need be."""
        with self._lock, engine_errors(f"network {self.name}"):
            try:
                net = self.conn.get().networkLookupByName(self.name)
            except Exception as e:
                if not is_libvirt_error(e, libvirt.VIR_ERR_NO_NETWORK):
                    raise
                self._check_subnet_free()
                net = self.conn.get().networkDefineXML(domain.network_xml(self.name, self.subnet))
            if not net.isActive():
                net.create()
            return net

    def _check_subnet_free(self) -> None:
        """Refuse to define a network whose subnet overlaps a route the host already has
        (docker0 172.17/16, libvirt default 192.168.122/24, the LAN ...)."""
        taken = host_routes()
        for other in self.conn.get().listAllNetworks(0):
            for ip in ET.fromstring(other.XMLDesc(0)).iter("ip"):
                if ip.get("address") and (ip.get("netmask") or ip.get("prefix")):
                    net = ipaddress.IPv4Network(f"{ip.get('address')}/{ip.get('netmask') or ip.get('prefix')}",
                                                strict=False)
                    taken.append((f"libvirt network {other.name()}", net))
        for where, net in taken:
            if net.overlaps(self.subnet):
                raise BackendUnavailable(f"the VM subnet {self.subnet} overlaps {net} ({where})",
                                         hint="choose another subnet for the pocketcloud network")

    def remove(self) -> None:
        """Destroy and undefine the network (tests; teardown)."""
        with self._lock, engine_errors(f"remove network {self.name}"):
            try:
                net = self.conn.get().networkLookupByName(self.name)
            except Exception as e:
                if is_libvirt_error(e, libvirt.VIR_ERR_NO_NETWORK):
                    return
                raise
            if net.isActive():
                net.destroy()
            net.undefine()

    def bridge(self) -> str | None:
        with engine_errors("network"):
            try:
                return self.conn.get().networkLookupByName(self.name).bridgeName()
            except Exception as e:
                if is_libvirt_error(e):
                    return None
                raise

    def reserve_ip(self, net, instance_id: str, mac: str) -> str:
        """A static DHCP host entry for the instance; its address."""
        root = ET.fromstring(net.XMLDesc(0))
        used = {h.get("ip") for h in root.iter("host")}
        used |= {lease.get("ipaddr") for lease in (net.DHCPLeases() or [])}
        for ip in domain.static_candidates(self.subnet, instance_id):
            if ip in used:
                continue
            try:
                net.update(libvirt.VIR_NETWORK_UPDATE_COMMAND_ADD_LAST, libvirt.VIR_NETWORK_SECTION_IP_DHCP_HOST, -1,
                           domain.dhcp_host_xml(mac, instance_id, ip),
                           libvirt.VIR_NETWORK_UPDATE_AFFECT_LIVE | libvirt.VIR_NETWORK_UPDATE_AFFECT_CONFIG)
                return ip
            except libvirt.libvirtError as e:
                if any(w in str(e).lower() for w in ("existing", "already", "duplicate")):
                    continue  # taken meanwhile by a concurrent launch
                raise
        raise EngineError(f"no free address left in {self.subnet}")

    def has_lease(self, mac: str) -> bool:
        """Has the guest with this MAC taken its address over DHCP (its network is up)?"""
        try:
            net = self.conn.get().networkLookupByName(self.name)
            return any(lease.get("mac") == mac for lease in (net.DHCPLeases() or []))
        except libvirt.libvirtError:
            return False

    def release_ip(self, mac: str, instance_id: str) -> None:
        """Remove the instance's reservation (found by MAC or by name); best effort."""
        try:
            net = self.conn.get().networkLookupByName(self.name)
            for h in ET.fromstring(net.XMLDesc(0)).iter("host"):
                if h.get("mac") == mac or h.get("name") == instance_id:
                    flags = libvirt.VIR_NETWORK_UPDATE_AFFECT_CONFIG
                    if net.isActive():
                        flags |= libvirt.VIR_NETWORK_UPDATE_AFFECT_LIVE
                    net.update(libvirt.VIR_NETWORK_UPDATE_COMMAND_DELETE, libvirt.VIR_NETWORK_SECTION_IP_DHCP_HOST,
                               -1, ET.tostring(h, encoding="unicode"), flags)
        except libvirt.libvirtError:
            pass
