"""What instances may do to and through the host: forwards, the 127/8 guard, NAT, spoofing,
the metadata service and DHCP - on the real kernel, namespaces as instances."""
from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
from dataclasses import replace

import pytest

from emulator.networks.dhcp import Reservation, hostname_for
from emulator.networks.imds import MetadataApp, MetadataServer
from emulator.networks.model import Forward, Port

from .lab import dhcp, hexid, rand_mac, sh

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_forward_from_loopback_is_a_kernel_rule(restore):
    lab = restore
    web = lab.namespaces["a_web"]
    hp = free_port()
    lab.forwards.append(Forward(hp, web["ip"], 80))
    lab.apply()
    # Nothing listens on the host port: the kernel DNATs the connection, no process is involved.
    assert sh("ss", "-Hltn", f"sport = :{hp}").stdout.strip() == ""
    with socket.create_connection(("127.0.0.1", hp), timeout=3) as s:
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        reply = s.makefile().read()
    assert reply.split() == ["a_web", lab.names["a"].gateway], reply  # masqueraded to the gateway
    assert lab.fw.counters()[f"fwd-tcp-127-0-0-1-{hp}"]["packets"] >= 1
    lab.matrix.append(("host 127.0.0.1", "a_web", f"{hp}->80", "forward (kernel DNAT, no listener)", True, True))


def test_instances_cannot_reach_host_loopback_services(restore):
    """route_localnet (needed by the forwards) lets a crafted packet to 127.0.0.1 in from a bridge;
    the guard drops it (and the input chain would too). Shown both ways: with those two rules
    deleted by hand the datagram arrives, after reconcile it does not."""
    lab = restore
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    sink.settimeout(1.0)
    port = sink.getsockname()[1]
    gw = lab.names["a"].gateway
    # The attacker routes 127.0.0.0/8 to its gateway instead of its own lo.
    lab.ns_run("a_client", "sysctl", "-q", "-w", "net.ipv4.conf.all.route_localnet=1",
               "net.ipv4.conf.eth0.route_localnet=1")
    lab.ns_run("a_client", "ip", "route", "del", "local", "127.0.0.1", "dev", "lo", "table", "local")
    lab.ns_run("a_client", "ip", "route", "del", "local", "127.0.0.0/8", "dev", "lo", "table", "local")
    lab.ns_run("a_client", "ip", "route", "add", "127.0.0.0/8", "via", gw, "dev", "eth0")
    try:
        for chain, rule in (("guard", _rules(lab, "guard")[0]), ("input", _rules(lab, "input")[-1])):
            sh("nft", "delete", "rule", "inet", f"pc-{lab.label}", chain, "handle", str(rule["rule"]["handle"]))
        lab.probe("a_client", f"127.0.0.1:{port}", udp=True, request="without guard")
        assert sink.recvfrom(100)[0] == b"without guard"  # the threat is real

        lab.apply()  # reconcile puts the guard back
        before = lab.fw.counters()["guard-loopback"]["packets"]
        lab.probe("a_client", f"127.0.0.1:{port}", udp=True, request="with guard")
        try:
            got = sink.recvfrom(100)[0]
        except TimeoutError:
            got = None
        assert got is None
        assert lab.fw.counters()["guard-loopback"]["packets"] > before
        reply = lab.probe("a_client", f"127.0.0.1:{port}")  # and TCP gets nowhere either
        assert list(reply.values()) == [None]
        lab.matrix.append(("a_client", "host 127.0.0.1 (UDP service)", port, "127/8 guard", False, False))
    finally:
        sink.close()
        lab.ns_run("a_client", "ip", "route", "del", "127.0.0.0/8", check=False)
        lab.ns_run("a_client", "ip", "route", "add", "local", "127.0.0.0/8", "dev", "lo", "table", "local",
                   check=False)


def _rules(lab, chain: str) -> list[dict]:
    out = json.loads(sh("nft", "-j", "-a", "list", "chain", "inet", f"pc-{lab.label}", chain).stdout)
    return [o for o in out["nftables"] if "rule" in o]


def test_instances_reach_no_host_service(lab):
    """An instance reaches the gateway for DHCP, ping and metadata only, not a host service bound
    to all addresses."""
    srv = socket.socket()
    srv.bind(("0.0.0.0", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    try:
        gw = lab.names["a"].gateway
        assert list(lab.probe("a_web", f"{gw}:{port}").values()) == [None]
        assert lab.ns_run("a_web", "busybox", "ping", "-c1", "-W1", gw, check=False).returncode == 0
        lab.matrix.append(("a_web", "host service on 0.0.0.0 via gateway", port, "input chain", False, False))
    finally:
        srv.close()


def test_outbound_nat_and_its_off_switch(restore, outside):
    lab = restore
    target = f"{outside['ip']}:80"
    reply = lab.probe("a_web", target)[target]
    assert reply is not None and reply.split() == ["outside", outside["host_ip"]], reply  # masqueraded
    v1 = lab.names["v1"]
    lab.vpcs[v1.id] = replace(v1, nat=False)
    lab.apply()
    assert lab.probe("a_web", target)[target] is None
    assert lab.fw.counters()[f"drop-outbound-{v1.id}"]["packets"] >= 1
    # Nothing outside starts a connection in, NAT or not.
    sh("ip", "-n", outside["ns"], "route", "add", v1.cidr, "via", outside["host_ip"])
    web = f"{lab.namespaces['a_web']['ip']}:80"
    assert lab.probe(outside["ns"], web)[web] is None
    lab.matrix += [("a_web", "outside", 80, "NAT on", True, True), ("a_web", "outside", 80, "NAT off", False, False),
                   ("outside", "a_web", 80, "inbound from outside (web allows 0.0.0.0/0)", False, False)]


def test_spoofed_sources_get_nowhere(lab):
    n = lab.namespaces
    web_ip, target = n["a_web"]["ip"], f"{n['b_web']['ip']}:80"
    spoofed = lab.fw.counters()["bridge:spoofed"]["packets"]
    # 1. a pinned port sending another instance's address
    assert lab.probe("a_client", f"{target}@{web_ip}")[f"{target}@{web_ip}"] is None
    # 2. the same with the victim's MAC too
    lab.ns_run("a_client", "ip", "link", "set", "eth0", "address", n["a_web"]["mac"])
    try:
        assert lab.probe("a_client", f"{target}@{web_ip}")[f"{target}@{web_ip}"] is None
    finally:
        lab.ns_run("a_client", "ip", "link", "set", "eth0", "address", n["a_client"]["mac"])
    assert lab.fw.counters()["bridge:spoofed"]["packets"] > spoofed
    lab.matrix.append(("a_client as a_web's address", "b_web", 80, "bridge pinning", False, False))


def test_rogue_port_cannot_use_an_instance_address(rogue, lab):
    n = lab.namespaces
    target = f"{n['b_web']['ip']}:80"
    # with an instance's address: dropped at the bridge
    assert lab.probe(rogue, f"{target}@{n['a_web']['ip']}")[f"{target}@{n['a_web']['ip']}"] is None
    # with a free address of the subnet: not an instance, dropped by the forward chain
    unknown = lab.fw.counters()["drop-unknown-source"]["packets"]
    assert lab.probe(rogue, target)[target] is None
    assert lab.fw.counters()["drop-unknown-source"]["packets"] > unknown
    lab.matrix.append(("unpinned port", "b_web", 80, "not an instance", False, False))


def _imds(lab, src: str, path: str, *, token: str | None = None, put_ttl: int | None = None,
          spoof: str | None = None) -> str | None:
    headers = f"X-aws-ec2-metadata-token: {token}\\r\\n" if token else ""
    method = "GET"
    if put_ttl is not None:
        method, headers = "PUT", f"X-aws-ec2-metadata-token-ttl-seconds: {put_ttl}\\r\\n"
    target = "169.254.169.254:80" + (f"@{spoof}" if spoof else "")
    return lab.probe(src, target, request=f"{method} {path} HTTP/1.0\\r\\n{headers}\\r\\n")[target]


def _body(reply: str | None) -> tuple[int, str]:
    assert reply is not None
    head, _, body = reply.partition("\r\n\r\n")
    return int(head.split()[1]), body


def test_metadata_service_knows_who_asks(restore, rogue):
    lab = restore
    policy = {}

    def lookup(ip: str):
        port = next((p for p in lab.ports.values() if p.ip == ip), None)
        if port is None:
            return None
        return {"instance_id": port.instance_id, "local_ipv4": ip, "mac": port.mac, "subnet_id": port.subnet_id,
                "http_tokens": policy.get(port.instance_id, "optional"), "user_data": "#!/bin/sh\necho hi\n"}

    server = MetadataServer(MetadataApp(lookup)).start()
    try:
        lab.imds_port = server.port
        lab.apply()
        me = lab.namespaces["a_client"]
        status, token = _body(_imds(lab, "a_client", "/latest/api/token", put_ttl=60))
        assert status == 200 and token
        assert _body(_imds(lab, "a_client", "/latest/meta-data/instance-id", token=token)) == (200, me["iid"])
        assert _body(_imds(lab, "a_client", "/latest/meta-data/local-ipv4")) == (200, me["ip"])  # IMDSv1
        assert _body(_imds(lab, "a_client", "/latest/user-data"))[1].startswith("#!/bin/sh")
        # a token is bound to the instance that asked for it
        assert _body(_imds(lab, "a_web", "/latest/meta-data/instance-id", token=token))[0] == 401
        policy[me["iid"]] = "required"
        assert _body(_imds(lab, "a_client", "/latest/meta-data/instance-id"))[0] == 401
        assert _body(_imds(lab, "a_client", "/latest/meta-data/instance-id", token=token)) == (200, me["iid"])
        # forged source: no answer at all, neither from a pinned port nor from a rogue one
        web_ip = lab.namespaces["a_web"]["ip"]
        assert _imds(lab, "a_client", "/latest/meta-data/instance-id", spoof=web_ip) is None
        assert _imds(lab, rogue, "/latest/meta-data/instance-id", spoof=web_ip) is None
        assert lab.fw.counters()["imds"]["packets"] >= 5
        lab.matrix += [("a_client", "169.254.169.254", 80, "IMDSv2 token then GET", True, True),
                       ("a_client as a_web's address", "169.254.169.254", 80, "pinning", False, False)]
    finally:
        server.stop()


def test_dhcp_gives_reserved_addresses_only_and_survives_its_own_death(restore):
    lab = restore
    sub = lab.names["a"]
    server = dhcp(lab, sub)
    mac, ip = rand_mac(), lab.address(sub)
    vm = hexid("i")
    ns, host_if = f"pcn-{lab.label}-dhcp", f"pd{lab.label}"
    lab._veth_ns(ns, host_if, mac, None, None)
    lab.extra_ns.append(ns)
    lab.extra_links.append(host_if)
    sh("ip", "link", "set", host_if, "master", sub.bridge, "up")
    lab.ports[vm] = Port(vm, sub.id, ip, mac, (lab.names["client"].id,), host_if)  # pinned like a VM tap
    lab.apply()
    try:
        first = server.ensure([Reservation(mac, ip, hostname_for(ip))])
        assert first["action"] == "started"
        lease = sh("ip", "netns", "exec", ns, "busybox", "udhcpc", "-i", "eth0", "-n", "-q", "-f", "-s", "/bin/true",
                   "-t", "3", "-T", "1", check=False)
        assert f"lease of {ip} obtained" in lease.stdout + lease.stderr, lease.stderr
        assert server.ensure([Reservation(mac, ip, hostname_for(ip))]) == {"pid": first["pid"], "action": "adopted"}
        os.kill(first["pid"], signal.SIGKILL)
        deadline = time.monotonic() + 5
        while server.pid() is not None and time.monotonic() < deadline:  # the kill lands asynchronously
            time.sleep(0.01)
        again = server.ensure([Reservation(mac, ip, hostname_for(ip))])
        assert again["action"] == "started" and again["pid"] != first["pid"]
        other_mac = rand_mac()
        changed = server.ensure([Reservation(mac, ip, hostname_for(ip)),
                                 Reservation(other_mac, lab.address(sub), "other")])
        assert changed["action"] == "restarted"
        # an unreserved MAC gets nothing
        sh("ip", "-n", ns, "link", "set", "eth0", "address", rand_mac())
        none = sh("ip", "netns", "exec", ns, "busybox", "udhcpc", "-i", "eth0", "-n", "-q", "-f", "-s", "/bin/true",
                  "-t", "2", "-T", "1", check=False)
        assert "obtained" not in none.stdout + none.stderr
        assert any("DHCPACK" in line for line in server.leases_log())
    finally:
        assert server.stop()
        assert server.pid() is None


def test_metadata_app_serves_many_callers_at_once(restore):
    """The listener is threaded: a slow lookup for one instance does not stall the others."""
    lab = restore
    gate = threading.Event()

    def lookup(ip: str):
        if ip == lab.namespaces["a_web"]["ip"]:
            gate.wait(3)
        port = next((p for p in lab.ports.values() if p.ip == ip), None)
        return {"instance_id": port.instance_id, "local_ipv4": ip} if port else None

    server = MetadataServer(MetadataApp(lookup)).start()
    try:
        lab.imds_port = server.port
        lab.apply()
        t = threading.Thread(target=_imds, args=(lab, "a_web", "/latest/meta-data/instance-id"))
        t.start()
        assert _body(_imds(lab, "a_client", "/latest/meta-data/instance-id"))[1] == lab.namespaces["a_client"]["iid"]
        gate.set()
        t.join()
    finally:
        server.stop()
