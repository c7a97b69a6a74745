"""A test cloud's networks on the real kernel, with network namespaces as stand-in instances.

A namespace on a veth is what a container is minus the image, so it exercises exactly the
kernel paths a container or a VM tap does (bridge port, br_netfilter, conntrack, NAT) and
is created in milliseconds. Every object carries the lab's random label so the leak check
at the end finds exactly what this run made.
"""
from __future__ import annotations

import ipaddress
import json
import secrets
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

from emulator.networks import bridges, ipam, lifecycle
from emulator.networks.dhcp import Dhcp
from emulator.networks.firewall import Firewall
from emulator.networks.model import Desired, Forward, Group, Port, Rule, Subnet, Vpc

HERE = Path(__file__).resolve().parent
POOL = "10.64.0.0/10"  # other helpers' tests use 10.213.x.0/24 and 192.168.122.0/24


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(list(argv), capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {proc.stderr.strip()}")
    return proc


def hexid(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(9)[:17]}"


def rand_mac() -> str:
    return "02:" + ":".join(secrets.token_hex(1) for _ in range(5))


class Lab:
    def __init__(self, state_dir: Path, docker_client=None):
        self.label = "t" + secrets.token_hex(4)
        self.fw = Firewall(self.label)
        self.dir = state_dir
        self.docker = docker_client
        self.vpcs: dict[str, Vpc] = {}
        self.subnets: dict[str, Subnet] = {}
        self.groups: dict[str, Group] = {}
        self.ports: dict[str, Port] = {}  # by instance id
        self.forwards: list[Forward] = []
        self.imds_port: int | None = None
        self.namespaces: dict[str, dict] = {}  # name -> {iid, ip, host_if, proc}
        self.extra_links: list[str] = []
        self.extra_ns: list[str] = []
        self.matrix: list[tuple] = []  # (from, to, port, rule, expected, observed)
        self.taken = ipam.host_taken_cidrs(docker_client)
        # Two sessions starting at the same moment would pick the same first free block; a random
        # quarter of the pool makes that unlikely (and Docker refuses an overlap loudly anyway).
        self.pool = secrets.choice([str(n) for n in ipaddress.ip_network(POOL).subnets(new_prefix=12)])

    # ---- topology ---------------------------------------------------------------
    def vpc(self, nat: bool = True) -> Vpc:
        cidr = ipam.allocate_vpc_cidr(self.taken | {v.cidr for v in self.vpcs.values()}, pool=self.pool)
        v = Vpc(hexid("vpc"), cidr, nat)
        self.vpcs[v.id] = v
        return v

    def subnet(self, vpc: Vpc, docker: bool = True) -> Subnet:
        siblings = [s.cidr for s in self.subnets.values() if s.vpc_id == vpc.id]
        s = Subnet(hexid("subnet"), vpc.id, ipam.allocate_subnet_cidr(vpc.cidr, siblings, prefix=24))
        lifecycle.create_subnet(self.label, s, self.docker if docker else None)
        self.subnets[s.id] = s
        return s

    def group(self, vpc: Vpc, ingress=(), egress=(Rule("all", peer_cidr="0.0.0.0/0"),), gid: str | None = None) -> Group:
        g = Group(gid or hexid("sg"), vpc.id, tuple(ingress), tuple(egress))
        self.groups[g.id] = g
        return g

    def set_rules(self, gid: str, ingress=None, egress=None) -> None:
        g = self.groups[gid]
        self.groups[gid] = replace(g, ingress=tuple(g.ingress if ingress is None else ingress),
                                   egress=tuple(g.egress if egress is None else egress))

    def address(self, subnet: Subnet) -> str:
        return ipam.allocate_address(subnet.cidr, [p.ip for p in self.ports.values()])

    def namespace(self, name: str, subnet: Subnet, groups: list[Group], serve=(22, 80, 5432)) -> dict:
        """A stand-in instance: a namespace on the subnet's bridge, pinned, serving TCP ports."""
        n = len(self.namespaces) + len(self.extra_ns)
        ns, host_if = f"pcn-{self.label}-{n}", f"pv{self.label}{n}"
        iid, ip, mac = hexid("i"), self.address(subnet), rand_mac()
        self._veth_ns(ns, host_if, mac, f"{ip}/{subnet.cidr.split('/')[1]}", subnet.gateway)
        sh("ip", "link", "set", host_if, "master", subnet.bridge, "up")
        self.ports[iid] = Port(iid, subnet.id, ip, mac, tuple(g.id for g in groups), host_if)
        info = {"name": name, "ns": ns, "iid": iid, "ip": ip, "mac": mac, "host_if": host_if, "proc": None}
        if serve:
            info["proc"] = self._serve(ns, name, serve)
        self.namespaces[name] = info
        return info

    def _veth_ns(self, ns: str, host_if: str, mac: str, cidr: str | None, gateway: str | None) -> None:
        sh("ip", "netns", "add", ns)
        sh("ip", "link", "add", host_if, "type", "veth", "peer", "name", "eth0", "netns", ns)
        Path(f"/proc/sys/net/ipv6/conf/{host_if}/disable_ipv6").write_text("1")
        sh("ip", "netns", "exec", ns, "sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1")
        sh("ip", "-n", ns, "link", "set", "eth0", "address", mac)
        if cidr:
            sh("ip", "-n", ns, "addr", "add", cidr, "dev", "eth0")
        sh("ip", "-n", ns, "link", "set", "eth0", "up")
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        if gateway:
            sh("ip", "-n", ns, "route", "add", "default", "via", gateway)

    def _serve(self, ns: str, name: str, ports) -> subprocess.Popen:
        proc = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, str(HERE / "nsserver.py"), name,
                                 *map(str, ports)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert proc.stdout.readline().strip() == "ready"
        return proc

    def outside(self) -> dict:
        """A namespace standing for 'the internet': reachable only through the host, with no route
        back to any VPC, so only NAT (masquerade) lets its replies return."""
        n = len(self.namespaces) + len(self.extra_ns)
        ns, host_if = f"pcn-{self.label}-{n}", f"px{self.label}{n}"
        net = ipam.allocate_vpc_cidr(self.taken | {v.cidr for v in self.vpcs.values()}, pool=self.pool, prefix=24)
        self.taken.add(net)
        hosts = list(ipaddress.ip_network(net).hosts())
        self._veth_ns(ns, host_if, rand_mac(), f"{hosts[1]}/24", None)
        sh("ip", "addr", "add", f"{hosts[0]}/24", "dev", host_if)
        sh("ip", "link", "set", host_if, "up")
        self.extra_ns.append(ns)
        self.extra_links.append(host_if)
        proc = self._serve(ns, "outside", (80,))
        return {"ns": ns, "ip": str(hosts[1]), "host_ip": str(hosts[0]), "proc": proc}

    def rogue(self, subnet: Subnet) -> str:
        """An unpinned namespace on the subnet's bridge (a port the cloud knows nothing about),
        using an address near the top of the subnet that no test allocates."""
        n = len(self.namespaces) + len(self.extra_ns)
        ns, host_if = f"pcn-{self.label}-{n}", f"pr{self.label}{n}"
        net = ipaddress.ip_network(subnet.cidr)
        self._veth_ns(ns, host_if, rand_mac(), f"{net[-10]}/{net.prefixlen}", subnet.gateway)
        sh("ip", "link", "set", host_if, "master", subnet.bridge, "up")
        self.extra_ns.append(ns)
        self.extra_links.append(host_if)
        return ns

    # ---- state ------------------------------------------------------------------
    def desired(self) -> Desired:
        return Desired(tuple(self.vpcs.values()), tuple(self.subnets.values()), tuple(self.groups.values()),
                       tuple(self.ports.values()), tuple(self.forwards), self.imds_port)

    def apply(self) -> dict:
        return self.fw.apply(self.desired())

    # ---- traffic ----------------------------------------------------------------
    def probe(self, src: str, *targets: str, timeout: float = 1.0, request: str | None = None,
              udp: bool = False) -> dict[str, str | None]:
        """From namespace `src` (a name given to namespace()), connect to each 'ip:port[@spoofed-src]'."""
        ns = self.namespaces[src]["ns"] if src in self.namespaces else src
        opts = ["--timeout", str(timeout)] + (["--request", request] if request is not None else [])
        opts += ["--udp"] if udp else []
        out = sh("ip", "netns", "exec", ns, sys.executable, str(HERE / "nsclient.py"), *opts, *targets)
        return json.loads(out.stdout)

    def check(self, src: str, cases: list[tuple[str, int, bool, str]], timeout: float = 1.0) -> list[str]:
        """Probes (dst, port) from src for every case at once, records each in the matrix, and
        returns the cases whose outcome differs from the expected one (empty: all as expected)."""
        targets = {f"{self.namespaces[dst]['ip']}:{port}": (dst, port, expect, why) for dst, port, expect, why in cases}
        replies = self.probe(src, *targets, timeout=timeout)
        wrong = []
        for target, (dst, port, expect, why) in targets.items():
            got = replies[target] is not None and replies[target].startswith(dst + " ")
            self.matrix.append((src, dst, port, why, expect, got))
            if got != expect:
                wrong.append(f"{src} -> {dst}:{port} ({why}): expected {'open' if expect else 'closed'}, "
                             f"got {replies[target]!r}")
        return wrong

    def reach(self, src: str, dst: str, port: int, timeout: float = 1.0) -> bool:
        target = f"{self.namespaces[dst]['ip']}:{port}"
        reply = self.probe(src, target, timeout=timeout)[target]
        return reply is not None and reply.startswith(dst + " ")

    def ns_run(self, name: str, *argv: str, check: bool = True) -> subprocess.CompletedProcess:
        ns = self.namespaces[name]["ns"] if name in self.namespaces else name
        return sh("ip", "netns", "exec", ns, *argv, check=check)

    def poller(self, src: str, dst: str, port: int, deadline: float = 5.0) -> subprocess.Popen:
        """Starts a client in `src` retrying dst:port every ~20 ms; `opened_at(poller)` reads when it got in."""
        ns = self.namespaces[src]["ns"]
        proc = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, str(HERE / "nsclient.py"),
                                 "--until-open", str(deadline), f"{self.namespaces[dst]['ip']}:{port}"],
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "polling"
        return proc

    @staticmethod
    def opened_at(proc: subprocess.Popen) -> float | None:
        out, _ = proc.communicate(timeout=30)
        return json.loads(out)["opened_at"]

    def matrix_text(self) -> str:
        lines = ["| from | to | port | rule | expected | observed |", "| --- | --- | --- | --- | --- | --- |"]
        for src, dst, port, why, expect, got in self.matrix:
            lines.append(f"| {src} | {dst} | {port} | {why} | {'open' if expect else 'closed'} | "
                         f"{'open' if got else 'closed'} |")
        return "\n".join(lines) + "\n"

    # ---- teardown ---------------------------------------------------------------
    def close(self) -> list[str]:
        errors = []
        for info in self.namespaces.values():
            if info["proc"]:
                info["proc"].kill()
                info["proc"].wait()
        for ns in [i["ns"] for i in self.namespaces.values()] + self.extra_ns:
            for pid in sh("ip", "netns", "pids", ns, check=False).stdout.split():
                sh("kill", "-9", pid, check=False)
            sh("ip", "netns", "del", ns, check=False)
        for link in [i["host_if"] for i in self.namespaces.values()] + self.extra_links:
            sh("ip", "link", "del", link, check=False)
        try:
            self.fw.remove()
        except Exception as e:  # noqa: BLE001 - report, keep cleaning
            errors.append(f"firewall: {e}")
        for s in self.subnets.values():
            try:
                lifecycle.delete_subnet(self.label, s, self.docker, self.dir)
            except Exception as e:  # noqa: BLE001
                errors.append(f"{s.id}: {e}")
        return errors

    def leaks(self) -> list[str]:
        """Everything carrying this lab's label that is still on the host."""
        found = []
        found += [f"bridge {b['name']}" for b in bridges.list_bridges(self.label)]
        found += [f"netns {n}" for n in sh("ip", "netns", "list").stdout.split() if self.label in n]
        found += [f"link {li}" for li in sh("ip", "-br", "link").stdout.split() if self.label in li]
        if self.fw.exists():
            found.append(f"nft tables pc-{self.label}")
        if sh("iptables", "-w", "-n", "-L", f"PC-{self.label}", check=False).returncode == 0:
            found.append(f"iptables chain PC-{self.label}")
        if self.docker is not None:
            found += [f"docker network {n.name}" for n in
                      self.docker.networks.list(filters={"label": f"pocketcloud.cloud={self.label}"})]
            found += [f"container {c.name}" for c in
                      self.docker.containers.list(all=True, filters={"label": f"pocketcloud.test={self.label}"})]
        from emulator.networks.dhcp import running

        found += [f"dnsmasq {sid} pid {pid}" for sid, pid in running(self.dir).items()]
        return found


def dhcp(lab: Lab, subnet: Subnet) -> Dhcp:
    return Dhcp(lab.label, subnet, lab.dir)
