"""The cloud's VPCs made real: state database -> `networks.Desired` -> bridges, Docker networks, nftables.

Why a part of its own: the networking library (emulator/networks/) keeps no state; the
database is the truth. `desired(store)` reads VPCs, subnets, security groups and instances'
interfaces into one validated picture, and `VpcNetwork.sync` makes the host match it: a
bridge (and the Docker network bound to it) per subnet, this cloud's stale bridges removed,
and both nftables tables rewritten in one atomic step. The same call runs at server start,
after every change to VPCs, subnets or security groups, and in each reconcile pass, so a
crash, a hand edit or a change made by another process is repaired within one pass.

One bad row must not take every tenant's network down: a record the library refuses is
left out of the picture (and logged), the rest is applied.

On unless Config.vpc_networking is 'off' (POCKETCLOUD_VPC_NETWORKING=off): then VPCs are
records only and every instance sits on the engines' shared networks, as before VPCs were real.
"""
from __future__ import annotations

import ipaddress
import json
import logging
import threading
import time
from dataclasses import replace
from typing import Any, Callable

from .config import Config
from .errors import CloudError, InvalidParameter
from .compute.driver import NetAttach
from .instances import Instance
from .networks import bridges, dhcp, host, ipam, lifecycle, rules
from .networks.firewall import Firewall
from .networks.model import Desired, Forward, Group, Port, Rule, Subnet, Vpc, bridge_name
from .state import Store

log = logging.getLogger("pocketcloud")

# States whose instance keeps its address: a stopped one too (its port has no interface then,
# so the address stays reserved and nothing else can take it).
HOLDS_ADDRESS = ("pending", "running", "stopping", "stopped")
ORPHAN_VPC = "vpc-00000000000000000"  # a stale bridge's VPC is no longer known; removal needs only its subnet id


def _rule(protocol: str, from_port: int, to_port: int, cidr: str, group: str | None = None) -> Rule:
    """A stored rule (EC2's shape) as the library's: '-1' is 'all'; EC2 allows port 0, nft's range
    starts at 1. A rule naming a group matches its members' addresses (the library's named set)."""
    peer = {"peer_group": group} if group else {"peer_cidr": cidr}
    if protocol == "-1":
        return Rule("all", **peer)
    if protocol in ("tcp", "udp"):
        return Rule(protocol, max(1, from_port), max(1, to_port), **peer)
    return Rule(protocol, from_port, to_port, **peer)


def _groups(store: Store, default_vpcs: dict[str, str], skipped: list[str]) -> list[Group]:
    rules: dict[tuple[str, bool], list[Rule]] = {}
    for r in store.query("SELECT * FROM security_group_rules ORDER BY created_at, rowid"):
        try:
            rules.setdefault((r["group_id"], bool(r["egress"])), []).append(
                _rule(r["protocol"], r["from_port"], r["to_port"], r["cidr"], r["ref_group"]))
        except InvalidParameter as e:
            skipped.append(f"rule {r['id']}: {e}")
    out = []
    for g in store.query("SELECT id, owner, name, vpc_id FROM security_groups ORDER BY created_at"):
        vpc_id = g["vpc_id"] or default_vpcs.get(g["owner"])  # a group older than VPCs is in the default VPC
        if vpc_id is None:
            continue
        # The default group's "members reach each other" is its stored self rule (revocable, as on AWS).
        try:
            out.append(Group(g["id"], vpc_id, tuple(rules.get((g["id"], False), [])),
                             tuple(rules.get((g["id"], True), []))))
        except InvalidParameter as e:
            skipped.append(f"group {g['id']}: {e}")
    return out


def _peers_in_vpc(groups: list[Group], skipped: list[str]) -> list[Group]:
    """A rule naming a group that is gone or in another VPC is left out (the API refuses both: a
    hand edit may not), not the whole group: its members keep every other rule."""
    vpc_of = {g.id: g.vpc_id for g in groups}
    out = []
    for g in groups:
        def ok(r: Rule) -> bool:
            if r.peer_group is None or vpc_of.get(r.peer_group) == g.vpc_id:
                return True
            skipped.append(f"rule of {g.id}: {r.peer_group} is no group of {g.vpc_id}")
            return False
        out.append(replace(g, ingress=tuple(r for r in g.ingress if ok(r)), egress=tuple(r for r in g.egress if ok(r))))
    return out


def _ports(store: Store, subnets: dict[str, Subnet], groups: dict[str, Group], skipped: list[str],
           forwards: list[Forward]) -> list[Port]:
    """Interfaces of live instances whose address is one of their subnet's (an instance still on
    Docker's or libvirt's own network has none yet), and their host forwards (into `forwards`):
    127.0.0.1:host -> address:guest as kernel DNAT, so they outlive the server."""
    marks = ",".join("?" * len(HOLDS_ADDRESS))
    rows = store.query("SELECT n.instance_id, n.subnet_id, n.mac, i.private_ip, i.state, i.kind, i.details, i.ports "
                       "FROM network_interfaces n JOIN instances i ON i.id = n.instance_id "
                       f"WHERE i.state IN ({marks}) ORDER BY n.created_at, n.rowid", HOLDS_ADDRESS)
    out, used = [], set()
    for r in rows:
        sub = subnets.get(r["subnet_id"])
        ip = r["private_ip"]
        if sub is None or not ip:
            continue
        try:
            if ipaddress.IPv4Address(ip) not in ipaddress.ip_network(sub.cidr) or ip in ipam.reserved(sub.cidr):
                continue
        except ValueError:
            continue
        if ip in used:
            skipped.append(f"port {r['instance_id']}: {ip} is another instance's address")
            continue
        details = json.loads(r["details"] or "{}")
        net = details.get("net") or {}
        vpc_groups = tuple(g for g in details.get("security_groups", []) if groups.get(g) and
                           groups[g].vpc_id == sub.vpc_id)
        # A VM's tap name is fixed, so it is pinned from the launch on (before the guest's first
        # frame); a container's veth is known only once it runs, and changes at every start.
        live = ("pending", "running", "stopping") if r["kind"] == "vm" else ("running",)
        try:
            out.append(Port(r["instance_id"], sub.id, ip, r["mac"], vpc_groups,
                            net.get("ifname") if r["state"] in live else None))
            used.add(ip)
        except InvalidParameter as e:
            skipped.append(f"port {r['instance_id']}: {e}")
            continue
        for f in json.loads(r["ports"] or "[]"):
            try:
                forwards.append(Forward(f["host"], ip, f["guest"], f.get("protocol", "tcp")))
            except (InvalidParameter, KeyError) as e:
                skipped.append(f"forward of {r['instance_id']}: {e}")
    return out


def desired(store: Store, imds_port: int | None = None, api_port: int | None = None) -> tuple[Desired, list[str]]:
    """The whole cloud's network as the database records it, and what was left out (and why)."""
    skipped: list[str] = []
    vpcs, default_vpcs = [], {}
    for v in store.query("SELECT id, owner, cidr, is_default FROM vpcs ORDER BY created_at"):
        try:
            vpcs.append(Vpc(v["id"], v["cidr"]))
        except InvalidParameter as e:
            skipped.append(f"vpc {v['id']}: {e}")
            continue
        if v["is_default"]:
            default_vpcs[v["owner"]] = v["id"]
    known_vpcs = {v.id for v in vpcs}
    subnets = []
    for s in store.query("SELECT id, vpc_id, cidr FROM subnets ORDER BY created_at"):
        if s["vpc_id"] not in known_vpcs:
            continue
        try:
            subnets.append(Subnet(s["id"], s["vpc_id"], s["cidr"]))
        except InvalidParameter as e:
            skipped.append(f"subnet {s['id']}: {e}")
    groups = [g for g in _groups(store, default_vpcs, skipped) if g.vpc_id in known_vpcs]
    groups = _peers_in_vpc(groups, skipped)
    forwards: list[Forward] = []
    ports = _ports(store, {s.id: s for s in subnets}, {g.id: g for g in groups}, skipped, forwards)
    seen: set[tuple] = set()
    for f in list(forwards):  # one host port, one forward (the records allocate them so: a hand edit may not)
        if (f.host_ip, f.host_port, f.protocol) in seen:
            forwards.remove(f)
            skipped.append(f"forward {f.host_ip}:{f.host_port}: the host port is another forward's")
        seen.add((f.host_ip, f.host_port, f.protocol))
    return Desired(tuple(vpcs), tuple(subnets), tuple(groups), tuple(ports), tuple(forwards), imds_port,
                   api_port), skipped


class VpcNetwork:
    """Keeps this cloud's bridges, Docker networks and nftables tables in line with its database."""

    def __init__(self, config: Config, store: Store, docker_client: Callable[[], Any] | None = None):
        self.enabled = config.vpc_networking == "on"
        self.label = config.instance_label
        # The API answers instances on their gateway (a DNAT to 127.0.0.1) when it listens there;
        # a server bound to one other address is not on loopback, so nothing is forwarded.
        self.api_port = config.port if config.host in ("127.0.0.1", "0.0.0.0", "", "localhost") else None
        self.store = store
        self.dhcp_dir = config.home / "net" / "dhcp"
        self.firewall = Firewall(self.label)
        self._docker_client = docker_client
        self._lock = threading.Lock()
        self.last: dict[str, Any] = {}
        self.metadata: Any = None  # the metadata listener (start_metadata), in this process
        self._verified: set[str] = set()  # subnets whose bridge and Docker network this process checked

    def start_metadata(self, lookup: Callable[[str], dict | None]) -> None:
        """Serves 169.254.169.254 for this cloud's instances: a listener on 127.0.0.1 that the rules
        DNAT to from every subnet bridge, keeping the caller's address (how it is told apart)."""
        if not self.enabled or self.metadata is not None:
            return
        from .networks.imds import MetadataApp, MetadataServer

        self.metadata = MetadataServer(MetadataApp(lookup)).start()
        self.changed()

    def _desired(self) -> tuple[Desired, list[str]]:
        return desired(self.store, self.metadata.port if self.metadata else None, self.api_port)

    def _docker(self) -> Any | None:
        return self._docker_client() if self._docker_client else None

    def sync(self) -> dict[str, Any]:
        """Makes the host match the database; returns what it did ({} when networking is off)."""
        if not self.enabled:
            return {}
        with self._lock:
            t0 = time.perf_counter()
            repinned = self._repin()
            want, skipped = self._desired()
            want.check()
            docker = self._docker()
            # A bridge checked once by this process is only looked at again when its link is gone: a pass
            # every few seconds must not cost several `ip` calls per subnet of every account.
            check = [s for s in want.subnets if s.id not in self._verified or not host.link_exists(s.bridge)]
            created, failed = [], {}
            for s in check:
                try:
                    if lifecycle.create_subnet(self.label, s, docker)["created"]:
                        created.append(s.id)
                except CloudError as e:  # one subnet that cannot be made (its block taken by another cloud
                    failed[s.id] = str(e)  # meanwhile) must not keep every other tenant's network from applying
                    log.warning("network: subnet %s not made (the next pass retries): %s", s.id, e)
            self._verified = {s.id for s in want.subnets} - set(failed)
            fw = self.firewall.apply(want)
            dhcp_report = self._dhcp(want)
            removed, kept = self._remove_stale({s.id for s in want.subnets}, docker)
            self.last = {"subnets": len(want.subnets), "groups": len(want.groups), "ports": len(want.ports),
                         "created": created, "failed": failed, "removed": removed, "repinned": repinned, "kept": kept, "skipped": skipped,
                         "firewall": fw, "dhcp": dhcp_report, "seconds": round(time.perf_counter() - t0, 4), "at": time.time()}
            for s in skipped:
                log.warning("network: left out %s", s)
            return self.last

    # ---- instances ----------------------------------------------------------------
    def reserve(self, c: Any, owner: str, instance_id: str, kind: str, subnet: Any) -> NetAttach | None:
        """Inside the launch's write transaction: the instance's address (the lowest free one of its
        subnet, so two launches cannot take one), its interface record and MAC. None when off."""
        if not self.enabled or not subnet:
            return None
        from .vpcs import _mac, new_id

        taken = [r[0] for r in c.execute(
            "SELECT i.private_ip FROM instances i JOIN network_interfaces n ON n.instance_id = i.id "
            "WHERE n.subnet_id=? AND i.state!='terminated' AND i.private_ip IS NOT NULL", (subnet.id,))]
        ip = ipam.allocate_address(subnet.cidr, taken)
        eni = new_id("eni")
        c.execute("INSERT INTO network_interfaces (id, owner, instance_id, subnet_id, mac, attachment_id, created_at)"
                  " VALUES (?,?,?,?,?,?,?)", (eni, owner, instance_id, subnet.id, _mac(eni), new_id("eni-attach"),
                                              time.time()))
        net = {"subnet_id": subnet.id, "ip": ip, "ifname": bridges.tap_name(instance_id) if kind == "vm" else None}
        c.execute("UPDATE instances SET private_ip=?, details=json_set(details, '$.net', json(?)) WHERE id=?",
                  (ip, json.dumps(net), instance_id))
        return NetAttach(subnet.id, bridge_name(subnet.id), bridges.docker_network_name(self.label, subnet.id), ip,
                         _mac(eni), ipam.gateway(subnet.cidr), int(subnet.cidr.split("/")[1]), net["ifname"] or "")

    def follow(self, before: Instance, after: Instance) -> Instance:
        """After the engine changed an instance (launched, started, stopped, rebooted): a running
        container's interface is looked up again - Docker names the host side at random on every
        start - and the rules follow when the interface or the state changed."""
        net = after.details.get("net")
        if not self.enabled or not net:
            return after
        ifname = net.get("ifname")
        if after.kind == "container" and after.state == "running" and after.engine_id:
            ifname = self._container_ifname(after.engine_id, net)
            if ifname != net.get("ifname"):
                self._record_ifname(after.id, ifname)
        if ifname != net.get("ifname") or before.state != after.state:
            self.changed()
        row = self.store.one("SELECT * FROM instances WHERE id=?", (after.id,))
        return Instance.from_row(row) if row else after

    def _container_ifname(self, engine_id: str, net: dict) -> str | None:
        sub = self.store.one("SELECT id, vpc_id, cidr FROM subnets WHERE id=?", (net["subnet_id"],))
        if sub is None:
            return None
        try:
            return bridges.container_port(self._docker(), self.label, engine_id,
                                          Subnet(sub["id"], sub["vpc_id"], sub["cidr"]))["ifname"]
        except CloudError as e:  # not running any more, or not on its network: it stays unpinned
            log.warning("network: no interface of container %s on %s: %s", engine_id[:12], net["subnet_id"], e)
            return None

    def _record_ifname(self, instance_id: str, ifname: str | None) -> None:
        with self.store.tx() as c:
            c.execute("UPDATE instances SET details=json_set(details, '$.net.ifname', ?) WHERE id=?",
                      (ifname, instance_id))

    def _repin(self) -> list[str]:
        """Running containers whose recorded interface is gone (dockerd restarted them, or they were
        restarted behind the server's back): looked up again. Returns the instances re-pinned."""
        done = []
        for r in self.store.query("SELECT id, engine_id, details FROM instances WHERE kind='container' AND "
                                  "state='running' AND json_extract(details, '$.net.subnet_id') IS NOT NULL"):
            net = json.loads(r["details"])["net"]
            name = net.get("ifname")
            if name and host.link_exists(name) and bridges.ports(bridge_name(net["subnet_id"])).count(name):
                continue
            found = self._container_ifname(r["engine_id"], net) if r["engine_id"] else None
            if found != name:
                self._record_ifname(r["id"], found)
                done.append(r["id"])
        return done

    def path(self, inst: Instance) -> dict[str, Any] | None:
        """The instance's way through the host for internals and `explain`: its interface, the
        subnet's bridge, its chains with the live counters of its groups' rules, NAT and forwards."""
        net = inst.details.get("net")
        if not self.enabled or not net:
            return None
        want, _ = self._desired()
        port = next((p for p in want.ports if p.instance_id == inst.id), None)
        if port is None:
            return None
        counters = self.firewall.counters()
        groups = {g.id: g for g in want.groups}
        vpc = want.vpc_of(port)
        none = {"packets": 0, "bytes": 0}
        return {
            "interface": port.ifname, "interface_kind": "tap" if inst.kind == "vm" else "veth",
            "bridge": bridge_name(port.subnet_id), "subnet": port.subnet_id, "vpc": vpc.id, "ip": port.ip,
            "mac": port.mac, "pinned": port.ifname is not None, "table": self.firewall.table,
            "chains": [f"out-{inst.id}", f"in-{inst.id}"],
            "groups": [{"id": g, "rules": self.firewall.group_counters(groups[g], counters)} for g in port.groups],
            "dropped": {"ingress": counters.get(f"drop-in-{inst.id}", none),
                        "egress": counters.get(f"drop-out-{inst.id}", none)},
            "nat": "outbound through the host (masquerade)" if vpc.nat else "off: nothing leaves the VPC",
            "forwards": [{"host": f"{f.host_ip}:{f.host_port}", "guest": f.port, "protocol": f.protocol,
                          **counters.get(rules.forward_counter(f), none)} for f in want.forwards if f.ip == port.ip],
        }

    def changed(self) -> None:
        """A VPC, subnet or security group changed: the kernel follows now. A failure is logged,
        not raised (the record is committed); the next reconcile pass applies it again."""
        try:
            self.sync()
        except CloudError:
            log.exception("applying the network state failed; the reconcile pass will retry")

    def _dhcp(self, want: Desired) -> dict[str, str]:
        """One dnsmasq per subnet that has VMs, serving exactly their reservations; none elsewhere."""
        vms = {r["id"] for r in self.store.query("SELECT id FROM instances WHERE kind='vm' AND state!='terminated'")}
        by_subnet: dict[str, list[dhcp.Reservation]] = {}
        for p in want.ports:
            if p.instance_id in vms:
                by_subnet.setdefault(p.subnet_id, []).append(dhcp.Reservation(p.mac, p.ip, dhcp.hostname_for(p.ip)))
        out = {}
        for s in want.subnets:
            server = dhcp.Dhcp(self.label, s, self.dhcp_dir)
            if s.id in by_subnet:
                out[s.id] = server.ensure(by_subnet[s.id])["action"]
            elif server.pid() is not None:
                server.stop()
                out[s.id] = "stopped"
        return out

    def _remove_stale(self, wanted: set[str], docker: Any | None) -> tuple[list[str], list[str]]:
        """This cloud's bridges whose subnet is gone: removed, unless something is still attached."""
        removed, kept = [], []
        for b in bridges.list_bridges(self.label):
            if b["subnet"] in wanted:
                continue
            try:
                lifecycle.delete_subnet(self.label, self._orphan(b), docker, self.dhcp_dir)
                removed.append(b["subnet"])
            except CloudError as e:
                log.warning("network: stale bridge %s kept: %s", b["name"], e)
                kept.append(b["subnet"])
        return removed, kept

    @staticmethod
    def _orphan(b: dict[str, str]) -> Subnet:
        """A Subnet value for a bridge whose record is gone: its CIDR is read back from the bridge."""
        addrs = [a for li in host.ip_json("-4", "addr", "show", "dev", b["name"]) for a in li.get("addr_info", [])]
        cidr = str(ipaddress.ip_interface(f"{addrs[0]['local']}/{addrs[0]['prefixlen']}").network) if addrs \
            else "10.255.255.0/28"
        return Subnet(b["subnet"], ORPHAN_VPC, cidr)

    def teardown(self) -> list[str]:
        """Removes everything of this cloud's networks from the host (the cloud is being deleted,
        or a test ends); returns what could not be removed."""
        problems = []
        docker = self._docker()
        with self._lock:
            self._verified = set()
            try:
                self.firewall.remove()
            except CloudError as e:
                problems.append(f"nft tables: {e}")
            for b in bridges.list_bridges(self.label):
                try:
                    lifecycle.delete_subnet(self.label, self._orphan(b), docker, self.dhcp_dir)
                except CloudError as e:
                    problems.append(f"bridge {b['name']}: {e}")
        return problems

    def leftovers(self) -> list[str]:
        """What of this cloud's networks is on the host (empty after teardown)."""
        found = [f"bridge {b['name']}" for b in bridges.list_bridges(self.label)]
        if self.firewall.exists():
            found.append(f"nft tables {self.firewall.table}")
        docker = self._docker()
        if docker is not None:
            try:
                found += [f"docker network {n.name}" for n in
                          docker.networks.list(filters={"label": f"pocketcloud.cloud={self.label}"})]
            except Exception as e:  # noqa: BLE001 - any docker failure: say so, never raise from a check
                found.append(f"docker networks unknown ({e.__class__.__name__})")
        found += [f"dnsmasq {name} (pid {pid})" for name, pid in dhcp.running(self.dhcp_dir).items()]
        return found
