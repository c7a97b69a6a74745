"""The nftables ruleset for one cloud, computed from its desired state (pure: no kernel calls).

Two tables per cloud, both named `pc-<label>` so several clouds (and several test clouds)
coexist on one host, each owning only its own tables:

* `bridge pc-<label>` pins every instance port (VM tap or container veth) to its MAC and
  address. Without it the firewall below could be fooled: it trusts source addresses, and
  so does the metadata service. This kernel has no bridge conntrack and no `meta ibrname`,
  so the pinning is stateless and works two ways: a pinned port may only send its own
  MAC/IP (plus DHCP and ARP probes from 0.0.0.0), and an instance's address is only
  accepted from its own port, whichever bridge a forger sits on.

* `inet pc-<label>`: with br_netfilter, frames crossing a bridge also pass the IPv4 hooks,
  so one `forward` chain sees both bridged (same subnet) and routed (other subnet, NAT)
  traffic. A new connection from an instance runs its egress chain (one jump per security
  group; a match `goto`s the VPC's dispatch chain), then the destination's ingress chain
  (one jump per group; a match accepts), so AWS's rule "egress of the sender AND ingress of
  the receiver" holds. The dispatch map holds only the VPC's own instances, which is what
  isolates tenants: another VPC's address falls through to a drop. `ct state established`
  first makes groups stateful. Group-to-group rules match named sets of member addresses.
  `input` keeps instances away from host services (only DHCP, ping, the metadata DNAT and the
  cloud's own endpoint: its API/S3 port DNATed from each subnet's gateway, as a VPC's S3
  gateway endpoint lets instances reach S3 without leaving AWS);
  `guard` drops packets to 127.0.0.0/8 that do not come from `lo`, which `route_localnet`
  (needed for the DNAT forwards from 127.0.0.1) would otherwise let through.

Accepting here does not override a drop in another table: Docker's isolation chains are
overridden in DOCKER-USER (dockeruser.py). Every accept/drop the tests and the internals
care about goes through a named counter, which survives rule rewrites.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from .model import Desired, Forward, Group, Port, Rule

IMDS_ADDR = "169.254.169.254"

ACCEPT: dict = {"accept": None}
DROP: dict = {"drop": None}
RETURN: dict = {"return": None}


def meta(key: str) -> dict:
    return {"meta": {"key": key}}


def pay(proto: str, fld: str) -> dict:
    return {"payload": {"protocol": proto, "field": fld}}


def match(left: Any, right: Any, op: str = "==") -> dict:
    return {"match": {"op": op, "left": left, "right": right}}


def addr(cidr: str) -> Any:
    net = ipaddress.ip_network(cidr, strict=False)
    if net.prefixlen == 32:
        return str(net.network_address)
    return {"prefix": {"addr": str(net.network_address), "len": net.prefixlen}}


def jump(chain: str) -> dict:
    return {"jump": {"target": chain}}


def goto(chain: str) -> dict:
    return {"goto": {"target": chain}}


def count(name: str) -> dict:
    return {"counter": name}


def ct_in(key: str, values: Any) -> dict:
    return match({"ct": {"key": key}}, values, "in")


def l4(rule: Rule) -> list[dict]:
    """The protocol/port part of a group rule."""
    if rule.protocol == "all":
        return []
    if rule.protocol in ("tcp", "udp"):
        ports = rule.from_port if rule.from_port == rule.to_port else {"range": [rule.from_port, rule.to_port]}
        return [match(meta("l4proto"), rule.protocol), match(pay(rule.protocol, "dport"), ports)]
    out = [match(meta("l4proto"), "icmp")]
    if rule.from_port != -1:
        out.append(match(pay("icmp", "type"), rule.from_port))
        if rule.to_port != -1:
            out.append(match(pay("icmp", "code"), rule.to_port))
    return out


@dataclass
class Table:
    """The objects of one nftables table, ready to become JSON commands."""

    family: str
    name: str
    chains: dict[str, dict | None] = field(default_factory=dict)  # name -> base chain spec or None
    sets: dict[str, dict] = field(default_factory=dict)  # name -> {"kind": set|map, "type", "flags", "map"}
    elements: dict[str, list] = field(default_factory=dict)
    counters: list[str] = field(default_factory=list)
    rules: list[tuple[str, list[dict], str]] = field(default_factory=list)  # (chain, expr, comment)

    def chain(self, name: str, base: dict | None = None) -> str:
        self.chains.setdefault(name, base)
        return name

    def counter(self, name: str) -> dict:
        if name not in self.counters:
            self.counters.append(name)
        return count(name)

    def add_set(self, name: str, typ: Any, elems: list, *, flags: list[str] | None = None, verdict_map: bool = False) -> str:
        spec: dict = {"kind": "map" if verdict_map else "set", "type": typ}
        if flags:
            spec["flags"] = flags
        if verdict_map:
            spec["map"] = "verdict"
        self.sets[name] = spec
        self.elements[name] = elems
        return "@" + name

    def rule(self, chain: str, *expr: dict, comment: str = "") -> None:
        self.rules.append((chain, list(expr), comment[:127]))


def base(kind: str, hook: str, prio: int) -> dict:
    return {"type": kind, "hook": hook, "prio": prio, "policy": "accept"}


def table_name(label: str) -> str:
    return f"pc-{label}"


def build(label: str, d: Desired) -> tuple[Table, Table]:
    """(inet table, bridge table) for the desired state (which `check()` has validated)."""
    return _inet(table_name(label), d), _bridge(table_name(label), d)


def _bridge(name: str, d: Desired) -> Table:
    t = Table("bridge", name)
    pinned = [p for p in d.ports if p.ifname]
    pins = t.add_set("pins", ["ifname", "ether_addr", "ipv4_addr"],
                     [{"concat": [p.ifname, p.mac, p.ip]} for p in pinned])
    macpins = t.add_set("macpins", ["ifname", "ether_addr"], [{"concat": [p.ifname, p.mac]} for p in pinned])
    ports = t.add_set("ports", "ifname", [p.ifname for p in pinned])
    addrs = t.add_set("addrs", "ipv4_addr", [p.ip for p in d.ports])
    c = t.chain("guard", base("filter", "prerouting", -200))
    ifmac = {"concat": [meta("iifname"), pay("ether", "saddr")]}
    t.rule(c, match({"concat": [meta("iifname"), pay("ether", "saddr"), pay("ip", "saddr")]}, pins), ACCEPT,
           comment="a port sends its own MAC and address")
    t.rule(c, match({"concat": [meta("iifname"), pay("ether", "saddr"), pay("arp", "saddr ip")]}, pins),
           match({"concat": [meta("iifname"), pay("arp", "saddr ether")]}, macpins), ACCEPT,
           comment="ARP for its own address")
    t.rule(c, match(ifmac, macpins), match(pay("ip", "saddr"), "0.0.0.0"), match(pay("udp", "sport"), 68),
           match(pay("udp", "dport"), 67), ACCEPT, comment="DHCP before the port has an address")
    t.rule(c, match(ifmac, macpins), match(pay("arp", "saddr ip"), "0.0.0.0"), ACCEPT, comment="ARP probes")
    spoof = t.counter("spoofed")
    t.rule(c, match(meta("iifname"), ports), spoof, DROP, comment="anything else from a pinned port")
    t.rule(c, match(pay("ip", "saddr"), addrs), spoof, DROP, comment="an instance's address from another port")
    t.rule(c, match(pay("arp", "saddr ip"), addrs), spoof, DROP, comment="ARP for an instance's address elsewhere")
    return t


def _inet(name: str, d: Desired) -> Table:
    t = Table("inet", name)
    groups = {g.id: g for g in d.groups}
    vpc_of_subnet = {s.id: s.vpc_id for s in d.subnets}
    bridges = t.add_set("bridges", "ifname", sorted(s.bridge for s in d.subnets))
    vpc_cidrs = t.add_set("vpc_cidrs", "ipv4_addr", [addr(v.cidr) for v in d.vpcs], flags=["interval"])
    for g in d.groups:
        t.add_set(f"members-{g.id}", "ipv4_addr", sorted({p.ip for p in d.ports if g.id in p.groups}))

    c = t.chain("guard", base("filter", "prerouting", -300))
    t.rule(c, match(meta("iifname"), "lo", "!="), match(pay("ip", "daddr"), addr("127.0.0.0/8")),
           t.counter("guard-loopback"), DROP, comment="only lo may reach 127.0.0.0/8 (route_localnet is on)")

    # Instances: egress then the destination's ingress, per VPC.
    egress = []
    for p in d.ports:
        egress.append([p.ip, jump(_port_chains(t, p, groups, vpc_of_subnet[p.subnet_id]))])
    egress_map = t.add_set("egress", "ipv4_addr", egress, verdict_map=True)
    for v in d.vpcs:
        members = [[p.ip, jump(f"in-{p.instance_id}")] for p in d.ports if vpc_of_subnet[p.subnet_id] == v.id]
        inmap = t.add_set(f"inmap-{v.id}", "ipv4_addr", members, verdict_map=True)
        vc = t.chain(v.id)  # reached by a `goto` once the sender's egress rules allowed the packet
        t.rule(vc, {"vmap": {"key": pay("ip", "daddr"), "data": inmap}}, comment=f"to an instance of {v.id}")
        iso = t.counter("drop-isolation")
        t.rule(vc, match(pay("ip", "daddr"), vpc_cidrs), iso, DROP, comment="another VPC, or no instance")
        t.rule(vc, match(meta("oifname"), "pcb-*"), iso, DROP, comment="another cloud's subnet")
        if v.nat:
            t.rule(vc, t.counter(f"outbound-{v.id}"), ACCEPT, comment="outbound through the host (NAT on)")
        else:
            t.rule(vc, t.counter(f"drop-outbound-{v.id}"), DROP, comment="NAT off: nothing leaves the VPC")

    f = t.chain("forward", base("filter", "forward", 0))
    ours_in, ours_out = match(meta("iifname"), bridges), match(meta("oifname"), bridges)
    t.rule(f, match(meta("iifname"), bridges, "!="), match(meta("oifname"), bridges, "!="), RETURN,
           comment="not this cloud's traffic")
    t.rule(f, ct_in("state", ["established", "related"]), ACCEPT, comment="stateful groups")
    t.rule(f, ct_in("state", "invalid"), DROP)
    t.rule(f, ours_in, match(pay("ip", "daddr"), addr("169.254.0.0/16")), DROP, comment="link-local is never routed")
    t.rule(f, ours_in, match(meta("pkttype"), {"set": ["broadcast", "multicast"]}), DROP,
           comment="no broadcast or multicast between instances (as in a VPC)")
    t.rule(f, ours_in, {"vmap": {"key": pay("ip", "saddr"), "data": egress_map}}, comment="sender's egress rules")
    t.rule(f, ours_in, t.counter("drop-unknown-source"), DROP, comment="not an instance address")
    for v in d.vpcs:
        t.rule(f, ct_in("status", "dnat"), ours_out, match(pay("ip", "daddr"), addr(v.cidr)),
               {"vmap": {"key": pay("ip", "daddr"), "data": f"@inmap-{v.id}"}}, comment="exposed forward: ingress rules")
    t.rule(f, ours_out, t.counter("drop-inbound"), DROP, comment="nothing from outside starts a connection in")

    i = t.chain("input", base("filter", "input", 0))
    t.rule(i, match(meta("iifname"), bridges, "!="), RETURN)
    t.rule(i, ct_in("state", ["established", "related"]), ACCEPT)
    t.rule(i, match(meta("l4proto"), "udp"), match(pay("udp", "dport"), 67), ACCEPT, comment="DHCP")
    if d.imds_port:
        t.rule(i, ct_in("status", "dnat"), match(pay("ip", "daddr"), "127.0.0.1"),
               match(pay("tcp", "dport"), d.imds_port), ACCEPT, comment="instance metadata")
    if d.api_port:
        t.rule(i, ct_in("status", "dnat"), match(pay("ip", "daddr"), "127.0.0.1"),
               match(pay("tcp", "dport"), d.api_port), ACCEPT, comment="the cloud's endpoint on the gateway")
    t.rule(i, match(pay("icmp", "type"), "echo-request"), ACCEPT, comment="ping the gateway")
    t.rule(i, t.counter("drop-to-host"), DROP, comment="instances reach no host service")

    _nat(t, d, bridges)
    return t


def _port_chains(t: Table, p: Port, groups: dict[str, Group], vpc_id: str) -> str:
    out, inn = t.chain(f"out-{p.instance_id}"), t.chain(f"in-{p.instance_id}")
    for gid in p.groups:
        t.rule(out, jump(_group_chain(t, groups[gid], "out", vpc_id)))
        t.rule(inn, jump(_group_chain(t, groups[gid], "in", vpc_id)))
    t.rule(out, t.counter(f"drop-out-{p.instance_id}"), DROP, comment="no egress rule of its groups matched")
    t.rule(inn, t.counter(f"drop-in-{p.instance_id}"), DROP, comment="no ingress rule of its groups matched")
    return out


def _group_chain(t: Table, g: Group, direction: str, vpc_id: str) -> str:
    name = f"{g.id}-{direction}"
    if name in t.chains:
        return name
    t.chain(name)
    peer_field = "saddr" if direction == "in" else "daddr"
    for r in g.ingress if direction == "in" else g.egress:
        peer = addr(r.peer_cidr) if r.peer_cidr else f"@members-{r.peer_group}"
        verdict = ACCEPT if direction == "in" else goto(vpc_id)
        peer_match = [] if r.peer_cidr == "0.0.0.0/0" else [match(pay("ip", peer_field), peer)]
        t.rule(name, *l4(r), *peer_match, t.counter(counter_name(g.id, direction, r)), verdict,
               comment=f"{g.id} {'ingress' if direction == 'in' else 'egress'} {r.summary()}")
    return name


def counter_name(group_id: str, direction: str, rule: Rule) -> str:
    """The named counter of one group rule ('in' or 'out'); internals read it by this name."""
    return f"{group_id}-{direction}-{rule.key}"


def forward_counter(f: Forward) -> str:
    return f"fwd-{f.protocol}-{f.host_ip.replace('.', '-')}-{f.host_port}"


def _nat(t: Table, d: Desired, bridges: str) -> None:
    pre = t.chain("nat-pre", base("nat", "prerouting", -100))
    out = t.chain("nat-out", base("nat", "output", -100))
    post = t.chain("nat-post", base("nat", "postrouting", 100))
    if d.imds_port:
        t.rule(pre, match(meta("iifname"), bridges), match(pay("ip", "daddr"), IMDS_ADDR),
               match(meta("l4proto"), "tcp"), match(pay("tcp", "dport"), 80), t.counter("imds"),
               {"dnat": {"family": "ip", "addr": "127.0.0.1", "port": d.imds_port}},
               comment="169.254.169.254 -> the metadata listener (caller keeps its address)")
    if d.api_port:
        endpoint = t.counter("endpoint")
        for s in d.subnets:  # its own gateway only: another subnet's gateway is just a host address
            t.rule(pre, match(meta("iifname"), s.bridge), match(pay("ip", "daddr"), s.gateway),
                   match(meta("l4proto"), "tcp"), match(pay("tcp", "dport"), d.api_port), endpoint,
                   {"dnat": {"family": "ip", "addr": "127.0.0.1", "port": d.api_port}},
                   comment=f"{s.gateway}:{d.api_port} -> the cloud's API and S3 on 127.0.0.1")
    for fw in d.forwards:
        expr = [match(pay("ip", "daddr"), fw.host_ip), match(meta("l4proto"), fw.protocol),
                match(pay(fw.protocol, "dport"), fw.host_port), t.counter(forward_counter(fw)),
                {"dnat": {"family": "ip", "addr": fw.ip, "port": fw.port}}]
        note = f"{fw.host_ip}:{fw.host_port} -> {fw.ip}:{fw.port}/{fw.protocol}"
        t.rule(out, *expr, comment=note)
        if not ipaddress.ip_address(fw.host_ip).is_loopback:
            # Only a non-loopback listen address receives packets from other machines.
            t.rule(pre, match(meta("iifname"), bridges, "!="), *expr, comment=note)
    t.rule(post, match(meta("oifname"), bridges), match(pay("ip", "saddr"), addr("127.0.0.0/8")),
           {"masquerade": None}, comment="forwards from 127.0.0.1: replies come back to the gateway")
    for v in d.vpcs:
        if v.nat:
            t.rule(post, match(pay("ip", "saddr"), addr(v.cidr)), match(meta("oifname"), bridges, "!="),
                   {"masquerade": None}, comment=f"{v.id} outbound NAT")
